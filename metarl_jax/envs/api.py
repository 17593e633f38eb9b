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


def with_task_in_observation(env: Env) -> Env:
    """The same environment with the task's coordinates appended to every observation: what an
    oracle policy sees (the upper reference level of a meta-RL run, which must infer the task)."""
    reset, step, coords = env.reset, env.step, env.task_space.coords

    def with_task(obs, task):
        return jax.numpy.concatenate([obs, coords(task).astype(obs.dtype)], axis=-1)

    def reset_seeing(key, task):
        obs, state = reset(key, task)
        return with_task(obs, task), state

    def step_seeing(key, state, action, task):
        obs, state, reward, done = step(key, state, action, task)
        return with_task(obs, task), state, reward, done

    return env._replace(
        name=env.name,
        obs_size=env.obs_size + env.task_space.num_coords,
        reset=reset_seeing,
        step=step_seeing,
    )


def with_normalized_actions(env: Env, scale: float) -> Env:
    """The same environment taking actions in [-scale, scale]^A, mapped linearly onto its box
    [-action_bound, action_bound]^A and clipped there, so the physics and the control cost see
    the clipped action (rllab's normalized env; garage and pytorch-maml-rl give MAML on the
    locomotion tasks scale 10: a unit-σ Gaussian policy then explores with σ = 0.1 torque)."""
    step, bound = env.step, env.action_bound

    def step_normalized(key, state, action, task):
        return step(key, state, jax.numpy.clip(action / scale, -1.0, 1.0) * bound, task)

    return env._replace(step=step_normalized, action_bound=scale)
