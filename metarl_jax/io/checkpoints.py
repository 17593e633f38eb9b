"""Orbax checkpoints of the stacked sweep state, one per logged iteration (latest few kept), and
the best one by the headline evaluation in `best/` beside them.

Every checkpoint carries its metadata (orbax's step metadata, JSON): the iteration, env steps
per member, the UTC time and the run's provenance (`provenance`: package versions, devices, git
commit, plus what the app adds: flags, run record). `read_metadata` reads it without the state's
structure. Orbax writes a step into `<step>.orbax-checkpoint-tmp` and renames it when complete,
so a killed save leaves only that directory, which no listing counts and the next manager
removes.
"""

import datetime
import importlib.metadata
import math
import os
import subprocess

import jax
import numpy as np
import orbax.checkpoint as ocp

BEST_DIR = "best"
PACKAGES = (
    "jax",
    "jaxlib",
    "flax",
    "optax",
    "orbax-checkpoint",
    "mujoco",
    "mujoco-mjx",
    "brax",
    "numpy",
    "metarl_jax",
)


def checkpoint_manager(
    directory: str, max_to_keep: int = 3, writing: bool = True
) -> ocp.CheckpointManager:
    """The manager of a run's checkpoints; `writing` creates the directory and removes what a
    killed save left, a reader (`writing=False`) changes nothing."""
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=writing, cleanup_tmp_directories=writing
    )
    return ocp.CheckpointManager(
        os.path.abspath(directory),
        item_handlers=ocp.StandardCheckpointHandler(),
        options=options,
    )


def save(manager: ocp.CheckpointManager, iteration: int, state, metadata: dict | None = None):
    # orbax skips, returning False, a step at or below the latest one it holds
    if not manager.save(iteration, args=ocp.args.StandardSave(state), custom_metadata=metadata):
        raise ValueError(f"checkpoint of iteration {iteration} not saved (a later one exists)")
    manager.wait_until_finished()


def latest_iteration(directory: str) -> int | None:
    if not os.path.isdir(directory):
        return None
    manager = checkpoint_manager(directory, writing=False)
    latest = manager.latest_step()
    manager.close()
    return latest


def restore(manager: ocp.CheckpointManager, iteration: int, template):
    """Restore into the structure (and dtypes, shapes) of `template`, e.g. a fresh init."""
    return manager.restore(iteration, args=ocp.args.StandardRestore(template))


def read_metadata(directory: str, iteration: int | None = None) -> dict:
    """A checkpoint's metadata (the latest one's by default); {} where none was saved."""
    manager = checkpoint_manager(directory, writing=False)
    try:
        iteration = manager.latest_step() if iteration is None else iteration
        if iteration is None:
            return {}
        return dict(manager.metadata(iteration).custom_metadata or {})
    finally:
        manager.close()


def checkpoint_metadata(iteration: int, env_steps, run_provenance: dict) -> dict:
    return {
        "iteration": int(iteration),
        "env_steps": [int(n) for n in np.asarray(env_steps)],
        "utc_time": utc_now(),
        **run_provenance,
    }


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def provenance() -> dict:
    """What produced a run: package versions, the devices, the git commit of the code (None
    outside a git checkout)."""
    return {
        "versions": package_versions(),
        "backend": jax.default_backend(),
        "devices": [str(device) for device in jax.devices()],
        "process_count": jax.process_count(),
        "git_commit": git_commit(os.path.dirname(os.path.abspath(__file__))),
    }


def package_versions(packages=PACKAGES) -> dict:
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(directory: str) -> str | None:
    """HEAD's commit of the checkout holding `directory`, with "-dirty" when tracked files
    differ from it; None without git or a checkout."""
    try:
        head = _git(directory, "rev-parse", "HEAD")
        changed = _git(directory, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if changed else head


def _git(directory: str, *args) -> str:
    return subprocess.run(
        ["git", "-C", directory, *args], capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


# ----- the best checkpoint ------------------------------------------------------------------


def save_best(directory: str, iteration: int, state, metadata: dict) -> None:
    """The best checkpoint of the run whose checkpoints are in `directory`: one, in `best/`."""
    manager = checkpoint_manager(os.path.join(directory, BEST_DIR), max_to_keep=1)
    for stale in [step for step in manager.all_steps() if step >= iteration]:
        manager.delete(stale)  # saved by a session killed before its latest checkpoint of them
    save(manager, iteration, state, metadata)
    manager.close()


def best_so_far(directory: str) -> dict | None:
    """{"metric", "value", "iteration"} of the best checkpoint saved, None before the first.
    Removes what a killed save of it left."""
    best_dir = os.path.join(directory, BEST_DIR)
    if not os.path.isdir(best_dir):
        return None
    checkpoint_manager(best_dir, max_to_keep=1).close()
    return read_metadata(best_dir).get("best")


def headline_value(eval_metrics: dict, metric: str) -> float | None:
    """The headline evaluation averaged over the sweep members; None where it is not logged."""
    if metric not in eval_metrics:
        return None
    return float(np.mean(np.asarray(eval_metrics[metric], dtype=np.float64)))


def improves(value: float | None, best: dict | None) -> bool:
    if value is None or not math.isfinite(value):
        return False
    return best is None or value > best["value"]
