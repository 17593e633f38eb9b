"""One module per algorithm, each exposing the `Algorithm` interface of `algos.api`."""

from metarl_jax.algos.api import Algorithm, SweepMember, sweep_member
from metarl_jax.algos.maml import MAX_EVAL_ADAPT_STEPS, MAX_INNER_STEPS, MamlConfig, make_maml

__all__ = [
    "MAX_EVAL_ADAPT_STEPS",
    "MAX_INNER_STEPS",
    "Algorithm",
    "MamlConfig",
    "SweepMember",
    "make_maml",
    "sweep_member",
]
