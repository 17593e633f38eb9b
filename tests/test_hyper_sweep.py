"""Numeric settings as sweep axes: a member swept over a setting equals a run with that value
alone (its parameters and every metric), in the packed and the masked layout and after resuming;
a setting that is not a number the algorithm only computes with is refused."""

import csv
import dataclasses
import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from metarl_jax.algos import MamlConfig, make_macaw, make_maml, make_pearl, make_rl2
from metarl_jax.algos.hyper_sweep import swept_algorithm
from metarl_jax.algos.settings import sweep_error, sweepable_settings
from metarl_jax.envs import make_env
from metarl_jax.sweep import sweep_members, train

from .conftest import (
    MEMBERS_DIFFER,
    TINY_FLAGS,
    assert_trees_close,
    max_abs_difference,
    member_index,
    pick,
    run_main,
    tiny_config,
    tiny_navigation,
)
from .test_macaw import bandit, thompson_data, tiny_macaw
from .test_pearl import HORIZON, tiny_pearl
from .test_rl2 import tiny_rl2

ITERATIONS = 2


def assert_member_equals_run(result, i, alone):
    assert_trees_close(pick(result.state.params, i), pick(alone.state.params, 0))
    for name in ("train_metrics", "eval_metrics"):
        got, wanted = getattr(result, name), getattr(alone, name)
        assert set(got) == set(wanted)
        for metric in wanted:
            np.testing.assert_allclose(
                got[metric][i], wanted[metric][0], rtol=1e-4, atol=1e-5, err_msg=metric
            )
    assert result.env_steps[i] == alone.env_steps[0]


def _maml(outer_optimizer):
    config = tiny_config(outer_optimizer=outer_optimizer, max_meta_batch_size=2)
    return make_maml, config, tiny_navigation()


def _rl2():
    config = tiny_rl2(max_meta_batch_size=2, num_minibatches=2)
    return make_rl2, config, tiny_navigation(config.horizon)


def _pearl():
    return make_pearl, tiny_pearl(max_meta_batch_size=2), make_env("navigation", horizon=HORIZON)


def _macaw():
    data = thompson_data(3, 2, 100)
    return functools.partial(make_macaw, data=data), tiny_macaw(max_meta_batch_size=2), bandit()


# Each algorithm's step sizes of study (f), two values each: seed 0 x meta-batch {1, 2} x the
# 2 x 2 grid = 8 members in one call; the grid's corners at meta-batch 2 are run alone.
CASES = {
    "maml_trpo": (
        functools.partial(_maml, "trpo"), {"inner_lr": (0.05, 0.3), "max_kl": (0.002, 0.02)}
    ),
    "maml_ppo": (
        functools.partial(_maml, "ppo"), {"inner_lr": (0.05, 0.3), "outer_lr": (1e-3, 1e-2)}
    ),
    "rl2_ppo": (_rl2, {"outer_lr": (1e-3, 1e-2), "clip": (0.1, 0.3)}),
    "pearl": (_pearl, {"sac_lr": (3e-4, 3e-3), "kl_weight": (0.01, 1.0)}),
    "macaw": (_macaw, {"initial_inner_lr": (0.1, 1.0), "policy_lr": (1e-4, 1e-2)}),
}  # fmt: skip
# every algorithm in its default layout (packed where it packs), MAML-TRPO in both (the
# layouts' equality for each algorithm is tests/test_packed_sweep.py's); the slow tier
PARAMS = [
    ("maml_trpo", "packed"),
    ("maml_trpo", "masked"),
    ("maml_ppo", "packed"),
    ("rl2_ppo", "packed"),
    ("pearl", "masked"),
    ("macaw", "masked"),
]


@functools.cache
def swept_run(name, layout):
    build, hypers = CASES[name]
    make, config, env = build()
    members, rows = sweep_members((0,), (1, 2), hypers=hypers)
    algorithm = swept_algorithm(make, config, env)
    return list(train(algorithm, members, ITERATIONS, ITERATIONS, layout=layout))[-1], rows


@functools.cache
def run_alone(name, values):
    build, _ = CASES[name]
    make, config, env = build()
    members, _ = sweep_members((0,), (2,))
    algorithm = make(dataclasses.replace(config, **dict(values)), env)
    return list(train(algorithm, members, ITERATIONS, ITERATIONS))[-1]


@pytest.mark.slow
@pytest.mark.parametrize("name, layout", PARAMS)
def test_swept_members_equal_their_runs_alone(name, layout):
    result, rows = swept_run(name, layout)
    hypers = CASES[name][1]
    lowest = {s: values[0] for s, values in hypers.items()}
    highest = {s: values[-1] for s, values in hypers.items()}
    corners = [
        member_index(rows, seed=0, meta_batch_size=2, **values) for values in (lowest, highest)
    ]
    assert len(rows) == 8 and len(corners) == 2
    for i in corners:
        alone = run_alone(name, tuple((s, rows[i][s]) for s in hypers))
        assert_member_equals_run(result, i, alone)
    # the swept values change the result
    first, last = (pick(result.state.params, i) for i in corners)
    assert max_abs_difference(first, last) > MEMBERS_DIFFER


def test_sweep_rows_carry_each_swept_value_seeds_fastest():
    _, rows = sweep_members((0, 1), (2,), hypers={"inner_lr": (0.1, 0.2)})
    assert rows == [
        {"seed": 0, "meta_batch_size": 2, "num_train_tasks": 0, "inner_lr": 0.1},
        {"seed": 1, "meta_batch_size": 2, "num_train_tasks": 0, "inner_lr": 0.1},
        {"seed": 0, "meta_batch_size": 2, "num_train_tasks": 0, "inner_lr": 0.2},
        {"seed": 1, "meta_batch_size": 2, "num_train_tasks": 0, "inner_lr": 0.2},
    ]


def test_shape_and_choice_settings_are_not_sweepable():
    sweepable = set(sweepable_settings(MamlConfig))
    assert {"inner_lr", "max_kl", "outer_lr", "clip"} <= sweepable
    shaped = {"hidden_sizes", "rollouts_per_task", "inner_steps", "ppo_steps", "cg_iterations"}
    assert not sweepable & shaped
    assert not sweepable & {"activation", "inner_loss", "first_order", "outer_objective"}


@pytest.mark.parametrize(
    "name, values, expected",
    [
        ("inner_lrr", (0.1,), "inner_lrr is not a setting of MamlConfig"),
        ("hidden_sizes", ((8,),), "hidden_sizes cannot be swept in one call"),
        ("inner_steps", (1, 2), "inner_steps cannot be swept in one call"),
        ("inner_lr", (), "inner_lr needs at least one value"),
        ("max_kl", (0.01, -1.0), "max_kl"),
    ],
)
def test_bad_sweeps_are_refused_with_one_reason(name, values, expected):
    error = sweep_error(MamlConfig(), name, values)
    assert error is not None and error.startswith(expected), error
    assert "\n" not in error


def test_a_good_sweep_has_no_error():
    assert sweep_error(MamlConfig(), "inner_lr", (0.05, 0.1, 0.2)) is None
    assert dataclasses.replace(MamlConfig(), inner_lr=0.05).inner_lr == 0.05


# ----- through the app: flags.txt, metrics.csv, --resume ------------------------------------------

APP_SWEEP = ("--algo=maml_trpo", "--sweep=inner_lr:0.05,0.3", "--seeds=0,1")


def _metrics(out_dir) -> list[dict]:
    with open(os.path.join(out_dir, "metrics.csv")) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def app_runs(tmp_path_factory):
    """The swept run whole, the same run stopped after 2 iterations and resumed to 4, and the
    two values alone, all at once."""
    root = tmp_path_factory.mktemp("hyper_sweep")
    out = {name: str(root / name) for name in ("swept", "resumed", "lr0.05", "lr0.3")}
    jobs = {
        "swept": (*TINY_FLAGS, *APP_SWEEP, f"--out_dir={out['swept']}"),
        "resumed": (*TINY_FLAGS, *APP_SWEEP, "--num_iterations=2", f"--out_dir={out['resumed']}"),
        "lr0.05": (*TINY_FLAGS, "--algo=maml_trpo", "--inner_lr=0.05", "--seeds=0,1",
                   f"--out_dir={out['lr0.05']}"),
        "lr0.3": (*TINY_FLAGS, "--algo=maml_trpo", "--inner_lr=0.3", "--seeds=0,1",
                  f"--out_dir={out['lr0.3']}"),
    }  # fmt: skip
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = {name: pool.submit(run_main, *args) for name, args in jobs.items()}
        results = {name: future.result() for name, future in results.items()}
    for name, result in results.items():
        assert result.returncode == 0, (name, result.stderr[-2000:])
    resumed = run_main(
        f"--flagfile={out['resumed']}/flags.txt",
        f"--out_dir={out['resumed']}",
        "--resume",
        "--num_iterations=4",
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    return out


@pytest.mark.slow
def test_app_sweep_members_equal_their_runs_alone_and_survive_resume(app_runs):
    swept = _metrics(app_runs["swept"])
    assert [r["inner_lr"] for r in swept[:4]] == ["0.05", "0.05", "0.3", "0.3"]
    for lr in ("0.05", "0.3"):
        alone = {(r["iteration"], r["seed"]): r for r in _metrics(app_runs[f"lr{lr}"])}
        rows = [r for r in swept if r["inner_lr"] == lr]
        assert len(rows) == len(alone) == 4  # 2 logged iterations x 2 seeds
        for row in rows:
            wanted = alone[(row["iteration"], row["seed"])]
            for column, value in wanted.items():
                if "/" in column:
                    np.testing.assert_allclose(
                        float(row[column]), float(value), rtol=1e-4, atol=1e-5, err_msg=column
                    )
    resumed = _metrics(app_runs["resumed"])
    assert len(resumed) == len(swept)
    for got, wanted in zip(resumed, swept, strict=True):
        assert got == wanted  # resume is bitwise: the same text
    with open(os.path.join(app_runs["swept"], "flags.txt")) as f:
        assert "--sweep=inner_lr:0.05,0.3" in f.read().splitlines()
    with open(os.path.join(app_runs["swept"], "summary.json")) as f:
        text = f.read()
    assert '"inner_lr": 0.05' in text and '"inner_lr": 0.3' in text


@pytest.mark.slow
@pytest.mark.parametrize(
    "sweep, expected",
    [
        ("inner_lrr:0.1", "error: --sweep: inner_lrr is not a setting of MamlConfig"),
        ("hidden_sizes:8", "error: --sweep: hidden_sizes cannot be swept in one call"),
        ("inner_lr:x", "error: --sweep: inner_lr: 'x' is not a number"),
        ("inner_lr:", "error: --sweep: inner_lr needs at least one value"),
    ],
)
def test_app_refuses_a_bad_sweep_in_one_line_writing_nothing(tmp_path, sweep, expected):
    out_dir = tmp_path / "run"
    result = run_main(*TINY_FLAGS, f"--sweep={sweep}", f"--out_dir={out_dir}", timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(expected), result.stderr
    assert not out_dir.exists()
