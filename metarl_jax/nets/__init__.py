"""Flax modules."""

from metarl_jax.nets.policies import ACTIVATIONS, MLP, CategoricalPolicy, GaussianPolicy

__all__ = ["ACTIVATIONS", "MLP", "CategoricalPolicy", "GaussianPolicy"]
