"""The environment API: pure reset/step functions over an explicit task argument (gymnax style).

    reset(key, task) -> (obs, state)
    step(key, state, action, task) -> (obs, state, reward, done)

An environment is data plus two functions; batching over episodes or tasks is `jax.vmap`.
`done` marks a terminal transition; the rollout layer freezes an episode after it. MuJoCo
environments plug in through the same API with an `mjx.Data` as their state.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from metarl_jax.tasks import TaskSpace

EnvState = Any


class Env(NamedTuple):
    name: str
    task_space: TaskSpace
    obs_size: int
    action_size: int  # number of discrete actions, or dimensions of a continuous action
    discrete: bool
    horizon: int  # default episode length
    reset: Callable[[jax.Array, Any], tuple[jax.Array, EnvState]]
    step: Callable[[jax.Array, EnvState, jax.Array, Any], tuple]
    # Continuous actions act within [-action_bound, action_bound] per dimension (beyond it they are
    # clipped): squashed policies (PEARL's tanh) scale their [-1, 1] output by it.
    action_bound: float = 1.0


def with_unit_actions(env: Env) -> Env:
    """The same environment taking actions in [-1, 1]^A, scaled to its bounds (rlkit's
    NormalizedBoxEnv): what a tanh-squashed policy acts in."""
    step = env.step
    return env._replace(
        step=lambda key, state, action, task: step(key, state, action * env.action_bound, task)
    )
