"""The linear feature baseline of Duan et al. (2016), as the MAML references use it.

Features per step: [obs, obs^2, t/100, (t/100)^2, (t/100)^3, 1]; fitted per task by ridge
regression on the discounted returns of that task's own episodes.
"""

import jax.numpy as jnp


def linear_features(obs):
    """obs [T, N, d] -> features [T, N, 2d + 4]."""
    t = jnp.arange(obs.shape[0], dtype=obs.dtype)[:, None, None] / 100.0
    t = jnp.broadcast_to(t, (*obs.shape[:2], 1))
    return jnp.concatenate([obs, obs**2, t, t**2, t**3, jnp.ones_like(t)], axis=-1)


def fit_linear_baseline(obs, returns, valid, reg: float = 1e-5):
    """Ridge weights w minimising sum_valid (phi w - R)^2 + reg * |w|^2 (reg scaled by trace)."""
    phi = linear_features(obs) * valid[..., None]
    phi = phi.reshape(-1, phi.shape[-1])
    target = (returns * valid).reshape(-1)
    gram = phi.T @ phi
    scale = jnp.trace(gram) / gram.shape[0] + 1.0
    weights = jnp.linalg.solve(gram + reg * scale * jnp.eye(gram.shape[0]), phi.T @ target)
    return weights


def linear_baseline_values(weights, obs, valid):
    return (linear_features(obs) @ weights) * valid
