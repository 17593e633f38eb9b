"""Action distributions as families of pure functions over their parameters.

Diagonal Gaussian parameters are (mean, log_std); categorical parameters are logits. Log-probs,
KL and entropy sum over action dimensions.
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2.0 * math.pi)


class Family(NamedTuple):
    sample: Callable  # (key, params) -> action
    log_prob: Callable  # (params, action) -> log-prob
    kl: Callable  # (p, q) -> KL(p || q)
    entropy: Callable  # (params) -> entropy


def _gaussian_sample(key, params):
    mean, log_std = params
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)


def _gaussian_log_prob(params, action):
    mean, log_std = params
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI, axis=-1)


def _gaussian_kl(p, q):
    (mean_p, log_std_p), (mean_q, log_std_q) = p, q
    var_ratio = jnp.exp(2.0 * (log_std_p - log_std_q))
    mahalanobis = ((mean_p - mean_q) * jnp.exp(-log_std_q)) ** 2
    return jnp.sum(0.5 * (var_ratio + mahalanobis - 1.0) - (log_std_p - log_std_q), axis=-1)


def _gaussian_entropy(params):
    _, log_std = params
    return jnp.sum(log_std + 0.5 * (1.0 + _LOG_2PI), axis=-1)


def _categorical_sample(key, logits):
    return jax.random.categorical(key, logits)


def _categorical_log_prob(logits, action):
    log_p = jax.nn.log_softmax(logits)
    return jnp.take_along_axis(log_p, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def _categorical_kl(p_logits, q_logits):
    log_p, log_q = jax.nn.log_softmax(p_logits), jax.nn.log_softmax(q_logits)
    return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)


def _categorical_entropy(logits):
    log_p = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


DIAG_GAUSSIAN = Family(_gaussian_sample, _gaussian_log_prob, _gaussian_kl, _gaussian_entropy)
CATEGORICAL = Family(
    _categorical_sample, _categorical_log_prob, _categorical_kl, _categorical_entropy
)
