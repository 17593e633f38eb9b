"""The bandit table: RL² and MAML against the classic bandit baselines, for k arms and n pulls.

    python -m experiments.bandit_table                      # --preset=cpu: a reduced grid
    python -m experiments.bandit_table --preset=gpu         # k in {5, 10, 50} x n in {10, 100, 500}
    python -m experiments.bandit_table --arms=5 --pulls=10 --seeds=0,1,2

For every (k, n) it trains RL²-PPO (a trial is one episode of n pulls; the rl2_bandit flag file's
setting) and MAML-TRPO (pytorch-maml-rl's bandit setting; of the n pulls, the first n/2 are the
pre-adaptation batch and the last n/2 are pulled after one gradient step, all counted), all seeds
in one compiled call each, then plays every baseline and every trained agent on the same --instances
fresh bandit instances and prints the mean total reward with its standard error over instances
(learned agents: each instance's total averaged over seeds first). Beside them, the exact
Bayes-optimal value (the best expected total reward of any policy under the Beta(1,1) prior, by
dynamic programming) where its state count stays within reach. Writes table.md and table.csv in
--out_dir.
"""

import csv
import datetime
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from experiments.app_plumbing import (
    UsageError,
    check_empty_or_new_dir,
    check_one_of,
    check_positive,
    int_list,
    run_app,
)
from experiments.flags_file import read_flags_file
from metarl_jax.algos import MamlConfig, Rl2Config, make_maml, make_rl2
from metarl_jax.algos.maml import adaptation_steps
from metarl_jax.algos.rl2 import rl2_agent, trial_returns
from metarl_jax.baselines import (
    BASELINES,
    BAYES_OPTIMAL_MAX_STATES,
    BayesOptimalOutOfReach,
    bayes_optimal_value,
    oracle_expected_total,
    total_reward_table,
)
from metarl_jax.envs import make_env
from metarl_jax.rl import make_policy
from metarl_jax.sweep import sweep_members, train

# RL²'s iterations by number of pulls n (any other n: the largest count), with the rl2_bandit
# flag file's setting: at n = 10, 1,000 iterations reach 97 % of the Bayes-optimal value for
# k = 5 and 10; at n = 100 (each iteration ~10x dearer) 800 reach Thompson sampling, and the
# table stays within 20 min on 2 cores (BUILD_NOTES, "RL² and the bandit table"). MAML: the
# maml_trpo_bandit file's 300 iterations (at 100, two of four cells were still rising).
PRESETS = {
    "cpu": {
        "arms": (5, 10),
        "pulls": (10, 100),
        "rl2_iterations": {10: 1000, 100: 800},
        "maml_iterations": 300,
    },
    "gpu": {
        "arms": (5, 10, 50),
        "pulls": (10, 100, 500),
        "rl2_iterations": 2000,
        "maml_iterations": 500,
    },
}
AGENTS = ("rl2_ppo", "maml_trpo")
RL2_BANDIT_FLAGS = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "flags", "rl2_bandit.flags"
)
RL2_TRAINING_FIELDS = (
    "hidden_sizes", "gamma", "gae_lambda", "outer_lr", "ppo_epochs", "num_minibatches", "clip",
    "value_coef", "entropy_coef", "max_grad_norm",
)  # fmt: skip
MAML_BANDIT_FLAGS = os.path.join(os.path.dirname(RL2_BANDIT_FLAGS), "maml_trpo_bandit.flags")
MAML_TRAINING_FIELDS = ("hidden_sizes", "activation", "inner_lr", "gamma", "max_kl")
# the last quarter's seed-mean training return above (below) the quarter before by more than
# this fraction of its size: still rising (falling)
RISING = 0.01
BAYES_OPTIMAL = "bayes_optimal"
TABLE_SEED = 0xBA4D17

flags.DEFINE_string("preset", "cpu", f"Grid and training length: one of {tuple(PRESETS)}.")
flags.DEFINE_list("arms", [], "Numbers of arms k (default: the preset's).")
flags.DEFINE_list("pulls", [], "Numbers of pulls n (default: the preset's).")
flags.DEFINE_list("agents", list(AGENTS), f"Learned agents: any of {AGENTS}.")
flags.DEFINE_list("seeds", ["0", "1"], "Training seeds, one compiled call per agent and cell.")
flags.DEFINE_integer("rl2_iterations", 0, "RL² iterations for every n (0: the preset's, by n).")
flags.DEFINE_integer("maml_iterations", 0, "MAML iterations (0: the preset's).")
flags.DEFINE_integer("instances", 1000, "Fresh bandit instances every agent is evaluated on.")
flags.DEFINE_string("out_dir", None, "Output directory (default: runs/bandit_table_<timestamp>).")
FLAGS = flags.FLAGS


def parse_flags() -> dict:
    check_one_of("preset", FLAGS.preset, PRESETS)
    preset = PRESETS[FLAGS.preset]
    arms = int_list("arms", FLAGS.arms, minimum=2) if FLAGS.arms else preset["arms"]
    pulls = int_list("pulls", FLAGS.pulls, minimum=2) if FLAGS.pulls else preset["pulls"]
    if any(n % 2 for n in pulls):
        raise UsageError(f"--pulls: MAML splits n into two halves; give even n, got {pulls}")
    for agent in FLAGS.agents:
        check_one_of("agents", agent, AGENTS)
    seeds = int_list("seeds", FLAGS.seeds, minimum=0)
    if FLAGS.instances < 2:
        raise UsageError(f"--instances: {FLAGS.instances} must be at least 2")
    for name in ("rl2_iterations", "maml_iterations"):
        check_positive(name, getattr(FLAGS, name), allow_zero=True)
    out_dir = FLAGS.out_dir or os.path.join(
        "runs", f"bandit_table_{datetime.datetime.now():%Y%m%d-%H%M%S}"
    )
    check_empty_or_new_dir("out_dir", out_dir)
    return {
        "arms": arms,
        "pulls": pulls,
        "agents": tuple(a for a in AGENTS if a in FLAGS.agents),
        "seeds": seeds,
        "rl2_iterations": FLAGS.rl2_iterations or preset["rl2_iterations"],  # int or {n: int}
        "maml_iterations": FLAGS.maml_iterations or preset["maml_iterations"],
        "out_dir": out_dir,
    }


def _trained_params(algorithm, seeds, meta_batch_size, iterations):
    """Train every seed in one compiled call: the parameters of each seed, and the seed-mean
    training return over each quarter of the iterations (where there are four)."""
    members, _ = sweep_members(seeds, (meta_batch_size,))
    chunk = iterations // 4 if iterations % 4 == 0 else iterations
    results = list(train(algorithm, members, iterations, chunk_length=chunk))
    params = results[-1].state.params
    curve = [float(np.mean(r.train_metrics["train/return"])) for r in results]
    return [jax.tree.map(lambda leaf, i=i: leaf[i], params) for i in range(len(seeds))], curve


def _flag_file_values(path: str, fields: tuple[str, ...], defaults) -> dict:
    """The values a flag file sets for these config fields, typed as the config's defaults."""
    saved = read_flags_file(path)
    values = {}
    for name in fields:
        if name in saved:
            default = getattr(defaults, name)
            values[name] = (
                tuple(int(width) for width in saved[name].split(","))
                if isinstance(default, tuple)
                else type(default)(saved[name])
            )
    return values


def rl2_bandit_setting(num_pulls: int) -> tuple[Rl2Config, int]:
    """The rl2_bandit flag file's training setting (its one home) at n pulls: the config and the
    meta-batch size."""
    values = _flag_file_values(RL2_BANDIT_FLAGS, RL2_TRAINING_FIELDS, Rl2Config())
    meta_batch_size = int(read_flags_file(RL2_BANDIT_FLAGS)["meta_batch_size"])
    config = Rl2Config(
        horizon=num_pulls, episodes_per_trial=1, max_meta_batch_size=meta_batch_size, **values
    )
    return config, meta_batch_size


def maml_bandit_setting(num_pulls: int) -> tuple[MamlConfig, int]:
    """The maml_trpo_bandit flag file's setting (its one home) for n pulls: one-pull episodes,
    the first n/2 pulls adapt and the last n/2 are pulled after the step."""
    values = _flag_file_values(MAML_BANDIT_FLAGS, MAML_TRAINING_FIELDS, MamlConfig())
    meta_batch_size = int(read_flags_file(MAML_BANDIT_FLAGS)["meta_batch_size"])
    config = MamlConfig(
        horizon=1,
        rollouts_per_task=num_pulls // 2,
        max_meta_batch_size=meta_batch_size,
        **values,
    )
    return config, meta_batch_size


def rl2_totals(num_arms, num_pulls, tasks, key, seeds, iterations):
    """Total reward of RL² on each instance, per seed ([seeds, instances]), and its training
    curve."""
    env = make_env("bandit", horizon=num_pulls, num_arms=num_arms)
    config, meta_batch_size = rl2_bandit_setting(num_pulls)
    params, curve = _trained_params(make_rl2(config, env), seeds, meta_batch_size, iterations)
    agent = rl2_agent(config, env)
    returns = jax.jit(lambda p: trial_returns(config, env, agent, p, tasks, key))
    return np.stack([np.asarray(returns(p))[:, 0] for p in params]), curve


def maml_totals(num_arms, num_pulls, tasks, key, seeds, iterations):
    """Total reward of MAML-TRPO, n/2 pulls before and n/2 after one inner step ([seeds,
    instances]), and its training curve."""
    env = make_env("bandit", horizon=1, num_arms=num_arms)
    config, meta_batch_size = maml_bandit_setting(num_pulls)
    params, curve = _trained_params(make_maml(config, env), seeds, meta_batch_size, iterations)
    policy = make_policy(env, config.hidden_sizes, config.activation)

    @jax.jit
    def per_instance(p):
        def one(task, task_key):
            _, mean_rewards = adaptation_steps(config, env, policy, p, task, task_key, 1)
            return (num_pulls // 2) * jnp.sum(mean_rewards)

        keys = jax.random.split(key, tasks.arm_probs.shape[0])
        return jax.vmap(one)(tasks, keys)

    return np.stack([np.asarray(per_instance(p)) for p in params]), curve


LEARNERS = {"rl2_ppo": rl2_totals, "maml_trpo": maml_totals}


def bayes_optimal_row(num_arms: int, num_pulls: int) -> dict | None:
    """The exact Bayes-optimal value as a table row (se 0), or None where it is out of reach."""
    try:
        value = bayes_optimal_value(num_arms, num_pulls)
    except BayesOptimalOutOfReach:
        return None
    return {
        "arms": num_arms, "pulls": num_pulls, "agent": BAYES_OPTIMAL, "mean": value, "se": 0.0,
        "seeds": "",
    }  # fmt: skip


def rl2_iterations(settings: dict, num_pulls: int) -> int:
    """RL²'s training length for n pulls: one count, or the preset's count for n."""
    by_pulls = settings["rl2_iterations"]
    if isinstance(by_pulls, int):
        return by_pulls
    return by_pulls.get(num_pulls, max(by_pulls.values()))


def build_table(settings: dict) -> list[dict]:
    rows = []
    for num_arms in settings["arms"]:
        for num_pulls in settings["pulls"]:
            started = time.perf_counter()
            space = make_env("bandit", num_arms=num_arms).task_space
            key = jax.random.fold_in(jax.random.PRNGKey(TABLE_SEED), num_arms * 100_000 + num_pulls)
            task_key, play_key = jax.random.split(key)
            tasks = jax.vmap(space.sample)(jax.random.split(task_key, FLAGS.instances))
            cell = {"arms": num_arms, "pulls": num_pulls}
            for name, (mean, se) in total_reward_table(tasks, num_pulls, play_key).items():
                rows.append({**cell, "agent": name, "mean": mean, "se": se, "seeds": ""})
            optimum = bayes_optimal_row(num_arms, num_pulls)
            if optimum is not None:
                rows.append(optimum)
            for agent in settings["agents"]:
                iterations = (
                    rl2_iterations(settings, num_pulls)
                    if agent == "rl2_ppo"
                    else settings["maml_iterations"]
                )
                totals, curve = LEARNERS[agent](
                    num_arms, num_pulls, tasks, play_key, settings["seeds"], iterations
                )
                per_instance = totals.mean(axis=0)
                rows.append({
                    **cell,
                    "agent": agent,
                    "mean": float(per_instance.mean()),
                    "se": float(per_instance.std(ddof=1) / np.sqrt(per_instance.size)),
                    "seeds": len(settings["seeds"]),
                    "training": training_verdict(curve, iterations),
                })  # fmt: skip
            expected = oracle_expected_total(num_arms, num_pulls)
            print(
                f"k={num_arms} n={num_pulls}: done in {time.perf_counter() - started:.0f} s "
                f"(oracle's expectation n k/(k+1) = {expected:.2f}; Bayes-optimal value "
                f"{'out of reach' if optimum is None else format(optimum['mean'], '.3f')})",
                flush=True,
            )
    return rows


def training_verdict(curve: list[float], iterations: int) -> str:
    """The training return's seed-mean per quarter of the iterations and whether it still rose
    over the last quarter (by more than RISING of its size)."""
    quarters = ", ".join(f"{value:.3f}" for value in curve)
    if len(curve) < 2:
        return f"train/return {quarters} over {iterations} iterations (no quarters to compare)"
    change = curve[-1] - curve[-2]
    tolerance = RISING * abs(curve[-2])
    state = "still rising" if change > tolerance else "falling" if change < -tolerance else "flat"
    return f"train/return by quarter of {iterations} iterations {quarters}: {state}"


def markdown(rows: list[dict], agents: tuple[str, ...]) -> str:
    columns = [*BASELINES, BAYES_OPTIMAL, *agents]
    lines = [
        "| k | n | " + " | ".join(columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    cells = sorted({(r["arms"], r["pulls"]) for r in rows})
    for k, n in cells:
        by_agent = {r["agent"]: r for r in rows if (r["arms"], r["pulls"]) == (k, n)}
        values = [
            _bayes_optimal_entry(by_agent.get(c))
            if c == BAYES_OPTIMAL
            else f"{by_agent[c]['mean']:.2f} ± {by_agent[c]['se']:.2f}"
            for c in columns
        ]
        lines.append(f"| {k} | {n} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _bayes_optimal_entry(row: dict | None) -> str:
    return "not computed" if row is None else f"{row['mean']:.3f} (exact)"


def bayes_optimal_note(rows: list[dict]) -> str:
    """What the bayes_optimal column holds, and the cells where it was not computed."""
    cells = sorted({(r["arms"], r["pulls"]) for r in rows})
    computed = {(r["arms"], r["pulls"]) for r in rows if r["agent"] == BAYES_OPTIMAL}
    missing = [cell for cell in cells if cell not in computed]
    note = (
        f"{BAYES_OPTIMAL}: the expected total reward of the Bayes-optimal policy for n "
        "undiscounted pulls under the Beta(1,1) prior on every arm, the best any policy can earn "
        "on average over the task distribution; exact dynamic programming over the arms' "
        "posteriors, no standard error (se 0 in table.csv)."
    )
    if missing:
        listed = ", ".join(f"({k}, {n})" for k, n in missing)
        note += (
            f" Not computed for (k, n) = {listed}: over {BAYES_OPTIMAL_MAX_STATES:,} states, out "
            "of reach of the exact method."
        )
    return note


def main(argv):
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    settings = parse_flags()
    print(
        f"bandit table: k in {settings['arms']}, n in {settings['pulls']}, agents "
        f"{settings['agents']} (seeds {settings['seeds']}; RL² {settings['rl2_iterations']}, "
        f"MAML {settings['maml_iterations']} iterations), {FLAGS.instances} instances",
        flush=True,
    )
    rows = build_table(settings)
    out_dir = settings["out_dir"]
    os.makedirs(out_dir, exist_ok=True)
    table = markdown(rows, settings["agents"])
    header = (
        f"Mean total reward over {FLAGS.instances} fresh Bernoulli bandit instances "
        f"(p_i ~ U[0,1]) ± standard error over instances; learned agents averaged over seeds "
        f"{settings['seeds']}.\n\n{bayes_optimal_note(rows)}\n\n"
    )
    training = "\n".join(
        f"- {r['agent']}, k = {r['arms']}, n = {r['pulls']}: {r['training']}"
        for r in rows
        if r.get("training")
    )
    with open(os.path.join(out_dir, "table.md"), "w") as f:
        f.write(header + table + "\n\nTraining (convergence):\n" + training + "\n")
    with open(os.path.join(out_dir, "table.csv"), "w", newline="") as f:
        fields = ["arms", "pulls", "agent", "mean", "se", "seeds", "training"]
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)
    print("\n" + table + "\n\n" + training)
    print(f"\nwritten: {out_dir}/table.md, {out_dir}/table.csv", flush=True)
    return 0


def entry_point():
    run_app(main)


if __name__ == "__main__":
    entry_point()
