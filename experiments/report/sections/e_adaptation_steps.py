"""Section (e): MAML's return against test-time gradient steps on out-of-sample tasks, for a
model trained on the whole distribution and one trained on a sub-range."""

import os

from matplotlib.ticker import MaxNLocator

from experiments.report.figures import curves_block, draw_levels, env_levels, errorbar, panels, save
from experiments.report.formatting import ci_text, num
from experiments.report.formatting import table as markdown_table
from experiments.report.loading import Run
from experiments.report.member_stats import StatsTable
from experiments.report.sections.common import (
    answer,
    by_env,
    describe_runs,
    levels_phrase,
    member_table,
)
from metarl_jax.io import report_stats as stats


def section_e(
    runs: list[Run], table: StatsTable, figures_dir: str, used: set, glance: list
) -> list[str]:
    lines = describe_runs(runs)
    lines += ["Final evaluation return (`eval/return`, out of sample):", ""]
    lines += member_table(runs, table)
    max_k = max(len(r.curves["eval"][0]) for r in runs) - 1
    header = [
        "algo",
        "env",
        "trained on",
        "member",
        "seeds",
        *[f"step {k}" for k in range(max_k + 1)],
    ]
    cells, reading = [], []
    envs = by_env(runs)
    fig, axes = panels(len(envs))
    for ax, (env, env_runs) in zip(axes, envs.items(), strict=True):
        algos = sorted({r.algo for r in env_runs})
        for run in env_runs:
            curve = run.curves["eval"][0]
            for member in run.members:
                ivs = [table.interval(run, member, c) for c in curve]
                kind = "whole distribution" if run.is_full else f"sub-range {run.train_tasks}"
                label = f"{run.algo}, trained on {kind}"
                if len(run.members) > 1:
                    label += f" ({member.label})"
                steps = [ci_text(iv) for iv in ivs] + ["—"] * (max_k + 1 - len(ivs))
                cells.append(
                    [
                        run.algo,
                        env,
                        f"`{run.train_tasks}`",
                        member.label or "run",
                        str(ivs[0].n if ivs[0] else 0),
                        *steps,
                    ]
                )
                present = [(k, iv) for k, iv in enumerate(ivs) if iv]
                errorbar(
                    ax,
                    [k for k, _ in present],
                    [iv for _, iv in present],
                    label,
                    linestyle="-" if run.is_full else "--",
                    color=f"C{algos.index(run.algo) % 10}",
                    markerfacecolor="white" if not run.is_full else None,
                )
        draw_levels(ax, env_levels(env_runs))
        ax.set_xlabel("test-time gradient steps k")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("final eval/return_step k (out of sample, 95% CI)")
        ax.set_title(f"{env}: eval tasks {env_runs[0].eval_tasks}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        for algo in algos:
            algo_runs = [r for r in env_runs if r.algo == algo]
            text = _reading_e(table, env, algo, algo_runs)
            for run in algo_runs:
                framed = [
                    (f"trained on `{run.train_tasks}` ({m.label or 'run'})", table.headline(run, m))
                    for m in run.members
                ]
                text += levels_phrase(run.levels_of(), [(n, r) for n, r in framed if r.interval])
            pairs = [(r, r.members) for r in algo_runs]
            reading.append(answer(table, glance, "e", env, algo, pairs, text))
    save(fig, os.path.join(figures_dir, "e_adaptation_steps.png"))
    used.add("e_adaptation_steps.png")
    lines += [
        "Return after k test-time gradient steps on out-of-sample tasks (mean ± 95% CI "
        "half-width over seeds):",
        "",
        *markdown_table(header, cells),
        "![return against test-time gradient steps](figures/e_adaptation_steps.png)",
        "",
        "Reading: " + " ".join(reading),
        "",
    ]
    return lines + curves_block(runs, figures_dir, used)


def _reading_e(table: StatsTable, env: str, algo: str, runs: list[Run]) -> str:
    full = [r for r in runs if r.is_full]
    subs = [r for r in runs if not r.is_full]
    head = f"On {env}, {algo}:"
    if not full or not subs:
        which = "the whole distribution" if not full else "a sub-range"
        given = full or subs
        parts = []
        for run in given:
            means = table.seed_means(run, run.members[0], run.curves["eval"][0])
            parts.append(
                f"the model trained on `{run.train_tasks}` returns {num(means[0])} at step 0 and "
                f"{num(means[-1])} at step {len(means) - 1}"
            )
        return f"{head} no model trained on {which} was given; " + "; ".join(parts) + "."
    full_run = full[0]
    sentences = []
    for sub in subs:
        for member in sub.members:
            reference = next(
                (m for m in full_run.members if m.sweep == member.sweep), full_run.members[0]
            )
            f_means = table.seed_means(full_run, reference, full_run.curves["eval"][0])
            s_means = table.seed_means(sub, member, sub.curves["eval"][0])
            k_full, k_sub = len(f_means) - 1, len(s_means) - 1
            reached = stats.first_reaching(s_means, f_means[0])
            level = f"the full model's step-0 level ({num(f_means[0])})"
            where = (
                f"first reaches {level} at step {reached}"
                if reached is not None
                else f"does not reach {level} within K={k_sub} steps"
            )
            member_text = f" ({member.label})" if len(sub.members) > 1 else ""
            sentences.append(
                f"{head} the model trained on the whole distribution returns {num(f_means[0])} at "
                f"step 0 and {num(f_means[-1])} at step {k_full}; the model trained on "
                f"`{sub.train_tasks}`{member_text} returns {num(s_means[0])} at step 0 and "
                f"{num(s_means[-1])} at step {k_sub}. Comparing means over seeds, the sub-range "
                f"model {where}."
            )
    return " ".join(sentences)
