"""PEARL's losses on one gradient step's meta-batch: pure functions of the networks' apply
functions, parameters, batches and settings, so a test can call each on hand-made inputs.

Per task i of a meta-batch of M (weights w_i: the sweep member's meta-batch mask), with a context
c_i, an RL batch b_i and z_i ~ q(z | c_i) (reparameterised):

    critic + encoder:  L_Q(b_i, z_i)          (z_i detached when the critic does not train q)
    encoder KL:        beta sum_i w_i KL(q(z | c_i) || N(0, I))   (oyster sums it over tasks)
    actor:             L_pi(b_i, sg(z_i)) + mean_reg mean(mu^2) + std_reg mean(log_std^2)
    temperature:       -log alpha (log pi + target entropy)       (only when alpha is learned)
    reward decoder:    mean((D(s, a, z_i) - reward_scale r)^2)     (only with a decoder weight)

`meta_batch_loss` sums them into the one objective of PEARL's single Adam step. Batches are
`rl.rollout.Transitions` of stored rows ([M, B, ...]); every setting is an argument of its own.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from metarl_jax.algos.meta_training import per_task_keys
from metarl_jax.nets.context import (
    ContextEncoder,
    RankOneContextEncoder,
    RewardDecoder,
    kl_to_standard_normal,
    latent_variances,
    mean_of_factors,
    product_of_gaussians,
    rank_one_posterior,
    sample_latent,
)
from metarl_jax.nets.sac import TanhGaussianActor, TwinQ
from metarl_jax.rl import sac
from metarl_jax.rl.rollout import Transitions


class PearlNetworks(NamedTuple):
    encoder: ContextEncoder | RankOneContextEncoder  # context [N, D] -> per-transition factors
    actor: TanhGaussianActor  # (s, z) -> (mean, log_std) of the pre-tanh Gaussian
    critic: TwinQ  # ((s, z), a) -> (Q1, Q2)
    decoder: RewardDecoder  # (s, a, z) -> predicted reward_scale * r


def weighted_mean(x, weights):
    weights = jnp.broadcast_to(weights, x.shape)
    return jnp.sum(x * weights) / jnp.maximum(jnp.sum(weights), 1e-8)


def posterior(
    encoder_apply,
    encoder_params,
    context,
    weights,
    deterministic_z: bool,
    family: str = "diagonal",
):
    """q(z | c) from the encoder's factors over the weighted context (`nets.context`'s two
    families): (mean, variances) for the diagonal family, (mean, the precision's Cholesky
    factor) for rank_one; a deterministic z is the mean (diagonal: of the factors' means), with
    variances 0."""
    factors = encoder_apply(encoder_params, context)
    if family == "rank_one":
        mean, cholesky = rank_one_posterior(*factors, weights)
        return (mean, jnp.zeros(mean.shape)) if deterministic_z else (mean, cholesky)
    means, variances = factors
    if deterministic_z:
        return mean_of_factors(means, weights), jnp.zeros(means.shape[-1:])
    return product_of_gaussians(means, variances, weights)


def encoder_kl_loss(means, variances, task_weights, kl_weight: float):
    """(beta sum_i w_i KL(N(means_i, variances_i) || N(0, I)), the KL of each task)."""
    kl = jax.vmap(kl_to_standard_normal)(means, variances)
    return kl_weight * jnp.sum(task_weights * kl), kl


def critic_and_actor_losses(
    actor_apply,
    critic_apply,
    params,
    target_critic,
    batch: Transitions,
    z,
    next_keys,
    action_keys,
    weights,
    *,
    alpha,
    gamma: float,
    reward_scale: float,
    critic_trains_encoder: bool,
):
    """SAC's twin-Q and actor losses on (s, z): batch and z [M, B, ...], keys [M], weights [M, B].

    The critic reads z with its gradient, which trains the encoder (oyster), unless
    `critic_trains_encoder` is off; the actor and the soft Q target read z detached.
    Returns (critic_loss, actor_loss, (q1, log_prob, mean, log_std)).
    """

    def policy_sample(actor_params, obs_z, keys):
        mean, log_std = actor_apply(actor_params, obs_z)
        action, log_prob = jax.vmap(sac.tanh_gaussian_sample)(keys, mean, log_std)
        return action, log_prob, mean, log_std

    detached_z = jax.lax.stop_gradient(z)
    critic_z = z if critic_trains_encoder else detached_z
    return sac.actor_critic_losses(
        actor_apply,
        critic_apply,
        params,
        target_critic,
        batch._asdict(),
        policy_sample,
        next_keys,
        action_keys,
        gamma=gamma,
        reward_scale=reward_scale,
        alpha=alpha,
        critic_obs=jnp.concatenate([batch.obs, critic_z], axis=-1),
        policy_obs=jnp.concatenate([batch.obs, detached_z], axis=-1),
        next_obs=jnp.concatenate([batch.next_obs, detached_z], axis=-1),
        weights=weights,
    )


def regularized_actor_loss(actor_loss, mean, log_std, weights, mean_reg: float, std_reg: float):
    """oyster's actor penalties: actor_loss + mean_reg mean(mu^2) + std_reg mean(log_std^2)."""
    return (
        actor_loss
        + mean_reg * weighted_mean(jnp.mean(mean**2, -1), weights)
        + std_reg * weighted_mean(jnp.mean(log_std**2, -1), weights)
    )


def reward_decoder_loss(
    decoder_apply, decoder_params, batch: Transitions, z, weights, reward_scale: float
):
    """mean((D(s, a, z) - reward_scale r)^2): the decoder's error on the scaled reward."""
    predicted = decoder_apply(decoder_params, batch.obs, batch.actions, z)
    return weighted_mean((predicted - reward_scale * batch.rewards) ** 2, weights)


def task_latents(
    encoder_apply,
    encoder_params,
    context,
    task_weights,
    z_keys,
    *,
    kl_weight: float,
    deterministic_z: bool,
    posterior_family: str,
):
    """Per task of a context [M, N, D]: z_i ~ q(z | c_i) (the mean when z is deterministic),
    q's (means, variances), and the weighted KL loss with each task's KL (0 for a deterministic
    z)."""
    num_tasks = context.shape[0]
    every_transition = jnp.ones(context.shape[1:2])
    means, variances = jax.vmap(
        lambda task_context: posterior(
            encoder_apply,
            encoder_params,
            task_context,
            every_transition,
            deterministic_z,
            posterior_family,
        )
    )(context)
    if deterministic_z:
        z, kl = means, jnp.zeros((num_tasks,))
        kl_loss = kl_weight * jnp.sum(task_weights * kl)
    else:
        z = jax.vmap(sample_latent)(z_keys, means, variances)
        kl_loss, kl = encoder_kl_loss(means, variances, task_weights, kl_weight)
    return z, (means, variances), (kl_loss, kl)


def meta_batch_loss(
    networks: PearlNetworks,
    params,
    target_critic,
    batch: Transitions,
    context,
    task_weights,
    key,
    *,
    target_entropy: float,
    gamma: float,
    reward_scale: float,
    kl_weight: float,
    policy_mean_reg: float,
    policy_std_reg: float,
    reward_decoder_weight: float,
    deterministic_z: bool,
    posterior_family: str,
    critic_trains_encoder: bool,
    learn_alpha: bool,
):
    """The summed losses of a meta-batch (batch [M, B, ...], context [M, N, D]) and their
    diagnostics. z_i is one draw per task, shared by the task's whole RL batch. The temperature's
    loss joins with `learn_alpha`, the reward decoder's with `reward_decoder_weight` > 0."""
    num_tasks, batch_size = batch.obs.shape[:2]
    z_keys, action_keys, next_keys = jnp.moveaxis(
        jax.vmap(lambda k: jax.random.split(k, 3))(per_task_keys(key, num_tasks)), 1, 0
    )
    z, (means, variances), (kl_loss, kl) = task_latents(
        networks.encoder.apply,
        params["encoder"],
        context,
        task_weights,
        z_keys,
        kl_weight=kl_weight,
        deterministic_z=deterministic_z,
        posterior_family=posterior_family,
    )
    z = jnp.broadcast_to(z[:, None, :], (num_tasks, batch_size, z.shape[-1]))
    weights = jnp.broadcast_to(task_weights[:, None], z.shape[:2])
    alpha = jnp.exp(params["log_alpha"])
    critic_loss, actor_loss, (q1, log_prob, mean, log_std) = critic_and_actor_losses(
        networks.actor.apply,
        networks.critic.apply,
        params,
        target_critic,
        batch,
        z,
        next_keys,
        action_keys,
        weights,
        alpha=jax.lax.stop_gradient(alpha),
        gamma=gamma,
        reward_scale=reward_scale,
        critic_trains_encoder=critic_trains_encoder,
    )
    actor_loss = regularized_actor_loss(
        actor_loss, mean, log_std, weights, policy_mean_reg, policy_std_reg
    )
    total = critic_loss + kl_loss + actor_loss
    if learn_alpha:
        total += sac.temperature_loss(params["log_alpha"], log_prob, target_entropy, weights)
    extra = {}
    if reward_decoder_weight > 0:
        extra["reward_decoder_loss"] = reward_decoder_loss(
            networks.decoder.apply, params["decoder"], batch, z, weights, reward_scale
        )
        total += reward_decoder_weight * extra["reward_decoder_loss"]
    diagnostics = {
        **extra,
        "critic_loss": critic_loss,
        "actor_loss": actor_loss,
        "kl": weighted_mean(kl, task_weights),
        "q_mean": weighted_mean(q1, weights),
        "entropy": -weighted_mean(log_prob, weights),
        "alpha": alpha,
        "posterior_variance": weighted_mean(
            jnp.mean(latent_variances(means, variances), -1), task_weights
        ),
    }
    return total, diagnostics
