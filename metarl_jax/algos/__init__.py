"""One module per algorithm, each exposing the `Algorithm` interface of `algos.api`."""

from metarl_jax.algos.api import Algorithm, SharedData, SweepMember, sweep_member
from metarl_jax.algos.macaw import MacawConfig, MacawData, make_macaw
from metarl_jax.algos.maml import MAX_EVAL_ADAPT_STEPS, MAX_INNER_STEPS, MamlConfig, make_maml
from metarl_jax.algos.pearl import PearlConfig, make_pearl
from metarl_jax.algos.rl2 import Rl2Config, make_rl2

__all__ = [
    "MAX_EVAL_ADAPT_STEPS",
    "MAX_INNER_STEPS",
    "Algorithm",
    "MacawConfig",
    "MacawData",
    "MamlConfig",
    "PearlConfig",
    "Rl2Config",
    "SharedData",
    "SweepMember",
    "make_macaw",
    "make_maml",
    "make_pearl",
    "make_rl2",
    "sweep_member",
]
