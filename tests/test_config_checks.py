"""Configs check themselves on construction: a library user gets one clear line naming the
setting, before anything traces (the apps give the same for their flags)."""

import dataclasses

import pytest

from metarl_jax.algos import MacawConfig, MamlConfig, PearlConfig, Rl2Config
from metarl_jax.algos.config_checks import ConfigError


def test_defaults_and_the_flag_files_settings_pass():
    for config_class in (MamlConfig, Rl2Config, PearlConfig, MacawConfig):
        assert dataclasses.is_dataclass(config_class())


@pytest.mark.parametrize(
    "config_class, settings, message",
    [
        (MamlConfig, {"inner_steps": 10}, "inner_steps: 10 must be in [1, 5]"),
        (MamlConfig, {"eval_adapt_steps": -1}, "eval_adapt_steps: -1 must be in [0, 20]"),
        (MamlConfig, {"outer_optimizer": "sgd"}, "outer_optimizer: 'sgd' must be one of"),
        (MamlConfig, {"inner_loss": "ppo"}, "inner_loss: 'ppo' must be one of"),
        (MamlConfig, {"fisher_subsample": 0.0}, "fisher_subsample: 0.0 must be in (0, 1]"),
        (MamlConfig, {"hidden_sizes": ()}, "hidden_sizes: () must be a non-empty tuple"),
        (MamlConfig, {"gamma": 1.5}, "gamma: 1.5 must be in [0, 1]"),
        (Rl2Config, {"num_minibatches": 8, "max_meta_batch_size": 4}, "num_minibatches: 8"),
        (Rl2Config, {"clip": 0.0}, "clip: 0.0 must be positive"),
        (PearlConfig, {"grad_steps": 0}, "grad_steps: 0 must be positive"),
        (PearlConfig, {"kl_weight": -0.1}, "kl_weight: -0.1 must be >= 0"),
        (PearlConfig, {"exploration": "greedy"}, "exploration: 'greedy' must be one of"),
        (PearlConfig, {"critic_trains_encoder": False}, "critic_trains_encoder: False must be"),
        (PearlConfig, {"reward_scale": float("nan")}, "reward_scale: nan must be positive"),
        (MacawConfig, {"policy_std": 0.0}, "policy_std: 0.0 must be positive"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(config_class, settings, message):
    with pytest.raises(ConfigError) as raised:
        config_class(**settings)
    text = str(raised.value)
    assert text.startswith(message) and "\n" not in text


def test_replace_checks_again():
    with pytest.raises(ConfigError, match=r"^inner_steps: 0"):
        dataclasses.replace(MamlConfig(), inner_steps=0)
