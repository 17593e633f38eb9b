"""Orbax checkpoints of the stacked sweep state, one per logged iteration (latest few kept)."""

import os

import orbax.checkpoint as ocp


def checkpoint_manager(directory: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        os.path.abspath(directory),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
    )


def save(manager: ocp.CheckpointManager, iteration: int, state) -> None:
    manager.save(iteration, args=ocp.args.StandardSave(state))
    manager.wait_until_finished()


def latest_iteration(directory: str) -> int | None:
    if not os.path.isdir(directory):
        return None
    return checkpoint_manager(directory).latest_step()


def restore(manager: ocp.CheckpointManager, iteration: int, template):
    """Restore into the structure (and dtypes, shapes) of `template`, e.g. a fresh init."""
    return manager.restore(iteration, args=ocp.args.StandardRestore(template))
