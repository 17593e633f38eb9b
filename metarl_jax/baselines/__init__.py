"""Classic Bernoulli-bandit baselines (random to Gittins, and the oracle) as pure JAX policies."""

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

__all__ = [
    "BASELINES",
    "DEFAULT_EPSILON",
    "default_gittins_discount",
    "gittins_index_table",
    "oracle_expected_total",
    "play",
    "rollout",
    "total_reward_table",
]
