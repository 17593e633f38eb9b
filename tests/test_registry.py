"""The algorithm registry: the one place the apps learn which algorithm is which."""

import dataclasses

import pytest

from metarl_jax.algos.api import Algorithm
from metarl_jax.algos.registry import ALGORITHM_NAMES, REGISTRY, algorithm_entry
from metarl_jax.envs import make_env


def test_entries_name_their_config_and_build_an_algorithm():
    assert ALGORITHM_NAMES == ("maml_trpo", "maml_ppo", "rl2_ppo", "pearl", "macaw")
    navigation = make_env("navigation", horizon=5)
    for name, entry in REGISTRY.items():
        assert entry.name == name
        config = entry.config_class(**entry.config_settings)
        assert dataclasses.is_dataclass(config)
        if not entry.offline:  # MACAW needs its data set to build (tests/test_macaw.py)
            assert isinstance(entry.make(config, navigation, None), Algorithm)
    assert REGISTRY["maml_trpo"].config_settings == {"outer_optimizer": "trpo"}
    assert REGISTRY["maml_ppo"].config_settings == {"outer_optimizer": "ppo"}


def test_support():
    bandit, navigation = make_env("bandit", num_arms=3), make_env("navigation")
    assert not algorithm_entry("pearl").supports(bandit)
    assert algorithm_entry("pearl").supports(navigation)
    assert all(
        algorithm_entry(name).supports(bandit) for name in ALGORITHM_NAMES if name != "pearl"
    )


def test_unknown_algorithm_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown algorithm 'sac'; one of"):
        algorithm_entry("sac")
