"""Sweeps as one leading batch axis over members, sharded over devices, run as compiled chunks."""

from metarl_jax.sweep.engine import (
    LAYOUTS,
    MEMBER_AXIS,
    ChunkResult,
    evaluate_states,
    init_states,
    initialize_distributed,
    iteration_cost,
    member_mesh,
    padded_size,
    sweep_members,
    sweep_plan,
    train,
)

__all__ = [
    "LAYOUTS",
    "MEMBER_AXIS",
    "ChunkResult",
    "evaluate_states",
    "init_states",
    "initialize_distributed",
    "iteration_cost",
    "member_mesh",
    "padded_size",
    "sweep_members",
    "sweep_plan",
    "train",
]
