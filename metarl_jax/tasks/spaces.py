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


def sample_batch(sample_one: Callable[[jax.Array], Task], key: jax.Array, n: int) -> Task:
    """Draw n tasks; task i depends only on (key, i): n tasks are a prefix of m > n tasks.

    That prefix property is what lets a masked sweep member equal a separate, smaller run.
    """
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
    return jax.vmap(sample_one)(keys)
