"""Shared RL maths as pure functions: distributions, rollouts (also recurrent, over trials),
returns, baselines, TRPO, PPO, SAC, replay buffers."""

from metarl_jax.rl import replay, sac
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
    unwindowed,
    windowed,
)
from metarl_jax.rl.returns import discounted_returns, gae, masked_mean, normalize, trial_gae
from metarl_jax.rl.rollout import (
    Trajectory,
    Transitions,
    collect_transitions,
    episode_returns,
    rollout,
    run_episodes,
)
from metarl_jax.rl.trpo import (
    backtracking_line_search,
    conjugate_gradient,
    max_step,
    rowwise_dot,
)

__all__ = [
    "CATEGORICAL",
    "DIAG_GAUSSIAN",
    "INNER_LOSSES",
    "Batch",
    "Family",
    "Policy",
    "RecurrentAgent",
    "Trajectory",
    "Transitions",
    "TrialTrajectory",
    "backtracking_line_search",
    "clipped_surrogate_loss",
    "collect_transitions",
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
    "replay",
    "rollout",
    "rollout_trials",
    "rowwise_dot",
    "run_episodes",
    "sac",
    "trial_gae",
    "unroll",
    "unwindowed",
    "windowed",
]
