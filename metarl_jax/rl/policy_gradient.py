"""Policy-gradient batches and losses: advantages from a fitted baseline, REINFORCE and LVC.

The data never carries gradients (no differentiation through the environment): a batch's
advantages are constants, and losses differentiate only the policy's log-probabilities.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from metarl_jax.rl.baseline import fit_linear_baseline, linear_baseline_values
from metarl_jax.rl.policy import Policy
from metarl_jax.rl.returns import discounted_returns, gae, masked_mean, normalize
from metarl_jax.rl.rollout import Trajectory


class Batch(NamedTuple):
    obs: jax.Array  # [T, N, obs_size]
    actions: jax.Array
    advantages: jax.Array  # [T, N], normalized, zero outside valid steps
    valid: jax.Array  # [T, N]
    log_probs: jax.Array  # [T, N] under the sampling policy


def make_batch(
    trajectory: Trajectory, gamma: float, gae_lambda: float, baseline_reg: float = 1e-5
) -> Batch:
    """Advantages by GAE over a linear baseline fitted to this batch's returns, then normalized."""
    trajectory = jax.lax.stop_gradient(trajectory)
    returns = discounted_returns(trajectory.rewards, trajectory.valid, gamma)
    weights = fit_linear_baseline(trajectory.obs, returns, trajectory.valid, baseline_reg)
    values = linear_baseline_values(weights, trajectory.obs, trajectory.valid)
    advantages = gae(trajectory.rewards, values, trajectory.valid, gamma, gae_lambda)
    advantages = normalize(advantages, trajectory.valid)
    return Batch(
        trajectory.obs, trajectory.actions, advantages, trajectory.valid, trajectory.log_probs
    )


def log_probs(policy: Policy, params, batch: Batch) -> jax.Array:
    return policy.dist.log_prob(policy.apply(params, batch.obs), batch.actions)


def reinforce_loss(policy: Policy, params, batch: Batch) -> jax.Array:
    """-E[log pi(a|s) A]: the vanilla policy-gradient (REINFORCE) loss."""
    return -masked_mean(log_probs(policy, params, batch) * batch.advantages, batch.valid)


def lvc_loss(policy: Policy, params, batch: Batch) -> jax.Array:
    """-E[pi(a|s) / pi_sample(a|s) A]: ProMP's low-variance-curvature inner objective."""
    ratio = jnp.exp(log_probs(policy, params, batch) - batch.log_probs)
    return -masked_mean(ratio * batch.advantages, batch.valid)


INNER_LOSSES = {"reinforce": reinforce_loss, "lvc": lvc_loss}
