"""Fixed-capacity ring buffers of transitions as device arrays, pure and vmappable.

Writing starts at slot 0 and wraps, so the valid rows are always slots [0, size). Per-task buffers
are stacked on a leading axis and the functions here vmapped over it.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class ReplayBuffer(NamedTuple):
    data: Any  # pytree of [capacity, ...] arrays
    position: jax.Array  # int32 scalar: the next slot to write
    size: jax.Array  # int32 scalar: number of valid rows, <= capacity


def _capacity(buffer: ReplayBuffer) -> int:
    return jax.tree.leaves(buffer.data)[0].shape[0]


def empty_buffer(example, capacity: int) -> ReplayBuffer:
    """A zero-filled buffer shaped after one transition (arrays or ShapeDtypeStructs)."""

    def zeros(leaf):
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            leaf = jnp.asarray(leaf)
        return jnp.zeros((capacity, *leaf.shape), leaf.dtype)

    return ReplayBuffer(
        jax.tree.map(zeros, example), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32)
    )


def _write_plan(position, size, valid, capacity: int):
    """Where each row of a batch goes (`capacity`: dropped), and the new position and size."""
    valid = jnp.asarray(valid).astype(bool)
    counts = valid.astype(jnp.int32)
    rank = jnp.cumsum(counts) - counts  # position among the valid rows
    n_valid = jnp.sum(counts)
    # Only the last `capacity` valid rows are written, so no two writes share a slot.
    write = valid & (rank >= n_valid - capacity)
    rows = jnp.where(write, (position + rank) % capacity, capacity)
    new_position = ((position + n_valid) % capacity).astype(jnp.int32)
    new_size = jnp.minimum(size + n_valid, capacity).astype(jnp.int32)
    return rows, new_position, new_size


def add(buffer: ReplayBuffer, batch, valid: jax.Array) -> ReplayBuffer:
    """Append the rows of `batch` (leading axis B) where `valid`, in order; drop the rest."""
    rows, position, size = _write_plan(buffer.position, buffer.size, valid, _capacity(buffer))
    data = jax.tree.map(
        lambda stored, new: stored.at[rows].set(new.astype(stored.dtype), mode="drop"),
        buffer.data,
        batch,
    )
    return ReplayBuffer(data, position, size)


# Stacked buffers ([num_slots, capacity, ...], e.g. one per task) addressed by a traced slot: the
# same operations as above on buffer `slot`, touching only the rows written or read (indexing a
# whole slot out and back would copy it).


def add_to_slot(buffers: ReplayBuffer, slot: jax.Array, batch, valid: jax.Array) -> ReplayBuffer:
    capacity = jax.tree.leaves(buffers.data)[0].shape[1]
    rows, position, size = _write_plan(buffers.position[slot], buffers.size[slot], valid, capacity)
    data = jax.tree.map(
        lambda stored, new: stored.at[slot, rows].set(new.astype(stored.dtype), mode="drop"),
        buffers.data,
        batch,
    )
    return ReplayBuffer(
        data, buffers.position.at[slot].set(position), buffers.size.at[slot].set(size)
    )


def clear_slot(buffers: ReplayBuffer, slot: jax.Array) -> ReplayBuffer:
    return buffers._replace(
        position=buffers.position.at[slot].set(0), size=buffers.size.at[slot].set(0)
    )


def sample_slot(buffers: ReplayBuffer, slot: jax.Array, key: jax.Array, n: int):
    indices = jax.random.randint(key, (n,), 0, jnp.maximum(buffers.size[slot], 1))
    return jax.tree.map(lambda stored: stored[slot, indices], buffers.data)


def clear(buffer: ReplayBuffer) -> ReplayBuffer:
    """An empty buffer; the stored arrays are kept but no longer valid."""
    zero = jnp.zeros_like(buffer.position)
    return ReplayBuffer(buffer.data, zero, zero)


def sample(buffer: ReplayBuffer, key: jax.Array, n: int):
    """n rows drawn uniformly with replacement from the valid rows (row 0 if empty)."""
    indices = jax.random.randint(key, (n,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda stored: stored[indices], buffer.data)
