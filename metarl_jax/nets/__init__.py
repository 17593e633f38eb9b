"""Flax modules."""

from metarl_jax.nets.policies import ACTIVATIONS, MLP, CategoricalPolicy, GaussianPolicy
from metarl_jax.nets.recurrent import (
    GRUCategoricalPolicy,
    GRUGaussianPolicy,
    GRUTorso,
    GRUValue,
    zero_carry,
)

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "CategoricalPolicy",
    "GRUCategoricalPolicy",
    "GRUGaussianPolicy",
    "GRUTorso",
    "GRUValue",
    "GaussianPolicy",
    "zero_carry",
]
