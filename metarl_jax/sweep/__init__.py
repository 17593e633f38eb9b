"""Sweeps as one leading batch axis over members, sharded over devices, run as compiled chunks."""

from metarl_jax.sweep.engine import (
    MEMBER_AXIS,
    ChunkResult,
    init_states,
    initialize_distributed,
    member_mesh,
    padded_size,
    sweep_members,
    train,
)

__all__ = [
    "MEMBER_AXIS",
    "ChunkResult",
    "init_states",
    "initialize_distributed",
    "member_mesh",
    "padded_size",
    "sweep_members",
    "train",
]
