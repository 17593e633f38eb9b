"""One module per algorithm, each exposing the `Algorithm` interface of `algos.api`."""

from metarl_jax.algos.api import Algorithm, SweepMember, sweep_member
from metarl_jax.algos.maml import MAX_EVAL_ADAPT_STEPS, MAX_INNER_STEPS, MamlConfig, make_maml
from metarl_jax.algos.pearl import PearlConfig, make_pearl
from metarl_jax.algos.rl2 import Rl2Config, make_rl2

__all__ = [
    "MAX_EVAL_ADAPT_STEPS",
    "MAX_INNER_STEPS",
    "Algorithm",
    "MamlConfig",
    "PearlConfig",
    "Rl2Config",
    "SweepMember",
    "make_maml",
    "make_pearl",
    "make_rl2",
    "sweep_member",
]
