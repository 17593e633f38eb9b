"""Reference policies as pure JAX functions: classic Bernoulli-bandit baselines (random to
Gittins, and the oracle) and scripted 2-D navigation levels (stay at the start, drive straight
to the goal); and the exact Bayes-optimal value of the Bernoulli bandit (numpy)."""

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
from metarl_jax.baselines.bayes_optimal import (
    BAYES_OPTIMAL_MAX_STATES,
    BayesOptimalOutOfReach,
    bayes_optimal_state_count,
    bayes_optimal_value,
)
from metarl_jax.baselines.navigation import scripted_returns

__all__ = [
    "BASELINES",
    "BAYES_OPTIMAL_MAX_STATES",
    "DEFAULT_EPSILON",
    "BayesOptimalOutOfReach",
    "bayes_optimal_state_count",
    "bayes_optimal_value",
    "default_gittins_discount",
    "gittins_index_table",
    "oracle_expected_total",
    "play",
    "rollout",
    "scripted_returns",
    "total_reward_table",
]
