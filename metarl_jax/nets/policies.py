"""Flax policy networks: MLP torsos with a Gaussian or a categorical head."""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}


class MLP(nn.Module):
    hidden_sizes: Sequence[int]
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x):
        for width in self.hidden_sizes:
            x = ACTIVATIONS[self.activation](
                nn.Dense(width, kernel_init=nn.initializers.xavier_uniform())(x)
            )
        return x


class GaussianPolicy(nn.Module):
    """Diagonal Gaussian with a state-independent log standard deviation (returns mean, log_std)."""

    action_size: int
    hidden_sizes: Sequence[int]
    activation: str = "tanh"
    init_log_std: float = 0.0

    @nn.compact
    def __call__(self, obs):
        features = MLP(self.hidden_sizes, self.activation)(obs)
        mean = nn.Dense(self.action_size, kernel_init=nn.initializers.xavier_uniform())(features)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_size,)
        )
        return mean, jnp.broadcast_to(log_std, mean.shape)


class CategoricalPolicy(nn.Module):
    """Categorical over `num_actions` (returns logits)."""

    num_actions: int
    hidden_sizes: Sequence[int]
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        features = MLP(self.hidden_sizes, self.activation)(obs)
        return nn.Dense(self.num_actions, kernel_init=nn.initializers.xavier_uniform())(features)
