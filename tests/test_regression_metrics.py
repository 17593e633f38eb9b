"""metrics.csv of fixed-seed runs equal the values recorded before the app refactor.

One small configuration per algorithm runs through the apps (flags -> config -> sweep -> results);
its metrics.csv must equal the one recorded from main before the registry and the generated flags
(tests/data/regression/, written by `python -m tests.test_regression_metrics DIR [CASE ...]`,
only for a case that has no recording yet). Numbers are
compared to a relative 1e-6: the same computation on the same CPU gives the same bits, and the
tolerance only absorbs a last-bit change of XLA's op order on another CPU. Re-recorded once, when
evaluations began to play the same tasks at every iteration and to log
eval/reward_per_step: every train/ and optim/ column was checked equal to the first recording.
"""

import csv
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from .conftest import TINY_FLAGS, TINY_PEARL_FLAGS, run_main

pytestmark = pytest.mark.slow  # learning checks and app runs: the slow tier

DATA = os.path.join(os.path.dirname(__file__), "data", "regression")

CASES = {
    # recorded in the masked layout (the packed one, the default since, equals it to
    # float tolerance: tests/test_packed_sweep.py)
    "maml_trpo": (
        *TINY_FLAGS,
        "--algo=maml_trpo",
        "--seeds=0,1",
        "--meta_batch_size=1,2",
        "--sweep_layout=masked",
    ),
    # the default layout, pinned on its own (recorded 2026-12-07, when it had run as the default
    # for several sessions): packed and masked agree to float tolerance, not bit for bit
    "maml_trpo_packed": (
        *TINY_FLAGS,
        "--algo=maml_trpo",
        "--seeds=0,1",
        "--meta_batch_size=1,2",
        "--sweep_layout=packed",
    ),
    "rl2_ppo": (*TINY_FLAGS, "--algo=rl2_ppo", "--ppo_epochs=2", "--num_minibatches=2"),
    "pearl": TINY_PEARL_FLAGS,
    "macaw": (
        "--env=bandit",
        "--num_arms=3",
        "--algo=macaw",
        "--hidden_sizes=8",
        "--meta_batch_size=2",
        "--batch_size=8",
        "--num_eval_tasks=2",
        "--eval_adapt_steps=1",
        "--num_iterations=4",
        "--log_every=2",
    ),
}
OFFLINE_DATA_FLAGS = (
    "--env=bandit",
    "--num_arms=3",
    "--num_train_tasks=3",
    "--num_test_tasks=2",
    "--steps_per_task=40",
)


def run_case(name: str, out_dir: str) -> str:
    """Runs one case into out_dir (MACAW's offline data beside it); returns metrics.csv's path."""
    args = CASES[name]
    if name == "macaw":
        data_dir = out_dir + "_data"
        made = run_main(
            *OFFLINE_DATA_FLAGS, f"--out_dir={data_dir}", module="experiments.make_offline_data"
        )
        assert made.returncode == 0, made.stderr[-3000:]
        args = (*args, f"--offline_data={data_dir}")
    result = run_main(*args, f"--out_dir={out_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return os.path.join(out_dir, "metrics.csv")


def read_metrics(path: str):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return list(rows[0]), rows


@pytest.fixture(scope="module")
def fresh_runs(tmp_path_factory):
    """Every case run once, two at a time (each app run is mostly one compile thread)."""
    root = tmp_path_factory.mktemp("regression")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_case, name, str(root / name)) for name in CASES}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_metrics_csv_equals_the_recorded_run(name, fresh_runs):
    expected_columns, expected = read_metrics(os.path.join(DATA, f"{name}.csv"))
    columns, rows = read_metrics(fresh_runs[name])
    assert columns == expected_columns
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        for column in columns:
            try:
                got, wanted = float(row[column]), float(want[column])
            except ValueError:
                assert row[column] == want[column], column
                continue
            np.testing.assert_allclose(got, wanted, rtol=1e-6, atol=1e-7, err_msg=column)


if __name__ == "__main__":  # record: python -m tests.test_regression_metrics SCRATCH_DIR [CASE ...]
    import shutil

    for case in sys.argv[2:] or sorted(CASES):
        shutil.copy(
            run_case(case, os.path.join(sys.argv[1], case)), os.path.join(DATA, f"{case}.csv")
        )
        print("recorded", case)
