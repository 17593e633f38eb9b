"""The task axis of a meta-iteration: the leading axis of every per-task array, and the sweep
members its slots serve.

An algorithm writes one iteration against a `TaskAxis`; `update` runs it on the masked axis and
`packed_update` on the packed one, so the choice of layout lives here and nowhere in algorithm
code.

- **Masked** (one member): the member's `max_meta_batch_size` task slots; slot i weighs 1/m if
  i < m else 0. The member's values (parameters, optimizer state, keys) are its own, unstacked:
  a vmap over slots reads them with `in_axes=member_axis` (None).
- **Packed** (G members that differ only in meta-batch size): their real tasks side by side on
  sum(m_g) slots (`PackLayout`), each weighing 1/m_g. Members' values are stacked [G, ...] and
  reach their slots by gather (`member_axis` 0 after `slot_values`).

Task i of a member is drawn from (its task key, i) and played with fold_in(its data key, i) in
both layouts, so a masked member, a packed one and a separate run see the same tasks and data.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from metarl_jax.algos.api import PackLayout, SweepMember


@dataclasses.dataclass(frozen=True)
class TaskAxis:
    """`pack` None: one member on `num_tasks` masked slots; else the pack's members, each
    drawing `num_tasks` tasks of which its first m_g take slots. Static (hashable)."""

    num_tasks: int
    pack: PackLayout | None = None

    @property
    def num_members(self) -> int:
        return 1 if self.pack is None else self.pack.num_members

    @property
    def num_slots(self) -> int:
        return self.num_tasks if self.pack is None else self.pack.num_slots

    @property
    def member_axis(self) -> int | None:
        """How a vmap over slots reads `slot_values`' result: shared (None) or per slot (0)."""
        return None if self.pack is None else 0

    def slot_values(self, tree):
        """Member values as a vmap over slots reads them (with `member_axis`)."""
        if self.pack is None:
            return tree
        return jax.tree.map(lambda leaf: leaf[self.pack.segments], tree)

    def member_sums(self, per_slot: jax.Array) -> jax.Array:
        """Sum over the slot axis: the member's total, or one per member [G, ...]."""
        if self.pack is None:
            return jnp.sum(per_slot, axis=0)
        return jax.ops.segment_sum(per_slot, self.pack.segments, self.pack.num_members)

    def over_members(self, fn: Callable) -> Callable:
        """fn of one member's values, applied to the axis's member value(s)."""
        return fn if self.pack is None else jax.vmap(fn)

    def first_member(self, tree):
        """One member's values (e.g. a template to unravel flat parameters with)."""
        if self.pack is None:
            return tree
        return jax.tree.map(lambda leaf: leaf[0], tree)

    def members(self, tree) -> list:
        """The members' values one by one (static indexing of stacked leaves)."""
        if self.pack is None:
            return [tree]
        return [jax.tree.map(lambda leaf, g=g: leaf[g], tree) for g in range(self.num_members)]

    def from_members(self, values: list):
        """The inverse of `members`: one member's values as they are, a pack's stacked."""
        if self.pack is None:
            (only,) = values
            return only
        return jax.tree.map(lambda *leaves: jnp.stack(leaves), *values)

    @staticmethod
    def concatenated(parts: list, axis: int = 0):
        """Per-member pieces of a slot-wise tree joined on `axis` (one piece: itself)."""
        if len(parts) == 1:
            return parts[0]
        return jax.tree.map(lambda *leaves: jnp.concatenate(leaves, axis=axis), *parts)

    def member_slices(self, width: int = 1) -> list[slice]:
        """Each member's slots (contiguous), each slot `width` wide."""
        sizes = (self.num_tasks,) if self.pack is None else self.pack.meta_batch_sizes
        ends = np.cumsum(sizes)
        return [
            slice(int(end - m) * width, int(end) * width)
            for m, end in zip(sizes, ends, strict=True)
        ]

    def split_keys(self, keys: jax.Array, n: int) -> list[jax.Array]:
        """n keys split from each member's key: [key] or [G, key] each."""
        split = self.over_members(lambda k: jax.random.split(k, n))(keys)
        return [split[..., i, :] for i in range(n)]

    def weights(self, members: SweepMember) -> jax.Array:
        """Each slot's weight in its member's meta-batch mean: 1/m for a real task, else 0."""
        if self.pack is None:
            active = (jnp.arange(self.num_tasks) < members.meta_batch_size).astype(jnp.float32)
            return active / members.meta_batch_size
        return 1.0 / self.slot_values(members.meta_batch_size)

    def active(self, members: SweepMember) -> jax.Array:
        """1 for a slot holding a real task (every packed slot), else 0."""
        if self.pack is None:
            return (jnp.arange(self.num_tasks) < members.meta_batch_size).astype(jnp.float32)
        return jnp.ones(self.num_slots, jnp.float32)

    def task_inputs(self, sample_tasks, members: SweepMember, task_keys, data_keys):
        """The tasks and data keys of the slots. `sample_tasks(member)(key, n)` draws a member's
        tasks; slot i of a member plays its task i with fold_in(its data key, i)."""
        if self.pack is None:
            tasks = sample_tasks(members)(task_keys, self.num_tasks)
            slot_keys = jax.vmap(lambda i: jax.random.fold_in(data_keys, i))(
                jnp.arange(self.num_tasks)
            )
            return tasks, slot_keys
        pack = self.pack
        tasks = jax.vmap(lambda m, k: sample_tasks(m)(k, self.num_tasks))(members, task_keys)
        slot_tasks = jax.tree.map(lambda leaf: leaf[pack.segments, pack.positions], tasks)
        slot_keys = jax.vmap(jax.random.fold_in)(data_keys[pack.segments], pack.positions)
        return slot_tasks, slot_keys
