"""Live logs: the TensorBoard event files read back (TFRecords of Event protos, the purge steps of
resumed sessions applied as TensorBoard applies them) hold metrics.csv's values; W&B in offline
mode (skipped where wandb is not installed)."""

import glob
import importlib.util
import os
import struct

import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from metarl_jax.io import live_logs, metrics

ROWS = [
    {"seed": 0, "meta_batch_size": 2},
    {"seed": 1, "meta_batch_size": 2},
]
SWEEP_COLUMNS = ["meta_batch_size"]
NAMES = ["seed=0,meta_batch_size=2", "seed=1,meta_batch_size=2"]


def read_events(logdir: str) -> list:
    """Every Event of every event file in `logdir`, files in name (= time) order."""
    events = []
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        with open(path, "rb") as f:
            data = f.read()
        offset = 0
        while offset + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            start = offset + 12
            if start + length + 4 > len(data):
                break  # a record cut short by a kill: TensorBoard skips it too
            events.append(event_pb2.Event.FromString(data[start : start + length]))
            offset = start + length + 4
    return events


def read_scalars(logdir: str) -> dict[str, dict[int, float]]:
    """{tag: {step: value}}; a session's start at step s drops what earlier files logged at
    steps >= s (tensorboardX's purge_step, as TensorBoard reads it)."""
    scalars: dict[str, dict[int, float]] = {}
    for event in read_events(logdir):
        if event.HasField("session_log") and event.session_log.status == event.session_log.START:
            for series in scalars.values():
                for step in [s for s in series if s >= event.step]:
                    del series[step]
        if event.HasField("summary"):
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    scalars.setdefault(value.tag, {})[event.step] = value.simple_value
    return scalars


def tags(logdir: str) -> set[str]:
    return {value.tag for event in read_events(logdir) for value in event.summary.value}


def assert_event_files_match_metrics_csv(out_dir: str, sweep_columns) -> None:
    """Every metric of every metrics.csv row is its member's TensorBoard scalar at that step."""
    rows = metrics.read_rows(os.path.join(out_dir, "metrics.csv"))
    by_member = {}
    for row in rows:
        name = live_logs.member_name(row, sweep_columns)
        if name not in by_member:
            by_member[name] = read_scalars(os.path.join(out_dir, live_logs.TENSORBOARD_DIR, name))
        scalars = by_member[name]
        step = int(row["iteration"])
        assert scalars[live_logs.ENV_STEPS_TAG][step] == int(row["env_steps"])
        for column in (c for c in row if "/" in c):
            # metrics.csv's 6 significant digits of the same float32
            assert _as_csv(scalars[column][step]) == row[column], (name, step, column)
    for name, scalars in by_member.items():
        logged = sorted(
            int(r["iteration"]) for r in rows if live_logs.member_name(r, sweep_columns) == name
        )
        assert sorted(scalars[live_logs.ENV_STEPS_TAG]) == logged, name
    assert sorted(by_member) == sorted(os.listdir(os.path.join(out_dir, live_logs.TENSORBOARD_DIR)))


def _as_csv(value: float) -> str:
    return "nan" if np.isnan(value) else f"{value:.6g}"


def _chunk_metrics(iteration: int) -> dict:
    return {
        "train/return": np.array([iteration + 0.25, -iteration - 0.5]),
        "eval/return": np.array([2.0 * iteration, np.nan]),
    }


def _session(out_dir, start_iteration, iterations, close=True):
    logs = live_logs.open_live_logs(
        str(out_dir),
        ROWS,
        SWEEP_COLUMNS,
        {"algo": "maml_trpo", "lr": 0.1},
        "--algo=maml_trpo\n--lr=0.1\n",
        start_iteration,
    )
    for iteration in iterations:
        live_logs.log_chunk(
            logs, iteration, [10 * iteration, 10 * iteration], _chunk_metrics(iteration)
        )
    if close:
        live_logs.close_live_logs(logs)


def test_member_name_and_flag_values():
    assert [live_logs.member_name(row, SWEEP_COLUMNS) for row in ROWS] == NAMES
    assert live_logs.flag_values({"a": "1", "b": "0.5", "c": "true", "d": "64,64"}) == {
        "a": 1,
        "b": 0.5,
        "c": True,
        "d": "64,64",
    }


def test_event_files_hold_every_metric_per_member_and_a_resume_purges_past_its_checkpoint(tmp_path):
    # A session killed (never closed) after logging iterations 2, 4 and 6 whose last checkpoint
    # was 4, resumed from 4: TensorBoard shows 2, 4 of the first session and 6, 8 of the second.
    _session(tmp_path, None, [2, 4, 6], close=False)
    _session(tmp_path, 4, [6, 8])
    assert sorted(os.listdir(tmp_path / live_logs.TENSORBOARD_DIR)) == NAMES
    for i, name in enumerate(NAMES):
        logdir = str(tmp_path / live_logs.TENSORBOARD_DIR / name)
        scalars = read_scalars(logdir)
        assert sorted(scalars) == ["env_steps", "eval/return", "train/return"]
        for step in (2, 4, 6, 8):
            expected = _chunk_metrics(step)
            assert scalars["env_steps"][step] == 10 * step
            for metric in ("train/return", "eval/return"):
                np.testing.assert_allclose(scalars[metric][step], expected[metric][i], rtol=1e-6)
        assert sorted(scalars["train/return"]) == [2, 4, 6, 8]
        assert {"flags/text_summary", "_hparams_/experiment"} <= tags(logdir)


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed")
def test_wandb_offline_writes_one_run_per_member(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    options = live_logs.WandbOptions(project="test", group="tiny", mode="offline")
    logs = live_logs.open_live_logs(
        str(tmp_path), ROWS, SWEEP_COLUMNS, {"lr": 0.1}, "--lr=0.1\n", None, False, options
    )
    assert not logs.tensorboard and len(logs.wandb) == 2
    live_logs.log_chunk(logs, 2, [20, 20], _chunk_metrics(2))
    live_logs.close_live_logs(logs)
    runs = glob.glob(str(tmp_path / "wandb" / "offline-run-*"))
    assert len(runs) == 2
    ids = sorted(path.rsplit("-", 1)[-1] for path in runs)
    assert ids == sorted(
        live_logs.wandb_id(str(tmp_path), name).rsplit("-", 1)[-1] for name in NAMES
    )


def test_live_log_flags_stay_out_of_flags_txt_and_wandb_without_the_package_is_refused(
    monkeypatch,
):
    from experiments import cli
    from experiments.app_plumbing import UsageError

    cli.FLAGS.unparse_flags()
    try:
        cli.FLAGS(["experiments.main", "--notensorboard", "--wandb", "--wandb_mode=offline"])
        assert "tensorboard" not in cli.flags_file_text()
        assert "wandb" not in cli.flags_file_text()
        real_find_spec = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *args: None if name == "wandb" else real_find_spec(name, *args),
        )
        with pytest.raises(UsageError, match="--wandb: the wandb package is not installed"):
            cli.check_live_log_flags()
    finally:
        cli.FLAGS.unparse_flags()
