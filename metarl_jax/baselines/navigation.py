"""Scripted reference levels for 2-D navigation, rolled out in the environment itself.

- `stay_at_start`: the zero action (the best goal-agnostic play for goals symmetric about the
  start);
- `fastest_to_goal`: every step, the point of the action box nearest the goal (the offset
  clipped per axis): after t steps it stands at the goal's projection onto the box of all
  positions t steps can reach, so every step's reward is the best any policy can have there —
  the optimal return (an oracle that knows the goal). Diagonal moves cover √2 times the clip, so
  it beats driving in a straight line at the clip's norm.
Their mean returns on given tasks frame a learner's return from below and above.
"""

import jax
import jax.numpy as jnp

from metarl_jax.envs import Env
from metarl_jax.rl.rollout import run_episodes


def stay_at_start(position, goal, max_action):
    del goal, max_action
    return jnp.zeros_like(position)


def fastest_to_goal(position, goal, max_action):
    return jnp.clip(goal - position, -max_action, max_action)


SCRIPTS = {"stay_at_start": stay_at_start, "fastest_to_goal": fastest_to_goal}


def scripted_returns(env: Env, tasks, key: jax.Array, horizon: int | None = None) -> dict:
    """{script: mean return over `tasks`} (one episode per task; the policies are deterministic)."""
    horizon = horizon or env.horizon
    num_tasks = jax.tree.leaves(tasks)[0].shape[0]
    keys = jax.random.split(key, num_tasks)

    def mean_return(script):
        def one(task, task_key):
            act = lambda _, obs: (script(obs, task.goal, env.action_bound), ())
            return jnp.sum(run_episodes(env, act, task, task_key, 1, horizon).reward)

        return jnp.mean(jax.vmap(one)(tasks, keys))

    return {name: float(mean_return(script)) for name, script in SCRIPTS.items()}
