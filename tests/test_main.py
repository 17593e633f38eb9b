"""End to end through the absl app, in subprocesses: the results contract, resume, bad inputs.

Three full (tiny) runs: a straight 4-iteration run; a 2-iteration run started from the straight
run's flags.txt; that run resumed to 4 iterations. Bad inputs exit before compiling, so they are
cheap; they run two at a time.
"""

import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments.flags_file import parse_flag_lines
from metarl_jax.algos.meta_training import evaluation_keys
from metarl_jax.baselines import scripted_returns
from metarl_jax.envs import make_env
from metarl_jax.io import checkpoints
from metarl_jax.tasks import Restriction, make_sampler

from .conftest import REPO_ROOT, TINY_FLAGS, TINY_PEARL_FLAGS, run_main, snapshot

# Two seeds x two meta-batch sizes: four members in one call.
SWEEP_FLAGS = (*TINY_FLAGS, "--seeds=0,1", "--meta_batch_size=1,2")
MEMBERS = [(1, 0), (1, 1), (2, 0), (2, 1)]  # (meta_batch_size, seed), in metrics.csv order
ITERATIONS = 4
LOG_EVERY = 2
HORIZON, ROLLOUTS = 5, 2


def _ok(result):
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


RUN_CONTENTS = [
    "checkpoints",
    "flags.txt",
    "metrics.csv",
    "plots",
    "run.json",
    "summary.json",
    "tensorboard",
]


def _rows(out_dir):
    with open(os.path.join(out_dir, "metrics.csv"), newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def _read(path):
    with open(path) as f:
        return f.read()


def _restore(out_dir, iteration):
    manager = checkpoints.checkpoint_manager(os.path.join(out_dir, "checkpoints"))
    return manager.restore(iteration, args=ocp.args.StandardRestore())


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp("main") / "straight")
    result = _ok(run_main(*SWEEP_FLAGS, f"--out_dir={out_dir}"))
    return out_dir, result


# ----- a. the results contract ---------------------------------------------------------------


@pytest.mark.slow
def test_results_contract(straight_run):
    out_dir, result = straight_run
    assert sorted(os.listdir(out_dir)) == RUN_CONTENTS

    columns, rows = _rows(out_dir)
    assert columns[:4] == ["iteration", "env_steps", "seed", "meta_batch_size"]
    assert "num_train_tasks" not in columns  # not swept in this run
    for name in ("train/return", "eval/return_step0", "eval/return_step1"):
        assert name in columns
    assert "eval/return_step2" not in columns  # --eval_adapt_steps=1
    assert columns.index("train/return") < columns.index("eval/return_step0")
    assert columns.index("eval/return_step0") < columns.index("eval/return_step1")
    assert all("/" in c for c in columns[4:])

    # One row per logged iteration x member.
    expected_keys = [(str(i), str(m), str(s)) for i in (2, 4) for m, s in MEMBERS]
    assert [(r["iteration"], r["meta_batch_size"], r["seed"]) for r in rows] == expected_keys
    for row in rows:
        # meta-batch x episodes x horizon x (1 inner step + post-adaptation) x iterations
        steps = int(row["meta_batch_size"]) * ROLLOUTS * HORIZON * 2 * int(row["iteration"])
        assert int(row["env_steps"]) == steps
        for name in ("train/return", "eval/return_step0", "eval/return_step1"):
            value = float(row[name])
            # Navigation rewards are minus a distance of at most ~1.2 per step.
            assert np.isfinite(value) and -1.5 * HORIZON < value <= 0.0
    # Every member sees the same evaluation tasks at the same iteration, but trains differently.
    final = [r for r in rows if r["iteration"] == "4"]
    assert len({r["train/return"] for r in final}) > 1

    assert sorted(os.listdir(os.path.join(out_dir, "checkpoints"))) == ["2", "4", "best"]
    state = _restore(out_dir, ITERATIONS)
    np.testing.assert_array_equal(state["iteration"], [ITERATIONS] * len(MEMBERS))

    plots = sorted(os.listdir(os.path.join(out_dir, "plots")))
    assert plots and all(p.endswith(".png") for p in plots)
    for name in plots:
        with open(os.path.join(out_dir, "plots", name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    with open(os.path.join(out_dir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["iterations"] == ITERATIONS
    assert summary["num_members"] == len(MEMBERS)
    assert sorted(summary["plots"]) == sorted(f"plots/{p}" for p in plots)
    # reference levels: the scripted navigation policies on the final evaluation's own tasks
    env = make_env("navigation", horizon=HORIZON)
    task_key, data_key = evaluation_keys()
    tasks = make_sampler(env.task_space, Restriction())(task_key, 2)
    levels = summary["levels"]["eval"]
    assert levels["metric"] == "eval/return"
    assert (levels["lower"], levels["upper"]) == ("stay_at_start", "fastest_to_goal")
    expected = scripted_returns(env, tasks, data_key)
    assert levels["values"] == pytest.approx(expected, rel=1e-6)
    assert summary["members"][0]["convergence"]["metric"] == "eval/return"
    by_size = {m["meta_batch_size"]: m for m in summary["members"]}
    assert sorted(by_size) == [1, 2]
    for size, member in by_size.items():
        assert member["iteration"] == ITERATIONS
        assert member["seeds"] == [0, 1]
        values = [float(r["eval/return_step1"]) for r in final if r["meta_batch_size"] == str(size)]
        assert member["eval/return_step1"]["mean"] == pytest.approx(np.mean(values), rel=1e-5)
        assert member["eval/return_step1"]["std"] == pytest.approx(np.std(values), abs=1e-5)

    flags_text = _read(os.path.join(out_dir, "flags.txt")).splitlines()
    expected_flags = [f for f in TINY_FLAGS if not f.startswith("--meta_batch_size")]
    for flag in (*expected_flags, "--seeds=0,1", "--meta_batch_size=1,2"):
        assert flag in flags_text
    assert not any(line.startswith(("--out_dir", "--resume", "--noresume")) for line in flags_text)
    assert "iter 4/4" in result.stdout


# ----- flags.txt as --flagfile, and resume == uninterrupted ----------------------------------


@pytest.fixture(scope="module")
def resumed_run(straight_run, tmp_path_factory):
    straight_dir, _ = straight_run
    out_dir = str(tmp_path_factory.mktemp("main") / "resumed")
    flagfile = f"--flagfile={os.path.join(straight_dir, 'flags.txt')}"
    first = _ok(run_main(flagfile, "--num_iterations=2", f"--out_dir={out_dir}"))
    first_rows = _rows(out_dir)
    first_flags = _read(os.path.join(out_dir, "flags.txt"))
    # The run's own flags.txt continues it.
    flagfile = f"--flagfile={os.path.join(out_dir, 'flags.txt')}"
    second = _ok(run_main(flagfile, "--resume", "--num_iterations=4", f"--out_dir={out_dir}"))
    return out_dir, first, first_rows, first_flags, second


@pytest.mark.slow
def test_flags_txt_reproduces_the_run(straight_run, resumed_run):
    straight_dir, _ = straight_run
    _, _, (columns, rows), first_flags, _ = resumed_run
    straight_flags = _read(os.path.join(straight_dir, "flags.txt"))
    # Same flags but the number of iterations.
    assert first_flags == straight_flags.replace("--num_iterations=4", "--num_iterations=2")
    straight_columns, straight_rows = _rows(straight_dir)
    assert columns == straight_columns
    assert rows == [r for r in straight_rows if r["iteration"] == "2"]


@pytest.mark.slow
def test_resume_equals_uninterrupted_run(straight_run, resumed_run):
    straight_dir, _ = straight_run
    resumed_dir, _, _, _, second = resumed_run
    assert "resuming" in second.stdout and "from iteration 2" in second.stdout
    assert "iter 4/4" in second.stdout
    straight = _restore(straight_dir, ITERATIONS)
    resumed = _restore(resumed_dir, ITERATIONS)
    flat_straight, tree = jax.tree.flatten(straight)
    flat_resumed, resumed_tree = jax.tree.flatten(resumed)
    assert tree == resumed_tree
    for a, b in zip(flat_straight, flat_resumed, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # params, Adam, keys
    # metrics.csv: the iteration-2 rows kept, the iteration-4 rows identical, nothing doubled.
    assert _rows(resumed_dir) == _rows(straight_dir)
    assert sorted(os.listdir(os.path.join(resumed_dir, "checkpoints"))) == ["2", "4", "best"]
    with open(os.path.join(resumed_dir, "summary.json")) as f:
        resumed_summary = json.load(f)
    with open(os.path.join(straight_dir, "summary.json")) as f:
        straight_summary = json.load(f)
    assert resumed_summary["members"] == straight_summary["members"]


# ----- c. bad inputs: a non-zero exit, one line naming the flag, nothing written ------------

BAD_FLAGS = {
    "unknown-env": ("--env=moon", "env"),
    "unknown-algo": ("--algo=maml_sgd", "algo"),
    "meta-batch-zero": ("--meta_batch_size=0", "meta_batch_size"),
    "meta-batch-empty": ("--meta_batch_size=", "meta_batch_size"),
    "seeds-not-integers": ("--seeds=a", "seeds"),
    "train-range-empty": ("--train_tasks=range:0.2,0.1", "train_tasks"),
    "train-range-outside": ("--train_tasks=range:0,2", "train_tasks"),
    "eval-complement-covers": ("--eval_tasks=complement:-0.5,0.5", "eval_tasks"),
    "eval-adapt-steps-too-many": ("--eval_adapt_steps=1000", "eval_adapt_steps"),
    # a setting is checked by the config of the algorithm that has it
    "episodes-per-trial-zero": (("--algo=rl2_ppo", "--episodes_per_trial=0"), "episodes_per_trial"),
    "out-of-sample-run-trains-on-everything": (
        ("--experiment=d", "--eval_tasks=complement:0,0.5", "--eval_train_region"),
        "train_tasks",
    ),
    "rl2-more-minibatches-than-tasks": (
        ("--algo=rl2_ppo", "--num_minibatches=3"),
        "num_minibatches",
    ),
    "pearl-on-discrete-actions": (("--algo=pearl", "--env=bandit"), "algo"),
    "pearl-without-gradient-steps": (("--algo=pearl", "--grad_steps=0"), "grad_steps"),
    # checked by PearlConfig itself (no flag check repeats it): still one line naming the flag
    "pearl-encoder-trained-by-nothing": (
        ("--algo=pearl", "--nocritic_trains_encoder"),
        "critic_trains_encoder",
    ),
}


@pytest.fixture(scope="module")
def bad_runs(straight_run, tmp_path_factory):
    """Every bad invocation, two at a time: {case: (result, what it must leave untouched)}."""
    straight_dir, _ = straight_run
    root = tmp_path_factory.mktemp("bad")
    empty_dir = root / "empty"
    empty_dir.mkdir()
    straight_flagfile = f"--flagfile={os.path.join(straight_dir, 'flags.txt')}"
    cases = {
        name: (
            (
                *TINY_FLAGS,
                *((flag,) if isinstance(flag, str) else flag),
                f"--out_dir={root / name}",
            ),
            flag_name,
            root / name,
        )
        for name, (flag, flag_name) in BAD_FLAGS.items()
    }
    cases["existing-run-without-resume"] = (
        (*SWEEP_FLAGS, f"--out_dir={straight_dir}"),
        "out_dir",
        None,
    )
    cases["resume-missing-dir"] = (
        (*TINY_FLAGS, "--resume", f"--out_dir={root / 'missing'}"),
        "resume",
        root / "missing",
    )
    cases["resume-empty-dir"] = (
        (*TINY_FLAGS, "--resume", f"--out_dir={empty_dir}"),
        "resume",
        None,
    )
    cases["resume-changed-inner-lr"] = (
        (straight_flagfile, "--inner_lr=0.2", "--resume", f"--out_dir={straight_dir}"),
        "inner_lr",
        None,
    )
    before = {"straight": snapshot(straight_dir), "empty": snapshot(empty_dir)}
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(run_main, *args, timeout=120) for name, (args, _, _) in cases.items()
        }
        results = {name: future.result() for name, future in futures.items()}
    after = {"straight": snapshot(straight_dir), "empty": snapshot(empty_dir)}
    return {
        name: (results[name], flag_name, new_dir, before, after)
        for name, (_, flag_name, new_dir) in cases.items()
    }


@pytest.mark.slow  # app subprocesses (one per bad input)
@pytest.mark.parametrize(
    "case",
    [
        *BAD_FLAGS,
        "existing-run-without-resume",
        "resume-missing-dir",
        "resume-empty-dir",
        "resume-changed-inner-lr",
    ],
)
def test_bad_input_is_refused_before_anything_is_written(bad_runs, case):
    result, flag_name, new_dir, before, after = bad_runs[case]
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"--{flag_name}" in lines[0]
    assert "Traceback" not in result.stderr
    assert "sweep members" not in result.stdout  # never got as far as building the run
    if new_dir is not None:
        assert not os.path.exists(new_dir)
    # The existing run and the empty directory are untouched (contents and modification times).
    assert after["straight"] == before["straight"]
    assert after["empty"] == before["empty"] == {}


@pytest.mark.slow
def test_non_finite_loss_stops_the_run_without_writing_that_chunk(tmp_path):
    """An inner step of 1e30 makes the adapted policy, and so the outer loss, NaN at once."""
    out_dir = tmp_path / "diverged"
    result = run_main(*TINY_FLAGS, "--inner_lr=1e30", f"--out_dir={out_dir}")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "non-finite" in lines[0], result.stderr
    assert "Last good checkpoint: none written yet" in lines[0]
    # The bad chunk left neither metrics nor a checkpoint behind; the run's flags are there.
    assert (out_dir / "flags.txt").exists()
    assert not (out_dir / "metrics.csv").exists()
    assert not any((out_dir / "checkpoints").iterdir())


@pytest.mark.slow
def test_rl2_through_the_app(tmp_path):
    """RL² from flags: the results contract with one evaluation column per episode of a trial,
    and RL²'s reference defaults recorded in flags.txt where the flags left them unset."""
    out_dir = tmp_path / "rl2"
    result = run_main(
        *TINY_FLAGS,
        "--algo=rl2_ppo",
        "--ppo_epochs=2",
        "--num_minibatches=2",
        f"--out_dir={out_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(out_dir)) == RUN_CONTENTS
    columns, rows = _rows(out_dir)
    for name in ("train/return", "eval/return", "eval/return_episode0", "eval/return_episode1"):
        assert name in columns
    assert "eval/return_step0" not in columns
    assert {int(r["env_steps"]) for r in rows if r["iteration"] == "4"} == {4 * 2 * 2 * 5}
    flags_text = _read(out_dir / "flags.txt")
    assert "--clip=0.2\n" in flags_text  # RL²'s default, the flag being unset
    assert "--hidden_sizes=8\n" in flags_text  # given explicitly: kept
    with open(out_dir / "summary.json") as f:
        summary = json.load(f)
    assert summary["algo"] == "rl2_ppo"
    assert np.isfinite(summary["members"][0]["eval/return"]["mean"])
    # the whole trial's reward per step: both episodes of 5 steps
    final = [r for r in rows if r["iteration"] == "4"]
    for row in final:
        played = float(row["eval/return_episode0"]) + float(row["eval/return_episode1"])
        assert float(row["eval/reward_per_step"]) == pytest.approx(played / 10, rel=1e-5)


@pytest.mark.slow
def test_pearl_through_the_app(tmp_path):
    """PEARL from flags: the results contract with one evaluation column per episode, env steps
    counting the initial data of every training task, PEARL's defaults in flags.txt."""
    out_dir = tmp_path / "pearl"
    result = run_main(*TINY_PEARL_FLAGS, f"--out_dir={out_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(os.listdir(out_dir)) == RUN_CONTENTS
    columns, rows = _rows(out_dir)
    for name in ("train/return", "eval/return", "eval/return_episode0", "eval/return_episode2"):
        assert name in columns
    # k tasks x 1 initial episode + 4 iterations x 2 tasks x (1 prior + 2 posterior episodes)
    steps = {r["num_train_tasks"]: int(r["env_steps"]) for r in rows if r["iteration"] == "4"}
    assert steps == {"2": (2 + 4 * 2 * 3) * 5, "all": (3 + 4 * 2 * 3) * 5}
    flags_text = _read(out_dir / "flags.txt")
    assert "--meta_batch_size=2\n" in flags_text  # given explicitly: kept
    assert "--algo=pearl\n" in flags_text and "--hidden_sizes=8\n" in flags_text


def test_flags_txt_lines_parse_by_hand():
    lines = ["# comment", "--env=navigation", "--train_tasks=range:0,0.5", "--nofirst_order"]
    lines += ["--eval_train_region", "--out_dir=a=b", "", "--sweep=inner_lr:0.1", "--sweep=clip:1"]
    assert parse_flag_lines(lines) == {
        "env": "navigation",
        "train_tasks": "range:0,0.5",
        "first_order": "false",
        "eval_train_region": "true",
        "out_dir": "a=b",
        "sweep": "inner_lr:0.1\nclip:1",  # a repeated flag: every value, in order
    }
    with pytest.raises(ValueError, match="line 2"):
        parse_flag_lines(["--env=bandit", "env=bandit"])


@pytest.mark.slow
def test_readme_library_example_runs(tmp_path):
    """The README's "use it as a library" example runs as written and prints every member."""
    with open(os.path.join(REPO_ROOT, "README.md")) as f:
        readme = f.read()
    section = readme.split("## Use it as a library", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "example.py"
    script.write_text(code)
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 8 and lines[-1].startswith("10 {'seed': 1, 'meta_batch_size': 10")


@pytest.mark.slow
def test_first_chunk_only_then_resume_equals_the_straight_run(straight_run, tmp_path):
    """The study's two phases: the first chunk alone (expected wall time printed, checkpointed,
    no summary; flags.txt as a full run's), then --resume to the end == the uninterrupted run."""
    straight_dir, _ = straight_run
    out_dir = str(tmp_path / "two_phases")
    first = _ok(run_main(*SWEEP_FLAGS, "--first_chunk_only", f"--out_dir={out_dir}"))
    assert "expected wall time" in first.stdout and "stopped after the first chunk" in first.stdout
    assert not os.path.exists(os.path.join(out_dir, "summary.json"))
    assert sorted(os.listdir(os.path.join(out_dir, "checkpoints"))) == ["2", "best"]
    assert _read(os.path.join(out_dir, "flags.txt")) == _read(
        os.path.join(straight_dir, "flags.txt")
    )
    _ok(run_main(*SWEEP_FLAGS, "--resume", f"--out_dir={out_dir}"))
    assert _rows(out_dir) == _rows(straight_dir)
    for a, b in zip(
        jax.tree.leaves(_restore(out_dir, ITERATIONS)),
        jax.tree.leaves(_restore(straight_dir, ITERATIONS)),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
