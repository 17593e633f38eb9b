"""2-D point navigation (the MAML paper's definition, as in pytorch-maml-rl's Navigation2D).

Start at the origin; the action is clipped to [-0.1, 0.1]^2 and added to the position; the reward
is minus the Euclidean distance from the new position to the goal; the episode ends when the new
position is within 0.01 of the goal on both axes. The observation is the position.
"""

import jax.numpy as jnp

from metarl_jax.envs.api import Env
from metarl_jax.tasks import GoalTask, navigation_goal_space

MAX_ACTION = 0.1
GOAL_TOLERANCE = 0.01


def make_navigation(horizon: int = 100) -> Env:
    def reset(key, task: GoalTask):
        del key, task
        position = jnp.zeros((2,))
        return position, position

    def step(key, position, action, task: GoalTask):
        del key
        position = position + jnp.clip(action, -MAX_ACTION, MAX_ACTION)
        offset = position - task.goal
        reward = -jnp.sqrt(jnp.sum(offset**2))
        done = jnp.all(jnp.abs(offset) < GOAL_TOLERANCE)
        return position, position, reward, done

    return Env(
        name="navigation",
        task_space=navigation_goal_space(),
        obs_size=2,
        action_size=2,
        discrete=False,
        horizon=horizon,
        reset=reset,
        step=step,
        action_bound=MAX_ACTION,
    )
