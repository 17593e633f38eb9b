"""Numeric settings as sweep axes through the app: the sweep's rows, the settings that qualify,
bad sweeps refused in one line, and a swept app run equal to its values' runs alone, resumed bit
for bit, recorded in flags.txt and summary.json (each algorithm's swept members against runs
alone: tests/test_hyper_sweep_algorithms.py)."""

import csv
import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from metarl_jax.algos import MamlConfig
from metarl_jax.algos.settings import sweep_error, sweepable_settings
from metarl_jax.sweep import sweep_members

from .conftest import (
    TINY_FLAGS,
    run_main,
)


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


@pytest.fixture
def parse():
    """Parse a command line as the app does; the flags are reset afterwards."""
    from absl import flags

    from experiments import cli

    def parse_args(*args):
        flags.FLAGS.unparse_flags()
        flags.FLAGS(["experiments.main", *args])
        return cli.spec_from_flags()

    yield parse_args
    flags.FLAGS.unparse_flags()


@pytest.mark.parametrize(
    "sweep, expected",
    [
        ("inner_lrr:0.1", "--sweep: inner_lrr is not a setting of MamlConfig"),
        ("hidden_sizes:8", "--sweep: hidden_sizes cannot be swept in one call"),
        ("inner_lr:x", "--sweep: inner_lr: 'x' is not a number"),
        ("inner_lr:", "--sweep: inner_lr needs at least one value"),
        ("inner_lr", "--sweep: expected NAME:V1,V2,..., not 'inner_lr'"),
        ("max_kl:0.01,-1", "--sweep: max_kl: -1.0 must be positive"),
    ],
)
def test_a_bad_sweep_is_one_flag_error(parse, sweep, expected):
    from experiments.app_plumbing import UsageError

    with pytest.raises(UsageError) as error:
        parse(*TINY_FLAGS, f"--sweep={sweep}")
    assert str(error.value).startswith(expected), str(error.value)


def test_sweep_spec_names_columns_and_members(parse):
    spec = parse(*TINY_FLAGS, "--sweep=inner_lr:0.05,0.1", "--sweep=max_kl:0.01,0.02,0.03")
    assert spec.hypers == (("inner_lr", (0.05, 0.1)), ("max_kl", (0.01, 0.02, 0.03)))
    assert spec.sweep_columns == ("meta_batch_size", "inner_lr", "max_kl")
    assert spec.num_members == 6  # one seed, one meta-batch size


@pytest.mark.slow
def test_app_refuses_a_bad_sweep_with_exit_2_writing_nothing(tmp_path):
    out_dir = tmp_path / "run"
    result = run_main(*TINY_FLAGS, "--sweep=hidden_sizes:8", f"--out_dir={out_dir}", timeout=120)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --sweep: hidden_sizes cannot be swept in one call"), last
    assert not out_dir.exists()
