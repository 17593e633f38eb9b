"""Recurrent networks for context-based meta-RL: stacked GRU cells with a policy or a value head.

Each module computes one step, `(carry, inputs) -> (carry, output)`; unrolling over time is the RL
layer's `lax.scan`, so collection and backpropagation through time share this single step.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp


class GRUTorso(nn.Module):
    """Stacked GRU cells; the carry is a tuple with one hidden state per layer."""

    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, carry, x):
        new_carry = []
        for width, hidden in zip(self.hidden_sizes, carry, strict=True):
            hidden, x = nn.GRUCell(width)(hidden, x)
            new_carry.append(hidden)
        return tuple(new_carry), x


def zero_carry(hidden_sizes: Sequence[int], batch_shape: tuple[int, ...] = ()) -> tuple:
    return tuple(jnp.zeros((*batch_shape, width)) for width in hidden_sizes)


class GRUCategoricalPolicy(nn.Module):
    num_actions: int
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, carry, x):
        carry, features = GRUTorso(self.hidden_sizes)(carry, x)
        logits = nn.Dense(self.num_actions, kernel_init=nn.initializers.xavier_uniform())(features)
        return carry, logits


class GRUGaussianPolicy(nn.Module):
    """Diagonal Gaussian with a state-independent log standard deviation (mean, log_std)."""

    action_size: int
    hidden_sizes: Sequence[int]
    init_log_std: float = 0.0

    @nn.compact
    def __call__(self, carry, x):
        carry, features = GRUTorso(self.hidden_sizes)(carry, x)
        mean = nn.Dense(self.action_size, kernel_init=nn.initializers.xavier_uniform())(features)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_size,)
        )
        return carry, (mean, jnp.broadcast_to(log_std, mean.shape))


class GRUValue(nn.Module):
    hidden_sizes: Sequence[int]

    @nn.compact
    def __call__(self, carry, x):
        carry, features = GRUTorso(self.hidden_sizes)(carry, x)
        return carry, nn.Dense(1)(features)[..., 0]
