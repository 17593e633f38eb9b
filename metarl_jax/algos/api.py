"""The interface every algorithm exposes to the sweep engine.

An algorithm is three pure functions over an explicit state, built by `make_<algo>(config, env)`:

    init(member) -> state
    update(state, member) -> (state, metrics)      one meta-iteration
    evaluate(state, member) -> metrics             the meta-test protocol on evaluation tasks

(each with a last argument `shared` when the algorithm has `shared_data`, e.g. offline buffers)

`member` holds the values a sweep varies, as traced scalars, so one compiled function serves every
member: the seed, the meta-batch size (a mask over the static maximum), the number of finite
training tasks (a mask over a padded pool; 0 = the whole training region) and the values of any
swept numeric settings (`hypers`: setting name -> value; the algorithm reads its config through
`settings.with_swept_values(config, member.hypers)`).
"""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

State = Any
Metrics = dict[str, jax.Array]


class SweepMember(NamedTuple):
    seed: jax.Array
    meta_batch_size: jax.Array
    num_train_tasks: jax.Array
    hypers: dict[str, jax.Array]  # swept setting -> its value (float32); empty when none


def sweep_member(
    seed: int, meta_batch_size: int, num_train_tasks: int = 0, hypers: dict | None = None
) -> SweepMember:
    return SweepMember(
        jnp.asarray(seed, jnp.int32),
        jnp.asarray(meta_batch_size, jnp.int32),
        jnp.asarray(num_train_tasks, jnp.int32),
        {name: jnp.asarray(value, jnp.float32) for name, value in (hypers or {}).items()},
    )


@dataclasses.dataclass(frozen=True)
class PackLayout:
    """A pack: G sweep members whose real tasks lie side by side on one task axis of
    sum(meta_batch_sizes) slots. Slot p belongs to member `segments[p]` and is its task number
    `positions[p]`; static (hashable), so every pack of a sweep shares one compiled update."""

    meta_batch_sizes: tuple[int, ...]

    @property
    def num_members(self) -> int:
        return len(self.meta_batch_sizes)

    @property
    def num_slots(self) -> int:
        return sum(self.meta_batch_sizes)

    @property
    def segments(self) -> np.ndarray:
        return np.repeat(np.arange(self.num_members), self.meta_batch_sizes).astype(np.int32)

    @property
    def positions(self) -> np.ndarray:
        return np.concatenate([np.arange(m) for m in self.meta_batch_sizes]).astype(np.int32)


@dataclasses.dataclass(frozen=True, eq=False)
class SharedData:
    """Arrays every sweep member reads and none changes (an offline data set): the engine hands
    them to `init`, `update` and `evaluate` as a last argument, one copy per device, instead of
    baking them into the compiled functions as constants. Hashed by identity."""

    arrays: Any


class Algorithm(NamedTuple):
    init: Callable[[SweepMember], State]
    update: Callable[[State, SweepMember], tuple[State, Metrics]]
    evaluate: Callable[[State, SweepMember], Metrics]
    env_steps_per_iteration: Callable[[SweepMember], jax.Array]
    loss_metrics: tuple[str, ...]  # metrics that must stay finite; a NaN/inf stops the run
    # env steps `init` already took (off-policy algorithms fill their buffers first); None: 0
    initial_env_steps: Callable[[SweepMember], jax.Array] | None = None
    # When set, init/update/evaluate take `shared_data.arrays` as their last argument.
    shared_data: SharedData | None = None
    # packed_update(states [G], members [G], layout) -> (states [G], metrics [G]): one iteration
    # of a pack's G members, computing only their real tasks; equal to `update` per member.
    packed_update: Callable[[State, SweepMember, PackLayout], tuple[State, Metrics]] | None = None
    # evaluation_tasks() -> {metric prefix: tasks [N, ...]}: the tasks `evaluate` plays (reference
    # levels are computed on them); evaluation_steps: env steps one evaluation plays on a task,
    # adaptation included (what `eval/reward_per_step` averages over).
    evaluation_tasks: Callable[[], dict[str, Any]] | None = None
    evaluation_steps: int = 0
