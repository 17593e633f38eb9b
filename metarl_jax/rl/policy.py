"""A policy: a flax network's init/apply paired with its action distribution family."""

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from metarl_jax.envs import Env
from metarl_jax.nets import CategoricalPolicy, GaussianPolicy
from metarl_jax.rl.distributions import CATEGORICAL, DIAG_GAUSSIAN, Family


class Policy(NamedTuple):
    init: Callable[[jax.Array], dict]  # key -> params
    apply: Callable  # (params, obs) -> distribution parameters
    dist: Family


def make_policy(env: Env, hidden_sizes: Sequence[int], activation: str = "tanh") -> Policy:
    if env.discrete:
        module = CategoricalPolicy(env.action_size, tuple(hidden_sizes), activation)
        family = CATEGORICAL
    else:
        module = GaussianPolicy(env.action_size, tuple(hidden_sizes), activation)
        family = DIAG_GAUSSIAN
    dummy_obs = jnp.zeros((env.obs_size,))
    return Policy(
        init=lambda key: module.init(key, dummy_obs),
        apply=module.apply,
        dist=family,
    )
