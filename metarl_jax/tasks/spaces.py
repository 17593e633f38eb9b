"""Task spaces: what a task is, how the full distribution draws one, and its coordinates.

A task is a small pytree the environment takes as an argument. Every space also names the
coordinates a restriction refers to (a goal's x and y, an arm's probability, an angle in degrees),
with their bounds, so that one restriction mechanism serves every environment.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Task = Any  # a pytree of arrays


class TaskSpace(NamedTuple):
    name: str
    coord_names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    sample: Callable[[jax.Array], Task]  # one task from the full distribution
    coords: Callable[[Task], jax.Array]  # the task's coordinates, shape (len(coord_names),)
    num_distinct: int = 0  # how many distinct tasks the space holds; 0 = a continuum
    # A space of num_distinct tasks: its i-th task (i a traced int in [0, num_distinct)), so that an
    # evaluation can play every task equally often (`balanced_sampler`).
    distinct_task: Callable[[jax.Array], Task] | None = None
    # Named subsets of tasks ((name, task -> bool), ...) that evaluations report separately,
    # e.g. Cheetah-Dir's two directions: `eval/return_dir_forward`, `eval/return_dir_backward`.
    groups: tuple[tuple[str, Callable[[Task], jax.Array]], ...] = ()

    @property
    def num_coords(self) -> int:
        return len(self.coord_names)


class BanditTask(NamedTuple):
    arm_probs: jax.Array  # (num_arms,)


class GoalTask(NamedTuple):
    goal: jax.Array  # (2,)


def bandit_space(num_arms: int) -> TaskSpace:
    """Bernoulli bandits: each arm's success probability drawn from U[0, 1]."""
    return TaskSpace(
        name=f"bandit_{num_arms}_arms",
        coord_names=tuple(f"p{i}" for i in range(num_arms)),
        low=(0.0,) * num_arms,
        high=(1.0,) * num_arms,
        sample=lambda key: BanditTask(jax.random.uniform(key, (num_arms,))),
        coords=lambda task: task.arm_probs,
    )


def navigation_goal_space(half_width: float = 0.5) -> TaskSpace:
    """2-D navigation goals, uniform on the square [-half_width, half_width]^2."""
    return TaskSpace(
        name="navigation_goal",
        coord_names=("goal_x", "goal_y"),
        low=(-half_width, -half_width),
        high=(half_width, half_width),
        sample=lambda key: GoalTask(
            jax.random.uniform(key, (2,), minval=-half_width, maxval=half_width)
        ),
        coords=lambda task: task.goal,
    )


def euclidean_coords(space: TaskSpace, tasks: Task) -> jax.Array:
    """Coordinates of a batch of tasks [n, d] in which distances mean what they say: an angle as
    its unit vector (359 and 1 degrees are close), any other space's coordinates as they are.
    What probes and regressions of the task should target."""
    coords = jax.vmap(space.coords)(tasks)
    if space.coord_names == ("angle_deg",):
        radians = jnp.radians(coords[:, 0])
        return jnp.stack([jnp.cos(radians), jnp.sin(radians)], axis=-1)
    return coords


def balanced_batch(space: TaskSpace, n: int) -> Task:
    """n tasks that cycle through a finite space's distinct tasks (task i = distinct task
    i mod num_distinct): each appears equally often when num_distinct divides n."""
    return jax.vmap(space.distinct_task)(jnp.arange(n))


def sample_batch(sample_one: Callable[[jax.Array], Task], key: jax.Array, n: int) -> Task:
    """Draw n tasks; task i depends only on (key, i): n tasks are a prefix of m > n tasks.

    That prefix property is what lets a masked sweep member equal a separate, smaller run.
    """
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
    return jax.vmap(sample_one)(keys)


class DirectionTask(NamedTuple):
    direction: jax.Array  # scalar, -1 (backward) or +1 (forward)


class VelocityTask(NamedTuple):
    velocity: jax.Array  # scalar target forward velocity, m/s


class AngleTask(NamedTuple):
    angle: jax.Array  # scalar direction in radians


def forward_backward_space() -> TaskSpace:
    """Cheetah-Dir: run forward (+1) or backward (-1), each with probability 1/2."""
    return TaskSpace(
        name="forward_backward",
        coord_names=("direction",),
        low=(-1.0,),
        high=(1.0,),
        sample=lambda key: DirectionTask(jnp.where(jax.random.bernoulli(key), 1.0, -1.0)),
        coords=lambda task: jnp.reshape(task.direction, (1,)),
        num_distinct=2,
        distinct_task=lambda i: DirectionTask(jnp.where(i % 2 == 0, 1.0, -1.0)),
        groups=(
            ("dir_forward", lambda task: task.direction > 0),
            ("dir_backward", lambda task: task.direction < 0),
        ),
    )


def velocity_space(low: float = 0.0, high: float = 3.0) -> TaskSpace:
    """Cheetah-Vel: target velocity uniform on [low, high] (PEARL, ProMP: [0, 3])."""
    return TaskSpace(
        name="target_velocity",
        coord_names=("velocity",),
        low=(low,),
        high=(high,),
        sample=lambda key: VelocityTask(jax.random.uniform(key, minval=low, maxval=high)),
        coords=lambda task: jnp.reshape(task.velocity, (1,)),
    )


def direction_angle_space(forward_backward: bool = False) -> TaskSpace:
    """Ant-Dir: a 2-D direction, uniform on the circle, or 0 / 180 degrees in forward-backward mode.

    Coordinates are degrees in [0, 360], so arcs read as `range:0,90`.
    """
    coords = lambda task: jnp.reshape(jnp.degrees(task.angle), (1,))
    if not forward_backward:
        sample = lambda key: AngleTask(jax.random.uniform(key, maxval=2.0 * jnp.pi))
        return TaskSpace("direction_angle", ("angle_deg",), (0.0,), (360.0,), sample, coords)
    return TaskSpace(
        name="direction_fwd_back",
        coord_names=("angle_deg",),
        low=(0.0,),
        high=(360.0,),
        sample=lambda key: AngleTask(jnp.where(jax.random.bernoulli(key), jnp.pi, 0.0)),
        coords=coords,
        num_distinct=2,
        distinct_task=lambda i: AngleTask(jnp.where(i % 2 == 0, 0.0, jnp.pi)),
        groups=(
            ("dir_forward", lambda task: jnp.cos(task.angle) > 0),
            ("dir_backward", lambda task: jnp.cos(task.angle) < 0),
        ),
    )


def disk_goal_space(radius: float = 3.0) -> TaskSpace:
    """Ant-Goal: goals uniform on a disk (angle uniform, radius = R sqrt(U))."""

    def sample(key):
        angle_key, radius_key = jax.random.split(key)
        angle = jax.random.uniform(angle_key, maxval=2.0 * jnp.pi)
        r = radius * jnp.sqrt(jax.random.uniform(radius_key))
        return GoalTask(jnp.stack([r * jnp.cos(angle), r * jnp.sin(angle)]))

    return TaskSpace(
        name="disk_goal",
        coord_names=("goal_x", "goal_y"),
        low=(-radius, -radius),
        high=(radius, radius),
        sample=sample,
        coords=lambda task: task.goal,
    )
