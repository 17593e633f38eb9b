"""Task spaces and restricted task distributions as pure, jittable sampling functions."""

from metarl_jax.tasks.restrictions import (
    MAX_FINITE_TASKS,
    Restriction,
    RestrictionError,
    draw_pool,
    in_region,
    make_sampler,
    parse_restriction,
    region_probability,
    region_sampler,
)
from metarl_jax.tasks.spaces import (
    BanditTask,
    GoalTask,
    Task,
    TaskSpace,
    bandit_space,
    navigation_goal_space,
    sample_batch,
)

__all__ = [
    "MAX_FINITE_TASKS",
    "BanditTask",
    "GoalTask",
    "Restriction",
    "RestrictionError",
    "Task",
    "TaskSpace",
    "bandit_space",
    "draw_pool",
    "in_region",
    "make_sampler",
    "navigation_goal_space",
    "parse_restriction",
    "region_probability",
    "region_sampler",
    "sample_batch",
]
