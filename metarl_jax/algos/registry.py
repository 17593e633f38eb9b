"""Which algorithm is which: one entry per algorithm, the only place the apps look them up.

Adding an algorithm = its module (its config's fields declared with `algos.settings.setting`
become its flags) + one entry here + its flag files.
"""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from metarl_jax.algos.api import Algorithm
from metarl_jax.algos.macaw import MacawConfig, make_macaw
from metarl_jax.algos.maml import MamlConfig, make_maml
from metarl_jax.algos.pearl import PearlConfig, buffer_bytes, make_pearl
from metarl_jax.algos.rl2 import Rl2Config, make_rl2
from metarl_jax.envs import Env


@dataclasses.dataclass(frozen=True)
class AlgorithmEntry:
    name: str
    config_class: type
    make: Callable[..., Algorithm]  # (config, env, offline data or None) -> Algorithm
    discrete_actions: bool  # runs on envs with discrete actions (bandits)
    continuous_actions: bool
    offline: bool  # learns from an offline data set (--offline_data), collects nothing
    # Reference defaults of the run flags that are no config setting (flag name -> value as absl
    # holds it), from the algorithm's reference implementation; its settings' defaults are its
    # config's.
    reference_defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Config fields that tell variants sharing a config class apart (MAML's outer step).
    config_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Device memory of one sweep member's data beyond parameters (replay buffers), if any.
    member_memory_bytes: Callable[[Any, Env], int] | None = None

    def supports(self, env: Env) -> bool:
        return self.discrete_actions if env.discrete else self.continuous_actions


def _online(make):
    return lambda config, env, data=None: make(config, env)


def _maml_entry(name: str, outer_optimizer: str) -> AlgorithmEntry:
    return AlgorithmEntry(
        name=name,
        config_class=MamlConfig,
        make=_online(make_maml),
        discrete_actions=True,
        continuous_actions=True,
        offline=False,
        config_settings={"outer_optimizer": outer_optimizer},
    )


ENTRIES = (
    _maml_entry("maml_trpo", "trpo"),
    _maml_entry("maml_ppo", "ppo"),
    AlgorithmEntry(
        name="rl2_ppo",
        config_class=Rl2Config,
        make=_online(make_rl2),
        discrete_actions=True,
        continuous_actions=True,
        offline=False,
        reference_defaults={"meta_batch_size": ["100"]},
    ),
    AlgorithmEntry(
        name="pearl",
        config_class=PearlConfig,
        make=_online(make_pearl),
        discrete_actions=False,
        continuous_actions=True,
        offline=False,
        reference_defaults={"meta_batch_size": ["4"]},
        member_memory_bytes=buffer_bytes,
    ),
    AlgorithmEntry(
        name="macaw",
        config_class=MacawConfig,
        make=make_macaw,
        discrete_actions=True,
        continuous_actions=True,
        offline=True,
        reference_defaults={"meta_batch_size": ["5"]},
    ),
)
REGISTRY: Mapping[str, AlgorithmEntry] = {entry.name: entry for entry in ENTRIES}
ALGORITHM_NAMES = tuple(REGISTRY)


def algorithm_entry(name: str) -> AlgorithmEntry:
    if name not in REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; one of {ALGORITHM_NAMES}")
    return REGISTRY[name]
