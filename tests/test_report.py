"""The study report on synthetic run directories with known numbers (nothing is trained).

Every run directory is written by hand (flags.txt, metrics.csv through the library's writer,
summary.json) so that the final evaluation returns, their confidence intervals and the numbers
of each reading are known in advance. The report runs in-process (`report.generate`), and once
through `python -m experiments.report` to check the absl wiring.
"""

import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from experiments import report
from experiments.report.sections.f_step_sizes import reading_f
from metarl_jax.io import metrics, summary
from metarl_jax.io.report_stats import (
    confidence_interval,
    first_reaching,
    intervals_overlap,
    paired_difference,
    plateau_test,
    t_quantile,
)

from .conftest import REPO_ROOT

SEEDS = (0, 1, 2, 3, 4)
OFFSETS = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])  # per seed: sample std 1.5811
T_4 = 2.7764451  # t_{0.975, 4}
HALF = T_4 * math.sqrt(2.5) / math.sqrt(5)  # 2.776 · 1.5811 / 2.236 = 1.963: mean ± OFFSETS
NAV = "range:0,0.5,0,0.5"
NAV_OUT = "complement:0,0.5,0,0.5"


def write_run(
    path,
    *,
    experiment,
    algo,
    final,
    env="navigation",
    train_tasks="full",
    eval_tasks="full",
    horizon=100,
    num_arms=5,
    sweep_column="meta_batch_size",
    curve=None,
    eval_train=None,
    iterations=(10, 20),
    seeds=SEEDS,
    extra=None,
    rise=5.0,
    levels=None,
):
    """A run directory. `final`: {sweep value: eval/return per seed at the last iteration}
    (earlier iterations log `rise` less per iteration). `levels`: summary.json's reference
    levels. `curve`: {sweep value: [seeds, points]} evaluation
    curve (MAML steps or RL² episodes by algo); `eval_train`: {sweep value: per seed}."""
    os.makedirs(path)
    is_rl2 = algo.startswith("rl2")
    run_flags = {
        "algo": algo,
        "env": env,
        "experiment": experiment,
        "train_tasks": train_tasks,
        "eval_tasks": eval_tasks,
        "horizon": horizon,
        "num_arms": num_arms,
        "seeds": ",".join(map(str, seeds)),
        "num_iterations": iterations[-1],
        "inner_steps": 1,
        "meta_batch_size": "20",
        "num_train_tasks": ",".join(map(str, final)) if sweep_column == "num_train_tasks" else "",
    }
    lines = [f"--{k}={v}" for k, v in sorted(run_flags.items())]
    lines.append("--eval_train_region" if eval_train else "--noeval_train_region")
    with open(os.path.join(path, "flags.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")

    sweep_columns = ["meta_batch_size"] + (
        ["num_train_tasks"] if sweep_column == "num_train_tasks" else []
    )
    point = "episode" if is_rl2 else "step"
    rows = []
    for it_index, iteration in enumerate(iterations):
        lag = len(iterations) - 1 - it_index  # returns rise over iterations
        for value, per_seed in final.items():
            for i, seed in enumerate(seeds):
                row = {
                    "iteration": iteration,
                    "env_steps": 1000 * iteration,
                    "seed": seed,
                    "meta_batch_size": value if sweep_column == "meta_batch_size" else 20,
                    "train/return": float(per_seed[i]) - 1.0 - lag,
                    "eval/return": float(per_seed[i]) - rise * lag,
                    "optim/kl": 0.01,
                }
                if sweep_column == "num_train_tasks":
                    row["num_train_tasks"] = value
                points = (curve or {}).get(value)
                if points is not None:
                    for k, v in enumerate(points[i]):
                        row[f"eval/return_{point}{k}"] = float(v) - 5.0 * lag
                for name, values in (extra or {}).items():
                    row[name] = float(values[i])
                if eval_train:
                    row["eval_train/return"] = float(eval_train[value][i]) - 5.0 * lag
                    row[f"eval_train/return_{point}0"] = float(eval_train[value][i]) - 6 * lag
                if env == "bandit":  # bandits are compared on the reward per pull
                    for prefix in ("eval", "eval_train"):
                        if f"{prefix}/return" in row:
                            row.setdefault(f"{prefix}/reward_per_step", row[f"{prefix}/return"])
                rows.append(row)
    names = [c for c in rows[0] if "/" in c]
    columns = metrics.csv_columns(sweep_columns, names)
    metrics.append_rows(os.path.join(path, "metrics.csv"), columns, rows)
    all_rows = metrics.read_rows(os.path.join(path, "metrics.csv"))
    info = {"algo": algo, "env": env, "iterations": iterations[-1], "num_members": len(rows)}
    if levels:
        info["levels"] = levels
    summary.write_summary(
        os.path.join(path, "summary.json"), info, summary.final_by_member(all_rows, sweep_columns)
    )
    os.makedirs(os.path.join(path, "plots"))
    return str(path)


def maml_curve(step_means, n_seeds=5):
    """[seeds, K+1]: the given mean at every step, spread by OFFSETS over seeds."""
    return np.array(step_means)[None, :] + OFFSETS[:n_seeds, None] * 0.1


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    runs = {}
    # (a): final return 3, 6, 9, 10 (± OFFSETS) with k = 1, 2, 4, all: only k = 4's CI overlaps
    # the full distribution's.
    a_means = {"1": 3.0, "2": 6.0, "4": 9.0, "all": 10.0}
    runs["a_maml"] = write_run(
        root / "a_maml",
        experiment="a",
        algo="maml_trpo",
        sweep_column="num_train_tasks",
        final={k: m + OFFSETS for k, m in a_means.items()},
        curve={k: maml_curve([m - 2, m - 1, m]) for k, m in a_means.items()},
    )
    runs["a_rl2"] = write_run(
        root / "a_rl2",
        experiment="a",
        algo="rl2_ppo",
        sweep_column="num_train_tasks",
        final={k: 5.0 + OFFSETS for k in ("1", "2", "4", "all")},
        curve={k: maml_curve([1.0, 5.0]) for k in ("1", "2", "4", "all")},
    )
    # (b): MACAW on bandits, k = 1, 3, 12, 50 buffers with returns 0.3, 0.6, 0.8, 0.79 (± OFFSETS
    # / 100): best k = 12; k = 1 and 3 clearly below it, k = 50 overlapping it.
    b_means = {"1": 0.3, "3": 0.6, "12": 0.8, "50": 0.79}
    runs["b_macaw"] = write_run(
        root / "b_macaw",
        experiment="b",
        algo="macaw",
        env="bandit",
        horizon=1,
        sweep_column="num_train_tasks",
        final={k: m + OFFSETS / 100 for k, m in b_means.items()},
        curve={k: maml_curve([m - 0.2, m]) for k, m in b_means.items()},
    )
    # (c): meta-batch 1, 5, 20 with returns 2, 8, 9: best 20, worst 1, CIs apart.
    c_means = {"1": 2.0, "5": 8.0, "20": 9.0}
    runs["c_maml"] = write_run(
        root / "c_maml",
        experiment="c",
        algo="maml_ppo",
        final={m: v + OFFSETS for m, v in c_means.items()},
        curve={m: maml_curve([v - 1, v]) for m, v in c_means.items()},
    )
    runs["c_bandit"] = write_run(
        root / "c_bandit",
        experiment="c",
        algo="rl2_ppo",
        env="bandit",
        horizon=10,
        final={"10": 0.6 + 0.01 * OFFSETS, "40": 0.7 + 0.01 * OFFSETS},
        curve={m: maml_curve([0.5, 0.6]) for m in ("10", "40")},
    )
    # (d): out of sample 4 ± OFFSETS, in sample 7 ± OFFSETS / 2: gap −3, paired CI ± HALF / 2.
    runs["d_maml"] = write_run(
        root / "d_maml",
        experiment="d",
        algo="maml_trpo",
        train_tasks=NAV,
        eval_tasks=NAV_OUT,
        final={"20": 4.0 + OFFSETS},
        eval_train={"20": 7.0 + OFFSETS / 2},
        curve={"20": maml_curve([3.0, 4.0])},
    )
    runs["d_rl2"] = write_run(
        root / "d_rl2",
        experiment="d",
        algo="rl2_ppo",
        train_tasks=NAV,
        eval_tasks=NAV_OUT,
        final={"100": 5.0 + OFFSETS},
        eval_train={"100": 5.5 + OFFSETS},
        curve={"100": maml_curve([2.0, 5.0])},
    )
    # (e): step means 1, 2, 3, 4 (sub-range model) and 2.5, 3, 3.5, 4 (whole distribution):
    # the sub-range model reaches 2.5 at step 2.
    runs["e_sub"] = write_run(
        root / "e_sub",
        experiment="e",
        algo="maml_trpo",
        train_tasks=NAV,
        eval_tasks=NAV_OUT,
        final={"20": 2.0 + OFFSETS},
        curve={"20": maml_curve([1.0, 2.0, 3.0, 4.0])},
    )
    runs["e_full"] = write_run(
        root / "e_full",
        experiment="e",
        algo="maml_trpo",
        eval_tasks=NAV_OUT,
        final={"20": 3.0 + OFFSETS},
        curve={"20": maml_curve([2.5, 3.0, 3.5, 4.0])},
    )
    return root, runs


def _generate(capsys, run_dirs, out_dir):
    code = report.generate([str(d) for d in run_dirs], None if out_dir is None else str(out_dir))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def full_report(study, tmp_path_factory):
    _, runs = study
    out_dir = tmp_path_factory.mktemp("report") / "out"
    code = report.generate(list(runs.values()), str(out_dir))
    assert code == 0
    with open(out_dir / "report.md") as f:
        return out_dir, f.read()


def _section(text, letter):
    start = text.index(f"## ({letter})")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def _reading(section):
    return next(line for line in section.splitlines() if line.startswith("Reading: "))


# ----- statistics ---------------------------------------------------------------------------


def test_confidence_interval_by_hand():
    iv = confidence_interval([1, 2, 3, 4, 5])
    assert iv.mean == 3.0 and iv.n == 5
    assert iv.std == pytest.approx(1.5811, abs=1e-4)
    assert t_quantile(0.975, 4) == pytest.approx(2.7764, abs=1e-4)
    assert iv.half_width == pytest.approx(HALF, abs=1e-3)  # 2.776 · 1.5811 / 2.236 = 1.963
    assert iv.half_width == pytest.approx(1.963, abs=1e-3)
    one = confidence_interval([7.0])
    assert one.mean == 7.0 and one.half_width is None and not one.has_interval
    assert intervals_overlap(one, iv) is None
    assert intervals_overlap(iv, confidence_interval([5.5, 6.5, 7.5])) is True
    assert intervals_overlap(iv, confidence_interval([10, 11, 12])) is False
    gap = paired_difference({0: 1.0, 1: 2.0, 2: 4.0}, {0: 0.0, 1: 1.0, 2: 2.0, 3: 9.0})
    assert gap.n == 3 and gap.mean == pytest.approx(4 / 3)
    assert first_reaching([1.0, 2.0, 3.0], 2.5) == 2
    assert first_reaching([1.0, 2.0], 2.5) is None


# ----- the report ---------------------------------------------------------------------------


def test_sections_in_order(full_report):
    _, text = full_report
    positions = [text.index(f"## ({letter})") for letter in "abcde"]
    assert positions == sorted(positions)
    assert "| macaw | bandit |" in _section(text, "b")
    assert "No runs given" not in text
    assert "Other runs" not in text  # every run belongs to the study


def test_member_ci_matches_hand_computation(full_report):
    _, text = full_report
    section = _section(text, "a")
    # k = 1 of MAML: eval/return 1..5 -> mean 3, half-width 1.963, CI [1.037, 4.963].
    row = next(
        line for line in section.splitlines() if line.startswith("| maml_trpo | navigation |")
    )
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[4] == "1" and cells[5] == "5"  # k, seeds
    assert float(cells[8]) == 3.0
    assert float(cells[9]) == pytest.approx(HALF, abs=1e-3)
    low, high = map(float, re.match(r"\[(.*), (.*)\]", cells[10]).groups())
    assert low == pytest.approx(3 - HALF, abs=1e-3) and high == pytest.approx(3 + HALF, abs=1e-3)
    # What was run: environments, algorithms, seeds, iterations.
    assert "algorithms maml_trpo, rl2_ppo" in section
    assert "seeds 0, 1, 2, 3, 4" in section and "final logged iteration 20" in section


def test_figures_are_pngs(full_report):
    out_dir, text = full_report
    referenced = re.findall(r"\]\(figures/([^)]+)\)", text)
    on_disk = sorted(os.listdir(out_dir / "figures"))
    assert sorted(referenced) == on_disk
    for name in (
        "a_num_train_tasks.png",
        "b_num_offline_tasks.png",
        "c_meta_batch_size.png",
        "d_out_of_sample.png",
    ):
        assert name in on_disk
    assert "e_adaptation_steps.png" in on_disk
    assert len([n for n in on_disk if n.startswith("curves_")]) == 9  # one per run
    for name in on_disk:
        with open(out_dir / "figures" / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", name


def test_readings_come_from_the_numbers(full_report):
    _, text = full_report
    a = _reading(_section(text, "a"))
    assert "k=1" in a and "from 3 (95% CI [1.037, 4.963])" in a
    assert "to 10 (95% CI [8.037, 11.96])" in a and "a change of +7" in a
    assert "The smallest k whose 95% CI overlaps that of the full one is k=4." in a

    b = _reading(_section(text, "b"))
    assert "the best final eval return is 0.8 (95% CI [0.7804, 0.8196]) with k=12" in b
    assert "With fewer than 5 tasks (k=1, 3) the return is below the best" in b
    assert "non-overlapping 95% CIs at k=1, 3" in b
    assert "With more than 20 tasks (k=50) no member is clearly below the best." in b

    c = _reading(_section(text, "c"))
    assert "the best meta-batch size is 20 with 9" in c and "the worst 1 with 2" in c
    assert "their confidence intervals do not overlap" in c
    assert "On bandit, rl2_ppo: the best meta-batch size is 40 with 0.7" in c

    d = _section(text, "d")
    gap_half = HALF / 2
    expected = f"the gap out − in is -3 (paired 95% CI [{-3 - gap_half:.4g}, {-3 + gap_half:.4g}]"
    assert expected in _reading(d)
    assert "in sample 7 (95% CI" in _reading(d) and "do not overlap" in _reading(d)
    # RL²: gap −0.5 with identical per-seed offsets -> zero spread, CIs overlap.
    assert "the gap out − in is -0.5" in _reading(d)
    assert "and the two confidence intervals overlap" in _reading(d)

    e = _reading(_section(text, "e"))
    assert "returns 2.5 at step 0 and 4 at step 3" in e
    assert "returns 1 at step 0 and 4 at step 3" in e
    assert "first reaches the full model's step-0 level (2.5) at step 2" in e


def test_rl2_curve_columns(study, full_report):
    _, runs = study
    run = report.load_run(runs["a_rl2"])
    curve, label = run.curves["eval"]
    assert curve == ["eval/return_episode0", "eval/return_episode1"]
    assert label == "episode of the trial"
    assert run.members[0].interval("eval/return_episode1").mean == pytest.approx(5.0)
    _, text = full_report
    assert "| rl2_ppo | navigation |" in _section(text, "a")


def test_absent_sections_and_one_seed(tmp_path, capsys):
    single = write_run(
        tmp_path / "single",
        experiment="c",
        algo="maml_trpo",
        final={"20": np.array([4.0])},
        curve={"20": maml_curve([3.0, 4.0], n_seeds=1)},
        seeds=(0,),
    )
    outside = write_run(
        tmp_path / "outside", experiment="", algo="rl2_ppo", final={"20": 1.0 + OFFSETS}
    )
    code, out, err = _generate(capsys, [single, outside], tmp_path / "out")
    assert code == 0, err
    text = (tmp_path / "out" / "report.md").read_text()
    assert out.strip() == str(tmp_path / "out" / "report.md")
    for letter in "abde":
        assert "No runs given." in _section(text, letter)
    other = text[text.index("## Other runs") :]
    assert text.index("## (e)") < text.index("## Other runs")
    assert "the only member (rl2_ppo on navigation, train full (meta_batch_size=20))" in other
    assert "n/a (1 seed)" in _section(text, "c")
    assert "only meta-batch size 20 was run, final return 4 (one seed, no interval)" in text


# ----- bad input ----------------------------------------------------------------------------


def _copy_with(src, dst, **changes):
    """A copy of run `src` with some flags.txt values replaced."""
    import shutil

    shutil.copytree(src, dst)
    path = os.path.join(dst, "flags.txt")
    with open(path) as f:
        lines = f.read().splitlines()
    for name, value in changes.items():
        lines = [f"--{name}={value}" if line.startswith(f"--{name}=") else line for line in lines]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    path = os.path.join(dst, "summary.json")
    with open(path) as f:
        info = json.load(f)
    info.update({k: v for k, v in changes.items() if k in info})
    with open(path, "w") as f:
        json.dump(info, f)
    return str(dst)


def test_bad_inputs(study, tmp_path, capsys):
    _, runs = study
    not_a_run = tmp_path / "not_a_run"
    not_a_run.mkdir()
    (not_a_run / "flags.txt").write_text("--algo=maml_trpo\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    horizon = _copy_with(runs["a_rl2"], tmp_path / "a_rl2_h50", horizon=50)
    bandit_arms = _copy_with(
        runs["c_bandit"], tmp_path / "c_bandit_k3", num_arms=3, algo="maml_trpo"
    )
    e_eval = _copy_with(runs["e_full"], tmp_path / "e_full_eval", eval_tasks="full")
    cases = {
        "no directories": ([], "no run directories"),
        "missing files": ([not_a_run], "missing metrics.csv, summary.json"),
        "not a directory": ([a_file], "not a directory"),
        "does not exist": ([tmp_path / "nowhere"], "not a directory"),
        "horizon": ([runs["a_maml"], horizon], "differ in --horizon"),
        "num_arms": ([runs["c_bandit"], bandit_arms], "differ in --num_arms"),
        "eval tasks in (e)": ([runs["e_sub"], e_eval], "differ in --eval_tasks"),
        "same key": ([runs["d_maml"], runs["d_maml"]], "two runs with the same experiment"),
    }
    for name, (dirs, message) in cases.items():
        out_dir = tmp_path / f"out_{name.replace(' ', '_')}"
        code, out, err = _generate(capsys, dirs, out_dir)
        assert code == 2, name
        assert len(err.splitlines()) == 1 and err.startswith("error: "), (name, err)
        assert message in err, (name, err)
        assert not out_dir.exists(), name
        assert out == "", name

    # An existing non-empty --out_dir is refused and left as it was.
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "report.md").write_text("earlier report")
    code, _, err = _generate(capsys, [runs["c_maml"]], taken)
    assert code == 2 and err.startswith("error: --out_dir") and len(err.splitlines()) == 1
    assert os.listdir(taken) == ["report.md"]
    assert (taken / "report.md").read_text() == "earlier report"


def test_command_line(study, tmp_path):
    _, runs = study
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out_dir = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, "-m", "experiments.report", runs["c_maml"], f"--out_dir={out_dir}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(os.path.join(str(out_dir), "report.md"))
    assert (out_dir / "report.md").exists()
    result = subprocess.run(
        [sys.executable, "-m", "experiments.report", f"--out_dir={tmp_path / 'none'}"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert (
        result.stderr.startswith("error: no run directories") and not (tmp_path / "none").exists()
    )
    assert len(result.stderr.splitlines()) == 1


def test_summary_json_is_not_required_to_name_the_experiment(study):
    """summary.json written before the experiment keys existed: flags.txt supplies them."""
    _, runs = study
    with open(os.path.join(runs["d_maml"], "summary.json")) as f:
        assert "experiment" not in json.load(f)
    run = report.load_run(runs["d_maml"])
    assert (run.experiment, run.train_tasks, run.eval_tasks) == ("d", NAV, NAV_OUT)
    assert run.headline == {"eval": "eval/return", "eval_train": "eval_train/return"}


def test_member_table_shows_pearls_inference_gain(tmp_path):
    gains = 4.0 + OFFSETS
    path = str(tmp_path / "pearl")
    write_run(
        path,
        experiment="a",
        algo="pearl",
        final={20: 10.0 + OFFSETS},
        extra={"eval/inference_gain": gains},
    )
    runs = [report.load_run(path)]
    lines = report.member_table(runs, report.build_stats_table(runs))
    assert "final eval/inference_gain (95% CI)" in lines[0]
    assert f"4 ± {HALF:.4g}" in lines[2]
    # runs without the column keep the table as it was
    other = str(tmp_path / "maml")
    write_run(other, experiment="a", algo="maml_trpo", final={20: 10.0 + OFFSETS})
    runs = [report.load_run(other)]
    assert "inference_gain" not in report.member_table(runs, report.build_stats_table(runs))[0]


def test_plateau_test_by_hand():
    """Two seeds, 8 logs: quarter 2. Seed-means 0,1,2,3,4,5,6,6.4 → last quarter 6.2 vs 4.5
    before: change 1.7; final values 6.0 and 6.8: half-width t(0.975, 1) * 0.5657 / sqrt(2)."""
    rising = np.array([[0, 1, 2, 3, 4, 5, 6, 6.0], [0, 1, 2, 3, 4, 5, 6, 6.8]])
    test = plateau_test(rising)
    assert test.change == pytest.approx(1.7)
    assert test.half_width == pytest.approx(12.7062 * 0.565685 / math.sqrt(2), rel=1e-4)
    assert test.converged is True  # 0.7 < 5.08: two seeds this far apart cannot tell a rise
    flat = np.array(
        [[5.0, 5.1, 5.0, 5.1, 5.0, 5.1, 5.0, 5.1], [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]]
    )
    flat[:, 6:] += 0.02
    assert plateau_test(flat).converged is True
    climbing = np.array([[0, 1, 2, 3, 4, 5, 6.0, 7.0], [0, 1, 2, 3, 4, 5, 6.1, 7.1]])
    assert plateau_test(climbing).converged is False  # change 2.05 against 0.64
    assert plateau_test(climbing[:1]).converged is None  # one seed: cannot tell
    assert plateau_test(climbing[:, :3]).converged is None  # fewer than 4 logs
    # seeds that agree exactly (half-width 0): the floor, 1% of the distance between the levels
    same = np.array([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.01, 1.01]] * 2)  # change 0.01
    assert plateau_test(same).converged is False
    assert plateau_test(same, level_span=2.0).converged is True  # 0.01 < 0.02
    assert plateau_test(same, level_span=-2.0).floor == pytest.approx(0.02)
    assert plateau_test(same, level_span=0.5).converged is False  # 0.01 > 0.005
    assert plateau_test(climbing, level_span=100.0).converged is False  # 2.05 > floor 1.0
    assert plateau_test(climbing, level_span=300.0).converged is True  # 2.05 < floor 3.0


def test_summary_json_carries_the_convergence_check():
    rows = [
        {"iteration": str(i), "env_steps": "1", "seed": str(s), "meta_batch_size": "2",
         "eval/return": str(v)}
        for i, (a, b) in enumerate([(0, 0.1), (1, 1.1), (2, 2.1), (3, 3.1)], 1)
        for s, v in ((0, a), (1, b))
    ]  # fmt: skip
    (member,) = summary.final_by_member(rows, ["meta_batch_size"])
    check = member["convergence"]
    assert check["metric"] == "eval/return" and check["change"] == pytest.approx(1.0)
    assert check["converged"] is False  # still rising by 1 per log, seeds 0.1 apart
    assert "last quarter" in check["test"]
    # levels 200 apart: a change of 1 is below the floor of 2
    (member,) = summary.final_by_member(rows, ["meta_batch_size"], level_span=200.0)
    assert member["convergence"]["converged"] is True and member["convergence"]["floor"] == 2.0


NAV_LEVELS = {
    "eval": {
        "metric": "eval/return",
        "values": {"stay_at_start": -7.5, "fastest_to_goal": -0.5},
        "lower": "stay_at_start",
        "upper": "fastest_to_goal",
        "about": {},
    }
}


def test_levels_convergence_and_the_summary_at_the_top(tmp_path, capsys):
    """Meta-batch 5 ends flat at -4 (position (−4 + 7.5) / 7 = 0.5, converged over 8 logs);
    meta-batch 10 ends at -2.5 (position 5 / 7 = 0.714) but rises by 1 per log, so its last
    quarter (logs 7, 8) is 2 above the quarter before (5, 6), more than its CI half-width (1.963):
    not converged, and the answer resting on it is provisional."""
    flat = write_run(
        tmp_path / "flat",
        experiment="c",
        algo="maml_trpo",
        final={"5": -4.0 + OFFSETS},
        iterations=tuple(range(10, 90, 10)),
        rise=0.0,
        levels=NAV_LEVELS,
    )
    rising = write_run(
        tmp_path / "rising",
        experiment="c",
        algo="rl2_ppo",
        final={"10": -2.5 + OFFSETS},
        iterations=tuple(range(10, 90, 10)),
        rise=1.0,
        levels=NAV_LEVELS,
    )
    code, _, err = _generate(capsys, [flat, rising], tmp_path / "out")
    assert code == 0, err
    text = (tmp_path / "out" / "report.md").read_text()
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
        for line in _section(text, "c").splitlines()
        if line.startswith(("| maml_trpo |", "| rl2_ppo |"))
    }
    assert rows["maml_trpo"][-1] == "0.50" and rows["maml_trpo"][-2] == "yes (+0)"
    assert rows["rl2_ppo"][-1] == "0.71" and rows["rl2_ppo"][-2] == "no (+2)"
    reading = _reading(_section(text, "c"))
    framed = "Between the levels stay_at_start (-7.5) = 0 and fastest_to_goal (-0.5) = 1"
    assert f"{framed}: meta-batch 5 at 0.50." in reading
    assert f"{framed}: meta-batch 10 at 0.71." in reading
    # only RL²'s answer is provisional, and it says which member is not converged
    assert reading.count("*Provisional*") == 1
    assert "*Provisional* (not converged by the plateau test: meta_batch_size=10;" in reading
    # the summary comes first and repeats each answer with its convergence
    top = text[: text.index("## (a)")]
    assert "## At a glance" in top
    glance = [line for line in top.splitlines() if line.startswith("| (c) |")]
    assert len(glance) == 2
    assert "| maml_trpo | yes |" in glance[0] and "meta-batch 5 at 0.50" in glance[0]
    assert "| rl2_ppo | no (meta_batch_size=10) |" in glance[1]
    assert "Reference levels (computed on the run's own evaluation tasks):" in text
    assert "`eval/return`: stay_at_start -7.5 (lower); fastest_to_goal -0.5 (upper)." in text


def test_malformed_levels_are_refused_with_one_line(tmp_path, capsys):
    broken = {"eval": {**NAV_LEVELS["eval"], "upper": "teleport"}}  # names no level
    run = write_run(tmp_path / "run", experiment="c", algo="maml_trpo", final={"5": OFFSETS},
                    levels=broken)  # fmt: skip
    code, _, err = _generate(capsys, [run], tmp_path / "out")
    assert code == 2 and not (tmp_path / "out").exists()
    assert err.strip().count("\n") == 0 and "summary.json's `levels` is malformed" in err


def test_bandits_are_compared_on_the_reward_per_pull_of_the_whole_trial(tmp_path, capsys):
    """A bandit run is reported on eval/reward_per_step, not on eval/return."""
    per_pull = 0.6 + 0.01 * OFFSETS
    new = write_run(
        tmp_path / "new",
        experiment="c",
        algo="rl2_ppo",
        env="bandit",
        horizon=1,
        final={"10": 1.0 + OFFSETS / 10},
        extra={"eval/reward_per_step": per_pull},
    )
    code, _, err = _generate(capsys, [new], tmp_path / "out")
    assert code == 0, err
    section = _section((tmp_path / "out" / "report.md").read_text(), "c")
    assert "final eval/reward_per_step" in section
    row = next(line for line in section.splitlines() if line.startswith("| rl2_ppo |"))
    assert row.split("|")[9].strip() == "0.6"


REPORT_DATA = os.path.join("tests", "data", "report")


def test_recorded_runs_render_the_recorded_report(tmp_path, monkeypatch, capsys):
    """The run directories of tests/data/report/run_dirs (paths relative to the repository, as the
    report prints them) render exactly the recorded report.md."""
    monkeypatch.chdir(REPO_ROOT)
    runs_dir = os.path.join(REPORT_DATA, "run_dirs")
    run_dirs = sorted(os.path.join(runs_dir, name) for name in os.listdir(runs_dir))
    code, _, err = _generate(capsys, run_dirs, tmp_path / "out")
    assert code == 0, err
    with open(os.path.join(REPORT_DATA, "report.md"), "rb") as f:
        assert (tmp_path / "out" / "report.md").read_bytes() == f.read()


def test_the_stats_table_holds_every_number_before_rendering(study):
    """(d)'s member: out of sample 4, in sample 7, gap −3 (paired, half-width HALF / 2), each a
    row of the table with its interval; the headline row carries the convergence verdict."""
    _, runs = study
    run = report.load_run(runs["d_maml"])
    table = report.build_stats_table([run])
    (member,) = run.members
    assert {row.quantity for row in table.rows} == {
        "eval", "eval_train", "gap", "eval/return_step0", "eval/return_step1"
    }  # fmt: skip
    assert table.interval(run, member, "eval").mean == pytest.approx(4.0)
    assert table.interval(run, member, "eval_train").mean == pytest.approx(7.0)
    gap = table.interval(run, member, "gap")
    assert gap.mean == pytest.approx(-3.0) and gap.half_width == pytest.approx(HALF / 2)
    headline = table.headline(run, member)
    assert headline.plateau is not None and headline.position is None  # no levels given
    assert table.seed_means(run, member, ["eval/return_step1", "no_such_column"])[0] == (
        pytest.approx(4.0)
    )


# ----- (f): sensitivity to step sizes -------------------------------------------------------

STEP_SEEDS = (0, 1, 2)
STEP_OFFSETS = np.array([-1.0, 0.0, 1.0])  # per seed: sample std 1
STEP_HALF = 4.3026527 / math.sqrt(3)  # t_{0.975, 2} · 1 / √3 = 2.484: reference CI [7.516, 12.48]
STEP_LEVELS = {
    "eval": {
        "metric": "eval/return",
        "values": {"random": 0.0, "oracle": 20.0},
        "lower": "random",
        "upper": "oracle",
        "about": {},
    }
}


def write_step_size_run(path, *, algo, means, reference, iterations, rise):
    """An (f) run directory. `means`: {(value per swept setting): final eval/return mean}, spread
    over three seeds by STEP_OFFSETS (earlier iterations log `rise` less per log); `reference`:
    {setting: its own flag's value} (flags.txt's reference setting)."""
    os.makedirs(path)
    settings = list(reference)
    lines = [f"--algo={algo}", "--env=navigation", "--experiment=f", "--horizon=100"]
    lines += ["--meta_batch_size=20", "--num_iterations=" + str(iterations[-1]), "--seeds=0,1,2"]
    for i, setting in enumerate(settings):
        values = ",".join(dict.fromkeys(key[i] for key in means))
        lines += [f"--sweep={setting}:{values}", f"--{setting}={reference[setting]}"]
    with open(os.path.join(path, "flags.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    sweep_columns = ["meta_batch_size", *settings]
    rows = []
    for it_index, iteration in enumerate(iterations):
        lag = len(iterations) - 1 - it_index
        for key, mean in means.items():
            for seed, offset in zip(STEP_SEEDS, STEP_OFFSETS, strict=True):
                row = {"iteration": iteration, "env_steps": 1000 * iteration, "seed": seed}
                row.update(
                    {"meta_batch_size": 20, **dict(zip(settings, map(float, key), strict=True))}
                )
                row.update({"train/return": mean - 1.0, "eval/return": mean + offset - rise * lag})
                rows.append(row)
    columns = metrics.csv_columns(sweep_columns, ["train/return", "eval/return"])
    metrics.append_rows(os.path.join(path, "metrics.csv"), columns, rows)
    all_rows = metrics.read_rows(os.path.join(path, "metrics.csv"))
    info = {"algo": algo, "env": "navigation", "iterations": iterations[-1], "levels": STEP_LEVELS}
    summary.write_summary(
        os.path.join(path, "summary.json"), info, summary.final_by_member(all_rows, sweep_columns)
    )
    return str(path)


@pytest.fixture(scope="module")
def step_size_report(tmp_path_factory):
    """MAML-TRPO: inner_lr 0.03, 0.1, 0.3 (rows) × max_kl 0.01, 0.03, reference (0.1, 0.01) at 10
    with CI [7.516, 12.48]; along inner_lr (max_kl 0.01): 9 within, 5 below; along max_kl
    (inner_lr 0.1): 11 within; the best cell (0.3, 0.03) at 13, CI [10.52, 15.48], overlaps the
    reference's: tied. Flat over 8 logs: converged.
    RL²: lr 0.0003, 0.001, 0.003 with 4, 10, 20, reference 0.001: only it lies within its own CI;
    the best (20, CI [17.52, 22.48]) does not overlap it: beaten. Still rising by 2 per log (its
    last quarter 4 above the quarter before, more than the half-width 2.484): not converged."""
    root = tmp_path_factory.mktemp("step_sizes")
    maml_means = {
        ("0.03", "0.01"): 9.0, ("0.03", "0.03"): 6.0,
        ("0.1", "0.01"): 10.0, ("0.1", "0.03"): 11.0,
        ("0.3", "0.01"): 5.0, ("0.3", "0.03"): 13.0,
    }  # fmt: skip
    maml = write_step_size_run(
        root / "f_maml",
        algo="maml_trpo",
        means=maml_means,
        reference={"inner_lr": "0.1", "max_kl": "0.01"},
        iterations=tuple(range(10, 90, 10)),
        rise=0.0,
    )
    rl2 = write_step_size_run(
        root / "f_rl2",
        algo="rl2_ppo",
        means={("0.0003",): 4.0, ("0.001",): 10.0, ("0.003",): 20.0},
        reference={"lr": "0.001"},
        iterations=tuple(range(10, 90, 10)),
        rise=2.0,
    )
    out_dir = root / "out"
    code = report.generate([maml, rl2], str(out_dir))
    assert code == 0
    return out_dir, (out_dir / "report.md").read_text()


def _grid_rows(section, header_start):
    lines = section.splitlines()
    start = lines.index(next(line for line in lines if line.startswith(header_start)))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_step_size_grid_table_marks_the_reference(step_size_report):
    _, text = step_size_report
    section = _section(text, "f")
    assert "## (f) Sensitivity to step sizes" in text
    assert "the reference setting from flags.txt is inner_lr=0.1, max_kl=0.01" in section
    assert "(the cell marked **reference**, 95% CI [7.516, 12.48])." in section
    assert pytest.approx(2.484, abs=1e-3) == STEP_HALF
    assert "| inner_lr ↓ \\ max_kl → | 0.01 | 0.03 |" in section
    assert _grid_rows(section, "| inner_lr ↓") == [
        ["0.03", "9 ± 2.484", "6 ± 2.484"],
        ["0.1", "**10 ± 2.484** (reference)", "11 ± 2.484"],
        ["0.3", "5 ± 2.484", "13 ± 2.484"],
    ]
    # one swept setting: one column; RL² has not converged, each of its cells is marked
    assert _grid_rows(section, "| lr | final eval/return |") == [
        ["0.0003", "4 ± 2.484 †"],
        ["0.001", "**10 ± 2.484 †** (reference)"],
        ["0.003", "20 ± 2.484 †"],
    ]
    assert "†: not converged by the plateau test." in section
    # the member table names each member by its swept settings
    assert "| maml_trpo | navigation | `full` | 20 | — | inner_lr=0.3, max_kl=0.03 | 3 |" in section
    assert "- rl2_ppo on navigation, train full, `eval/return`: random 0 (lower); oracle 20" in (
        section
    )


def test_step_size_readings(step_size_report):
    out_dir, text = step_size_report
    readings = [line for line in _section(text, "f").splitlines() if line.startswith("Reading: ")]
    maml, rl2 = readings
    assert maml.startswith("Reading: On navigation, maml_trpo: With max_kl at its reference value")
    assert (
        "With max_kl at its reference value 0.01, inner_lr from 0.03 to 0.1 stays within the "
        "reference's 95% CI [7.516, 12.48]; 0.3 falls below (mean 5)." in maml
    )
    assert (
        "With inner_lr at its reference value 0.1, max_kl from 0.01 to 0.03 stays within the "
        "reference's 95% CI [7.516, 12.48]." in maml
    )
    assert (
        "The reference cell (inner_lr=0.1, max_kl=0.01), 10 (95% CI [7.516, 12.48]), is tied "
        "with the best, inner_lr=0.3, max_kl=0.03 with 13 (95% CI [10.52, 15.48]): their "
        "confidence intervals overlap." in maml
    )
    assert "Between the levels random (0) = 0 and oracle (20) = 1: the reference at 0.50, " in maml
    assert "the best at 0.65." in maml
    assert "Provisional" not in maml
    assert rl2.startswith("Reading: *Provisional* (not converged by the plateau test: lr=0.0003")
    assert (
        "only the reference value lr=0.001 lies within the reference's 95% CI [7.516, 12.48]; "
        "0.0003 falls below (mean 4), 0.003 lies above (mean 20)." in rl2
    )
    assert (
        "The reference cell (lr=0.001), 10 (95% CI [7.516, 12.48]), is beaten by the best, "
        "lr=0.003 with 20 (95% CI [17.52, 22.48]): their confidence intervals do not overlap."
        in rl2
    )
    glance = [line for line in text.splitlines() if line.startswith("| (f) |")]
    assert len(glance) == 2 and "| maml_trpo | yes |" in glance[0]
    for name in ("f_step_sizes_navigation_maml_trpo.png", "f_step_sizes_navigation_rl2_ppo.png"):
        assert f"](figures/{name})" in text
        with open(out_dir / "figures" / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_step_size_grid_in_the_stats_table(tmp_path):
    """The grid is computed before rendering: reference cell, best cell, standing, placements."""
    run_dir = write_step_size_run(
        tmp_path / "run",
        algo="pearl",
        means={("0.001",): 10.0, ("0.003",): 12.0, ("0.01",): 7.0},
        reference={"lr": "0.003"},
        iterations=(10, 20),
        rise=0.0,
    )
    run = report.load_run(run_dir)
    grid = report.build_stats_table([run]).grids[run.path]
    assert grid.settings == ("lr",) and grid.reference == ("0.003",)
    assert grid.reference_cell.interval.mean == pytest.approx(12.0)
    assert grid.best_cell is grid.reference_cell and grid.standing == "best"
    (line,) = grid.lines
    assert [(value, placement) for value, _, placement in line.cells] == [
        ("0.001", "within"), ("0.003", "within"), ("0.01", "below")
    ]  # fmt: skip


def test_step_size_reading_says_which_cells_have_not_learned(tmp_path):
    """Cells at or below the lower level (random, 0) have not learned: all of them, or some."""
    readings = []
    for name, means in (
        ("untrained", {("0.001",): -3.0, ("0.003",): -1.0, ("0.01",): 0.0}),
        ("partly", {("0.001",): -2.0, ("0.003",): 10.0, ("0.01",): 12.0}),
    ):
        run_dir = write_step_size_run(
            tmp_path / name, algo="rl2_ppo", means=means, reference={"lr": "0.003"},
            iterations=(10, 20), rise=0.0,
        )  # fmt: skip
        run = report.load_run(run_dir)
        grid = report.build_stats_table([run]).grids[run.path]
        readings.append(reading_f(grid))
    untrained, partly = readings
    assert untrained.startswith(
        "On navigation, rl2_ppo: No cell has learned: every cell's mean lies at or below the "
        "lower level random (0), so the ranges below compare untrained policies"
    )
    assert "1 of 3 cells lie at or below the lower level random (0) (not learned at this " in partly
    assert "budget): lr=0.001." in partly and "No cell has learned" not in partly


def test_step_size_runs_must_sweep_one_or_two_settings(tmp_path, capsys):
    none = write_run(tmp_path / "none", experiment="f", algo="maml_trpo", final={"20": OFFSETS})
    code, _, err = _generate(capsys, [none], tmp_path / "out")
    assert code == 2 and not (tmp_path / "out").exists()
    assert err.strip().count("\n") == 0
    assert "experiment (f) run sweeps 0 settings (--sweep); its section shows one or 2" in err
