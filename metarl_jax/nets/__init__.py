"""Flax modules."""

from metarl_jax.nets.context import (
    ContextEncoder,
    RankOneContextEncoder,
    kl_to_standard_normal,
    mean_of_factors,
    product_of_gaussians,
    rank_one_posterior,
    sample_latent,
)
from metarl_jax.nets.policies import ACTIVATIONS, MLP, CategoricalPolicy, GaussianPolicy
from metarl_jax.nets.recurrent import (
    GRUCategoricalPolicy,
    GRUGaussianPolicy,
    GRUTorso,
    GRUValue,
    zero_carry,
)
from metarl_jax.nets.sac import TanhGaussianActor, TwinQ

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "CategoricalPolicy",
    "ContextEncoder",
    "GRUCategoricalPolicy",
    "GRUGaussianPolicy",
    "GRUTorso",
    "GRUValue",
    "GaussianPolicy",
    "RankOneContextEncoder",
    "TanhGaussianActor",
    "TwinQ",
    "kl_to_standard_normal",
    "mean_of_factors",
    "product_of_gaussians",
    "rank_one_posterior",
    "sample_latent",
    "zero_carry",
]
