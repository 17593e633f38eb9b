"""MACAW's losses on one task's batch (`rl.rollout.OfflineTransitions` [B, ...]): pure functions
of the networks' parameters, the batch and settings passed one by one, so a test can call each on
hand-made inputs.

With V_phi the value network, pi_theta the policy and A_theta its advantage head (on the policy's
last hidden features and the action), and V a value held fixed (the adapted phi'_i):

    L_V(phi, D)        = mean((V_phi(s) - R)^2)                                 MC regression
    L_AWR(theta, D; V) = mean(-log pi_theta(a|s) min(exp(A / T), w_max)),  A = R - V(s)
                         (A standardised over the batch first when `standardize`)
    L_ADV(theta, D; V) = mean((A_theta(s, a) - (R - V(s)))^2)
    inner policy loss  = L_AWR + lambda L_ADV;      outer policy loss = L_AWR

The policy is categorical over `action_size` arms when `discrete`, else N(tanh(mu(s)),
policy_std^2).
"""

import jax
import jax.numpy as jnp

from metarl_jax.nets.weight_transform import wt_mlp_apply
from metarl_jax.rl import awr
from metarl_jax.rl.rollout import OfflineTransitions


def state_values(value_params, obs):
    """V_phi(s) [...] of observations [..., S]."""
    return wt_mlp_apply(value_params, obs)[..., 0]


def policy_outputs(
    policy_params,
    batch: OfflineTransitions,
    *,
    discrete: bool,
    action_size: int,
    policy_std: float,
):
    """(log pi_theta(a|s), A_theta(s, a)) [B] of the batch's actions: categorical logits for
    discrete actions, else N(tanh(mu(s)), policy_std^2)."""
    outputs, features = wt_mlp_apply(policy_params["body"], batch.obs, return_features=True)
    if discrete:
        log_probs = jnp.take_along_axis(
            jax.nn.log_softmax(outputs), batch.actions[..., None], axis=-1
        )[..., 0]
        action_inputs = jax.nn.one_hot(batch.actions, action_size)
    else:
        log_probs = awr.fixed_std_gaussian_log_prob(outputs, batch.actions, policy_std)
        action_inputs = batch.actions
    head_inputs = jnp.concatenate([features, action_inputs], -1)
    return log_probs, wt_mlp_apply(policy_params["advantage_head"], head_inputs)[..., 0]


def value_loss(value_params, batch: OfflineTransitions):
    """L_V: regression of V_phi(s) onto the Monte-Carlo returns."""
    return awr.value_regression_loss(state_values(value_params, batch.obs), batch.returns)


def standardized(advantages, enabled: bool):
    if not enabled:
        return advantages
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def advantage_weighted_loss(
    log_probs, advantages, *, temperature: float, max_weight: float, standardize: bool
):
    """L_AWR given log pi(a|s) and the advantages R - V(s)."""
    return awr.awr_policy_loss(
        log_probs, standardized(advantages, standardize), temperature, max_weight
    )


def inner_policy_loss(
    policy_params,
    batch: OfflineTransitions,
    values,
    *,
    advantage_coef: float,
    temperature: float,
    max_weight: float,
    standardize: bool,
    discrete: bool,
    action_size: int,
    policy_std: float,
):
    """L_AWR + lambda L_ADV against fixed values V(s) [B]: the inner loop's policy loss."""
    log_probs, predicted = policy_outputs(
        policy_params, batch, discrete=discrete, action_size=action_size, policy_std=policy_std
    )
    awr_loss = advantage_weighted_loss(
        log_probs,
        batch.returns - values,
        temperature=temperature,
        max_weight=max_weight,
        standardize=standardize,
    )
    return awr_loss + advantage_coef * awr.advantage_head_loss(predicted, batch.returns, values)


def outer_policy_loss(
    policy_params,
    batch: OfflineTransitions,
    values,
    *,
    temperature: float,
    max_weight: float,
    standardize: bool,
    discrete: bool,
    action_size: int,
    policy_std: float,
):
    """L_AWR against fixed values V(s) [B]: the outer loop's policy loss (no advantage head)."""
    log_probs, _ = policy_outputs(
        policy_params, batch, discrete=discrete, action_size=action_size, policy_std=policy_std
    )
    return advantage_weighted_loss(
        log_probs,
        batch.returns - values,
        temperature=temperature,
        max_weight=max_weight,
        standardize=standardize,
    )
