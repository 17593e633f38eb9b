"""PPO: the clipped surrogate, the loss with its value and entropy terms, and the update of
epochs of minibatch steps."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from metarl_jax.rl.returns import masked_mean


def clipped_surrogate_loss(
    log_ratio: jax.Array, advantages: jax.Array, valid: jax.Array, clip: float
) -> jax.Array:
    """-E[min(r A, clip(r, 1-eps, 1+eps) A)] with r = exp(log_ratio)."""
    ratio = jnp.exp(log_ratio)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip, 1.0 + clip) * advantages
    return -masked_mean(jnp.minimum(unclipped, clipped), valid)


def ppo_loss(
    log_probs: jax.Array,
    old_log_probs: jax.Array,
    advantages: jax.Array,
    values: jax.Array,
    value_targets: jax.Array,
    entropy: jax.Array,
    weights: jax.Array,
    clip: float,
    value_coef: float,
    entropy_coef: float,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """clipped surrogate + value_coef * value error - entropy_coef * entropy, each a mean over
    the steps `weights` marks, and its parts with two diagnostics of the step's size.

    Every array is per step (any shape, the same for all): the actions' log-probabilities under
    the current and the collecting policy, the advantages, the current values and their targets,
    the current policy's entropy.
    """
    log_ratio = log_probs - old_log_probs
    policy_loss = clipped_surrogate_loss(log_ratio, advantages, weights, clip)
    value_loss = 0.5 * masked_mean((values - value_targets) ** 2, weights)
    mean_entropy = masked_mean(entropy, weights)
    loss = policy_loss + value_coef * value_loss - entropy_coef * mean_entropy
    diagnostics = {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": mean_entropy,
        # the low-variance estimator E[(r - 1) - log r] of KL(old || new)
        "approx_kl": masked_mean(jnp.expm1(log_ratio) - log_ratio, weights),
        "clip_fraction": masked_mean(
            (jnp.abs(jnp.expm1(log_ratio)) > clip).astype(jnp.float32), weights
        ),
    }
    return loss, diagnostics


def minibatch_epochs(
    loss_fn: Callable,
    optimizer: optax.GradientTransformation,
    params,
    opt_state,
    batch,
    epoch_keys: jax.Array,
    minibatches: Callable | None = None,
):
    """Epochs of gradient steps: one epoch per leading entry of `epoch_keys`.

    `loss_fn(params, minibatch) -> (loss, diagnostics)`. `minibatches(batch, epoch_key)` deals
    the epoch's minibatches, stacked on a leading axis, one optimizer step each; None: one step
    on the whole batch per epoch. Returns (params, opt_state, diagnostics per epoch
    [epochs, ...], each the mean over the epoch's steps).
    """

    def gradient_step(carry, minibatch):
        params, opt_state = carry
        grads, diagnostics = jax.grad(loss_fn, has_aux=True)(params, minibatch)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), diagnostics

    def epoch(carry, epoch_key):
        if minibatches is None:
            return gradient_step(carry, batch)
        carry, diagnostics = jax.lax.scan(gradient_step, carry, minibatches(batch, epoch_key))
        return carry, jax.tree.map(lambda x: jnp.mean(x, axis=0), diagnostics)

    (params, opt_state), diagnostics = jax.lax.scan(epoch, (params, opt_state), epoch_keys)
    return params, opt_state, diagnostics


def epoch_metrics(diagnostics: dict[str, jax.Array]) -> dict[str, jax.Array]:
    """Per-epoch diagnostics [epochs, ...] to metrics: the mean over epochs, but the step-size
    diagnostics (approx_kl, clip_fraction) of the last epoch, where the policy moved furthest."""
    metrics = {name: jnp.mean(values, axis=0) for name, values in diagnostics.items()}
    metrics["approx_kl"] = diagnostics["approx_kl"][-1]
    metrics["clip_fraction"] = diagnostics["clip_fraction"][-1]
    return metrics
