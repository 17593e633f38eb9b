"""A run killed at any moment resumes to the uninterrupted run's results; a half-written checkpoint
is never read; every file the app rewrites is whole or absent.

The slow test kills the app (SIGKILL) while it saves its first checkpoint, right after a progress
line, and while it saves the last chunk's checkpoints, resuming after each: metrics.csv (byte for
byte), the final state, the best checkpoint and the TensorBoard scalars equal a straight run's.
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from metarl_jax.io import checkpoints, metrics
from metarl_jax.io.atomic_files import replace_file

from .conftest import REPO_ROOT, TINY_FLAGS, run_main
from .test_live_logs import assert_event_files_match_metrics_csv

TMP_SUFFIX = ".orbax-checkpoint-tmp"


# ----- fast: the pieces -----------------------------------------------------------------------


def _state(value: float):
    return {"params": jnp.full((3, 2), value), "key": jnp.arange(4, dtype=jnp.uint32)}


def _saved(directory, iterations):
    manager = checkpoints.checkpoint_manager(directory)
    for iteration in iterations:
        metadata = checkpoints.checkpoint_metadata(iteration, [iteration * 10], {"flags": "--x=1"})
        checkpoints.save(manager, iteration, _state(float(iteration)), metadata)
    return manager


def test_a_half_written_checkpoint_is_never_read_and_the_next_save_replaces_it(tmp_path):
    directory = str(tmp_path / "checkpoints")
    _saved(directory, [2, 4])
    # What a save killed midway leaves: its temporary directory, part of its files.
    partial = os.path.join(directory, f"6{TMP_SUFFIX}")
    shutil.copytree(os.path.join(directory, "4"), partial)
    shutil.rmtree(os.path.join(partial, "default"))
    assert checkpoints.latest_iteration(directory) == 4
    assert checkpoints.read_metadata(directory)["iteration"] == 4

    manager = checkpoints.checkpoint_manager(directory)  # a resumed run's
    assert manager.latest_step() == 4
    restored = checkpoints.restore(manager, 4, _state(0.0))
    np.testing.assert_array_equal(restored["params"], np.full((3, 2), 4.0))
    checkpoints.save(manager, 6, _state(6.0), checkpoints.checkpoint_metadata(6, [60], {}))
    assert sorted(os.listdir(directory)) == ["2", "4", "6"]
    metadata = checkpoints.read_metadata(directory, 6)
    assert metadata["iteration"] == 6 and metadata["env_steps"] == [60]


def test_checkpoint_metadata_reads_back_without_the_state(tmp_path):
    directory = str(tmp_path / "checkpoints")
    assert checkpoints.read_metadata(directory) == {}
    assert not os.path.exists(directory)  # reading creates nothing
    _saved(directory, [2])
    metadata = checkpoints.read_metadata(directory, 2)
    assert metadata["iteration"] == 2 and metadata["flags"] == "--x=1"
    assert metadata["env_steps"] == [20] and metadata["utc_time"].endswith("+00:00")


def test_provenance_names_versions_devices_and_no_commit_outside_git(tmp_path):
    found = checkpoints.provenance()
    assert found["versions"]["jax"] == jax.__version__ and found["devices"]
    assert set(found["versions"]) == set(checkpoints.PACKAGES)
    assert checkpoints.git_commit(str(tmp_path)) is None


def test_best_is_the_highest_finite_mean_over_members():
    metric = "eval/return"
    assert checkpoints.headline_value({metric: np.array([1.0, 2.0])}, metric) == 1.5
    assert checkpoints.headline_value({}, metric) is None
    best = {"metric": metric, "value": 1.5, "iteration": 2}
    assert checkpoints.improves(1.0, None)
    assert checkpoints.improves(1.6, best) and not checkpoints.improves(1.5, best)
    assert not checkpoints.improves(float("nan"), None) and not checkpoints.improves(None, best)


def test_one_best_checkpoint_its_value_read_back_and_a_killed_save_removed(tmp_path):
    directory = str(tmp_path / "checkpoints")
    assert checkpoints.best_so_far(directory) is None
    for iteration, value in ((2, -3.0), (4, -2.5)):
        best = {"metric": "eval/return", "value": value, "iteration": iteration}
        metadata = {**checkpoints.checkpoint_metadata(iteration, [1], {}), "best": best}
        checkpoints.save_best(directory, iteration, _state(value), metadata)
    best_dir = os.path.join(directory, checkpoints.BEST_DIR)
    shutil.copytree(os.path.join(best_dir, "4"), os.path.join(best_dir, f"6{TMP_SUFFIX}"))
    assert checkpoints.best_so_far(directory) == best
    assert sorted(os.listdir(best_dir)) == ["4"]


def test_a_resumed_session_saves_best_again_at_an_iteration_a_killed_one_saved(tmp_path):
    """Best of iteration 4 saved, then killed before the latest checkpoint 4: the resumed
    session's best of 4 replaces it; a plain save never silently skips a step."""
    directory = str(tmp_path / "checkpoints")
    for value in (-3.0, -2.0):
        best = {"metric": "eval/return", "value": value, "iteration": 4}
        metadata = {**checkpoints.checkpoint_metadata(4, [1], {}), "best": best}
        checkpoints.save_best(directory, 4, _state(value), metadata)
    assert checkpoints.best_so_far(directory)["value"] == -2.0
    manager = checkpoints.checkpoint_manager(str(tmp_path / "latest"))
    checkpoints.save(manager, 4, _state(0.0))
    with pytest.raises(ValueError, match="iteration 2 not saved"):
        checkpoints.save(manager, 2, _state(0.0))


HEADER = "iteration,env_steps,seed,eval/return\r\n"
ROW_2 = "2,20,0,-1.5\r\n"
ROW_4 = "4,40,0,-1.25\r\n"


@pytest.mark.parametrize(
    "tail",
    ["", "6,60,0,-1", "1", "6,60\r\n", "6,60,0,-1.0\r"],
    ids=["none", "cut-row", "cut-iteration", "too-few-fields", "cut-line-end"],
)
def test_truncate_after_drops_later_and_cut_rows_byte_for_byte(tmp_path, tail):
    path = str(tmp_path / "metrics.csv")
    with open(path, "w", newline="") as f:
        f.write(HEADER + ROW_2 + ROW_4 + tail)
    metrics.truncate_after(path, 4)
    with open(path, newline="") as f:
        assert f.read() == HEADER + ROW_2 + ROW_4
    metrics.truncate_after(path, 2)
    with open(path, newline="") as f:
        assert f.read() == HEADER + ROW_2
    assert os.listdir(tmp_path) == ["metrics.csv"]


def test_truncate_after_removes_a_file_without_a_whole_header(tmp_path):
    path = str(tmp_path / "metrics.csv")
    with open(path, "w", newline="") as f:
        f.write("iteration,env_st")
    metrics.truncate_after(path, 0)
    assert not os.path.exists(path)


def test_replace_file_leaves_the_old_version_until_the_new_one_is_whole(tmp_path):
    path = str(tmp_path / "flags.txt")
    replace_file(path, "--a=1\n")
    with open(f"{path}.tmp", "w") as f:
        f.write("--a=")  # a write killed midway
    with open(path) as f:
        assert f.read() == "--a=1\n"
    replace_file(path, "--a=2\n")
    with open(path) as f:
        assert f.read() == "--a=2\n"
    assert os.listdir(tmp_path) == ["flags.txt"]


# ----- slow: the app killed and resumed -------------------------------------------------------

ITERATIONS = 6
KILL_FLAGS = (
    *TINY_FLAGS,
    "--seeds=0,1",
    f"--num_iterations={ITERATIONS}",
    "--log_every=2",
)
SWEEP_COLUMNS = ["meta_batch_size"]


def _pending_saves(out_dir) -> list[str]:
    """The temporary directories of checkpoint saves under way (latest or best)."""
    found = []
    for sub in ("checkpoints", os.path.join("checkpoints", checkpoints.BEST_DIR)):
        directory = os.path.join(out_dir, sub)
        if os.path.isdir(directory):
            found += [os.path.join(sub, n) for n in os.listdir(directory) if TMP_SUFFIX in n]
    return found


def _run_until_killed(out_dir, *args, after_line=None, during_save_of=None, timeout=300):
    """Start the app; SIGKILL it as soon as it prints a line starting with `after_line`, or as
    soon as a checkpoint save of iteration `during_save_of` is under way. Returns (stdout so
    far, what the kill interrupted)."""
    env = dict(os.environ, PYTHONPATH=REPO_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.setdefault("JAX_PLATFORMS", "cpu")
    process = subprocess.Popen(
        [sys.executable, "-m", "experiments.main", *args, f"--out_dir={out_dir}"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    output, interrupted, deadline = [], None, time.monotonic() + timeout
    try:
        while interrupted is None and process.poll() is None and time.monotonic() < deadline:
            while not lines.empty():
                output.append(lines.get())
                if after_line and output[-1].startswith(after_line):
                    interrupted = f"after {output[-1].strip()!r}"
                    break
            pending = [p for p in _pending_saves(out_dir) if f"{during_save_of}{TMP_SUFFIX}" in p]
            if during_save_of and pending:
                interrupted = f"during the save of {pending}"
            if interrupted is None:
                time.sleep(0.001)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert interrupted, f"never reached the kill point; output:\n{''.join(output)}"
    return "".join(output), interrupted


def _leaves(out_dir, iteration, sub="checkpoints"):
    manager = checkpoints.checkpoint_manager(os.path.join(out_dir, sub), writing=False)
    return jax.tree.leaves(manager.restore(iteration, args=ocp.args.StandardRestore()))


def _json(out_dir, name):
    with open(os.path.join(out_dir, name)) as f:
        return json.load(f)


def _bytes(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.slow
def test_a_run_killed_at_any_point_resumes_to_the_straight_runs_results(tmp_path):
    straight = str(tmp_path / "straight")
    result = run_main(*KILL_FLAGS, f"--out_dir={straight}")
    assert result.returncode == 0, result.stderr[-3000:]

    killed = str(tmp_path / "killed")
    # 1. during the first checkpoint's save: nothing complete to resume from, metrics.csv has
    # the first chunk's rows already
    _, what = _run_until_killed(killed, *KILL_FLAGS, during_save_of=2)
    assert checkpoints.latest_iteration(os.path.join(killed, "checkpoints")) is None, what
    # 2. right after a progress line (its checkpoint complete)
    output, _ = _run_until_killed(killed, *KILL_FLAGS, "--resume", after_line="iter 4/6")
    assert "from iteration 0" in output
    # 3. during the last chunk's checkpoint saves (the best's or the latest's)
    output, what = _run_until_killed(killed, *KILL_FLAGS, "--resume", during_save_of=6)
    assert "from iteration 4" in output, output
    assert _pending_saves(killed), what
    # 4. to the end
    result = run_main(*KILL_FLAGS, "--resume", f"--out_dir={killed}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "from iteration 4" in result.stdout

    assert _bytes(os.path.join(killed, "metrics.csv")) == _bytes(
        os.path.join(straight, "metrics.csv")
    )
    for a, b in zip(_leaves(killed, ITERATIONS), _leaves(straight, ITERATIONS), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not _pending_saves(killed)
    best = [
        checkpoints.read_metadata(os.path.join(d, "checkpoints", "best"))
        for d in (killed, straight)
    ]
    assert best[0]["best"] == best[1]["best"]
    iteration = best[1]["best"]["iteration"]
    for a, b in zip(
        _leaves(killed, iteration, "checkpoints/best"),
        _leaves(straight, iteration, "checkpoints/best"),
        strict=True,
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert_event_files_match_metrics_csv(killed, SWEEP_COLUMNS)
    assert_event_files_match_metrics_csv(straight, SWEEP_COLUMNS)
    for name in ("flags.txt", "run.json"):
        assert _bytes(os.path.join(killed, name)) == _bytes(os.path.join(straight, name))
    killed_summary, straight_summary = (_json(d, "summary.json") for d in (killed, straight))
    assert killed_summary["members"] == straight_summary["members"]
    assert killed_summary["best_checkpoint"] == best[1]["best"]
    assert killed_summary["provenance"]["run"] == _json(killed, "run.json")
    assert killed_summary["provenance"]["versions"]["orbax-checkpoint"] == ocp.__version__
