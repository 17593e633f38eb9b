"""Shared RL maths as pure functions: distributions, rollouts (also recurrent, over trials),
returns, baselines, TRPO, PPO."""

from metarl_jax.rl.distributions import CATEGORICAL, DIAG_GAUSSIAN, Family
from metarl_jax.rl.policy import Policy, make_policy
from metarl_jax.rl.policy_gradient import (
    INNER_LOSSES,
    Batch,
    log_probs,
    lvc_loss,
    make_batch,
    reinforce_loss,
)
from metarl_jax.rl.ppo import clipped_surrogate_loss
from metarl_jax.rl.recurrent import (
    RecurrentAgent,
    TrialTrajectory,
    episode_returns_per_trial,
    make_recurrent_agent,
    rollout_trials,
    unroll,
)
from metarl_jax.rl.returns import discounted_returns, gae, masked_mean, normalize, trial_gae
from metarl_jax.rl.rollout import Trajectory, episode_returns, rollout
from metarl_jax.rl.trpo import backtracking_line_search, conjugate_gradient, max_step

__all__ = [
    "CATEGORICAL",
    "DIAG_GAUSSIAN",
    "INNER_LOSSES",
    "Batch",
    "Family",
    "Policy",
    "RecurrentAgent",
    "Trajectory",
    "TrialTrajectory",
    "backtracking_line_search",
    "clipped_surrogate_loss",
    "conjugate_gradient",
    "discounted_returns",
    "episode_returns",
    "episode_returns_per_trial",
    "gae",
    "log_probs",
    "lvc_loss",
    "make_batch",
    "make_policy",
    "make_recurrent_agent",
    "masked_mean",
    "max_step",
    "normalize",
    "reinforce_loss",
    "rollout",
    "rollout_trials",
    "trial_gae",
    "unroll",
]
