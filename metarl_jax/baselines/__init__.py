"""Reference policies as pure JAX functions: classic Bernoulli-bandit baselines (random to
Gittins, and the oracle) and scripted 2-D navigation levels (stay at the start, drive straight
to the goal)."""

from metarl_jax.baselines.bandits import (
    BASELINES,
    DEFAULT_EPSILON,
    default_gittins_discount,
    gittins_index_table,
    oracle_expected_total,
    play,
    rollout,
    total_reward_table,
)
from metarl_jax.baselines.navigation import scripted_returns

__all__ = [
    "BASELINES",
    "DEFAULT_EPSILON",
    "default_gittins_discount",
    "gittins_index_table",
    "oracle_expected_total",
    "play",
    "rollout",
    "scripted_returns",
    "total_reward_table",
]
