"""Per-member values computed one member at a time (members whose slot counts differ cannot
share a vmap), gathered back into the task axis's layout of member values."""

import jax
import jax.numpy as jnp

from metarl_jax.algos.task_axis import TaskAxis


def from_members(axis: TaskAxis, values: list):
    """The inverse of `axis.members`: the masked axis's one member's values as they are, a
    pack's stacked [G, ...]."""
    if axis.pack is None:
        (only,) = values
        return only
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *values)


def concatenated(parts: list, axis: int = 0):
    """Per-member pieces of a slot-wise tree joined on `axis` (one piece: itself)."""
    if len(parts) == 1:
        return parts[0]
    return jax.tree.map(lambda *leaves: jnp.concatenate(leaves, axis=axis), *parts)
