"""Bernoulli multi-armed bandit: k arms, the task is the vector of success probabilities.

The observation is a constant (a single zero): what a recurrent agent needs to know about its past
(previous action and reward) its own wrapper supplies. An episode is `horizon` pulls.
"""

import jax
import jax.numpy as jnp

from metarl_jax.envs.api import Env
from metarl_jax.tasks import BanditTask, bandit_space


def make_bandit(num_arms: int, horizon: int = 1) -> Env:
    def reset(key, task: BanditTask):
        del key, task
        return jnp.zeros((1,)), jnp.zeros((), jnp.int32)

    def step(key, t, action, task: BanditTask):
        reward = jax.random.bernoulli(key, task.arm_probs[action]).astype(jnp.float32)
        return jnp.zeros((1,)), t + 1, reward, jnp.asarray(False)

    return Env(
        name="bandit",
        task_space=bandit_space(num_arms),
        obs_size=1,
        action_size=num_arms,
        discrete=True,
        horizon=horizon,
        reset=reset,
        step=step,
    )
