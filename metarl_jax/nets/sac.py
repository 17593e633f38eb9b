"""SAC networks (rlkit/oyster conventions); a latent z, if any, comes concatenated to the inputs."""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
FINAL_INIT_SCALE = 3e-3


def symmetric_uniform(scale: float = FINAL_INIT_SCALE):
    """Initialiser drawing from uniform(-scale, scale), for kernels and biases alike."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


def _final_dense(features: int, name: str | None = None) -> nn.Dense:
    init = symmetric_uniform()
    return nn.Dense(features, kernel_init=init, bias_init=init, name=name)


def _relu_torso(x, hidden_sizes: Sequence[int]):
    for width in hidden_sizes:
        x = nn.relu(nn.Dense(width)(x))
    return x


class TanhGaussianActor(nn.Module):
    """Pre-tanh Gaussian over actions: returns (mean, log_std), log_std clipped to [-20, 2]."""

    action_size: int
    hidden_sizes: Sequence[int] = (300, 300, 300)

    @nn.compact
    def __call__(self, obs):
        features = _relu_torso(obs, self.hidden_sizes)
        mean = _final_dense(self.action_size, name="mean")(features)
        log_std = _final_dense(self.action_size, name="log_std")(features)
        return mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)


class _Critic(nn.Module):
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, x):
        features = _relu_torso(x, self.hidden_sizes)
        return _final_dense(1, name="out")(features)[..., 0]


class TwinQ(nn.Module):
    """Two independent Q networks on concat(obs, action): returns (q1, q2), each [...]."""

    hidden_sizes: Sequence[int] = (300, 300, 300)

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([obs, action], axis=-1)
        return _Critic(self.hidden_sizes, name="q1")(x), _Critic(self.hidden_sizes, name="q2")(x)
