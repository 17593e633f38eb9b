"""Sweeps as one leading batch axis over members, run as compiled chunks of iterations."""

from metarl_jax.sweep.engine import ChunkResult, init_states, sweep_members, train

__all__ = ["ChunkResult", "init_states", "sweep_members", "train"]
