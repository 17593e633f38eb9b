"""Ring buffers: exact slot contents by hand, masking, overflow, sampling, vmap and jit."""

import jax
import jax.numpy as jnp
import numpy as np

from metarl_jax.rl.replay import (
    ReplayBuffer,
    add,
    add_to_slot,
    clear,
    clear_slot,
    empty_buffer,
    sample,
    sample_slot,
)

# Compiled once per shape: far cheaper on a CPU than dispatching every op eagerly.
add_jit = jax.jit(add)
sample_jit = jax.jit(sample, static_argnums=2)

EXAMPLE = {
    "obs": jax.ShapeDtypeStruct((2,), jnp.float32),
    "reward": jax.ShapeDtypeStruct((), jnp.float32),
    "step": jax.ShapeDtypeStruct((), jnp.int32),
}


def rows(values):
    """A batch whose row i holds values[i] in every field."""
    values = np.asarray(values, np.float32)
    return {
        "obs": jnp.stack([values, -values], axis=1),
        "reward": jnp.asarray(values),
        "step": jnp.asarray(values, jnp.int32),
    }


def assert_slots(buffer, expected, position, size):
    expected = np.asarray(expected, np.float32)
    np.testing.assert_array_equal(buffer.data["reward"], expected)
    np.testing.assert_array_equal(buffer.data["obs"], np.stack([expected, -expected], axis=1))
    np.testing.assert_array_equal(buffer.data["step"], expected.astype(np.int32))
    assert int(buffer.position) == position
    assert int(buffer.size) == size


def test_empty_buffer_shapes_and_dtypes():
    buffer = empty_buffer(EXAMPLE, 4)
    assert buffer.data["obs"].shape == (4, 2) and buffer.data["obs"].dtype == jnp.float32
    assert buffer.data["reward"].shape == (4,)
    assert buffer.data["step"].dtype == jnp.int32
    assert buffer.position.dtype == jnp.int32 and buffer.size.dtype == jnp.int32
    from_arrays = empty_buffer({"x": jnp.zeros((3,), jnp.float32)}, 2)
    assert from_arrays.data["x"].shape == (2, 3)


def test_wrap_around_by_hand():
    buffer = add_jit(empty_buffer(EXAMPLE, 5), rows([1, 2, 3]), jnp.ones(3))
    assert_slots(buffer, [1, 2, 3, 0, 0], position=3, size=3)
    buffer = add_jit(buffer, rows([4, 5, 6, 7]), jnp.ones(4))
    # 4, 5 fill slots 3, 4; 6, 7 wrap onto slots 0, 1.
    assert_slots(buffer, [6, 7, 3, 4, 5], position=2, size=5)


def test_invalid_rows_are_dropped_and_valid_rows_compacted():
    buffer = empty_buffer(EXAMPLE, 6)
    buffer = add_jit(buffer, rows([10, 11, 12, 13, 14]), jnp.array([1.0, 0.0, 1.0, 1.0, 0.0]))
    assert_slots(buffer, [10, 12, 13, 0, 0, 0], position=3, size=3)
    buffer = add_jit(buffer, rows([20, 21, 22]), jnp.array([False, True, True]))
    assert_slots(buffer, [10, 12, 13, 21, 22, 0], position=5, size=5)
    unchanged = add_jit(buffer, rows([30, 31]), jnp.zeros(2))
    assert_slots(unchanged, [10, 12, 13, 21, 22, 0], position=5, size=5)


def test_batch_larger_than_capacity_keeps_the_last_valid_rows():
    buffer = add_jit(empty_buffer(EXAMPLE, 3), rows([100]), jnp.ones(1))
    valid = jnp.array([1.0, 1, 1, 1, 1, 1, 0, 1])
    buffer = add_jit(buffer, rows(np.arange(8)), valid)
    # Valid rows 0..5, 7 (seven rows) written from slot 1: the last three (4, 5, 7) survive,
    # in slots (1 + 4) % 3 = 2, (1 + 5) % 3 = 0 and (1 + 6) % 3 = 1.
    assert_slots(buffer, [5, 7, 4], position=2, size=3)
    # The next row overwrites the oldest survivor.
    buffer = add_jit(buffer, rows([9]), jnp.ones(1))
    assert_slots(buffer, [5, 7, 9], position=0, size=3)


def test_clear():
    buffer = add_jit(empty_buffer(EXAMPLE, 4), rows([1, 2, 3]), jnp.ones(3))
    cleared = clear(buffer)
    assert int(cleared.position) == 0 and int(cleared.size) == 0
    refilled = add_jit(cleared, rows([8]), jnp.ones(1))
    assert_slots(refilled, [8, 2, 3, 0], position=1, size=1)


def test_sample_returns_only_valid_rows():
    buffer = add_jit(empty_buffer(EXAMPLE, 10), rows([7, 8, 9]), jnp.ones(3))
    drawn = sample_jit(buffer, jax.random.key(0), 1000)
    assert drawn["obs"].shape == (1000, 2) and drawn["step"].shape == (1000,)
    values = np.asarray(drawn["reward"])
    assert set(values.tolist()) == {7.0, 8.0, 9.0}
    np.testing.assert_array_equal(drawn["obs"][:, 1], -values)
    empty = sample_jit(empty_buffer(EXAMPLE, 10), jax.random.key(1), 4)
    assert empty["obs"].shape == (4, 2)


def test_vmap_over_buffers_equals_separate_adds():
    capacity = 4
    single = empty_buffer(EXAMPLE, capacity)
    stacked = jax.tree.map(lambda x: jnp.stack([x] * 3), single)
    batches = [rows(np.arange(5) + 10 * i) for i in range(3)]
    stacked_batch = jax.tree.map(lambda *x: jnp.stack(x), *batches)
    masks = jnp.array([[1.0, 1, 1, 1, 1], [0, 1, 0, 1, 0], [0, 0, 0, 0, 0]])
    add_all = jax.jit(jax.vmap(add))
    result = add_all(add_all(stacked, stacked_batch, masks), stacked_batch, masks[::-1])
    for i in range(3):
        expected = add_jit(add_jit(single, batches[i], masks[i]), batches[i], masks[2 - i])
        mine = jax.tree.map(lambda x, i=i: x[i], result)
        jax.tree.map(np.testing.assert_array_equal, mine, expected)
    keys = jax.random.split(jax.random.key(2), 3)
    drawn = jax.vmap(sample, in_axes=(0, 0, None))(result, keys, 6)
    assert drawn["obs"].shape == (3, 6, 2)


def test_jit_matches_eager():
    buffer = empty_buffer(EXAMPLE, 5)
    batch, valid = rows([1, 2, 3, 4, 5, 6, 7]), jnp.array([1.0, 0, 1, 1, 0, 1, 1])
    eager = add(add(buffer, batch, valid), batch, valid)
    jitted = add_jit(add_jit(buffer, batch, valid), batch, valid)
    assert isinstance(jitted, ReplayBuffer)
    jax.tree.map(np.testing.assert_array_equal, jitted, eager)
    drawn = sample_jit(jitted, jax.random.key(3), 8)
    assert drawn["reward"].shape == (8,)
    jax.tree.map(np.testing.assert_array_equal, jax.jit(clear)(jitted), clear(eager))


def test_slot_operations_equal_the_same_operations_on_that_buffer():
    """add/clear/sample on slot s of stacked buffers == on buffer s alone; other slots untouched,
    also when the same slot is written twice in a row (a task drawn twice in one iteration)."""
    single = empty_buffer(EXAMPLE, 4)
    stacked = jax.tree.map(lambda x: jnp.stack([x] * 3), single)
    batch, valid = rows([1, 2, 3, 4, 5]), jnp.array([1.0, 0, 1, 1, 1])

    @jax.jit
    def through_slots(buffers, slot):
        buffers = add_to_slot(buffers, slot, batch, valid)
        buffers = add_to_slot(buffers, slot, batch, valid)
        cleared = clear_slot(buffers, 2 - slot)
        return cleared, sample_slot(cleared, slot, jax.random.key(5), 7)

    stacked, drawn = through_slots(stacked, jnp.int32(0))
    expected = add_jit(add_jit(single, batch, valid), batch, valid)
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(lambda x: x[0], stacked), expected)
    jax.tree.map(np.testing.assert_array_equal, drawn, sample(expected, jax.random.key(5), 7))
    for untouched in (1, 2):
        jax.tree.map(
            np.testing.assert_array_equal,
            jax.tree.map(lambda x, i=untouched: x[i], stacked),
            single,
        )
