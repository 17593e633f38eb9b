"""Config fields that are user settings: a default and a help text, the one home of each setting.

A field declared with `setting(...)` is a setting: the apps make a command-line flag of the same
name from it (its type, default and help), and flags.txt records it under that name. Fields
declared without it (the horizon, the tasks, the largest meta-batch) are derived by whoever
builds the config. A setting several algorithms share is declared once, below, and used by each.
"""

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

HELP = "help"
SWEEPABLE = "sweepable"
# Seeds the evaluation's tasks and random numbers (`meta_training.evaluation_keys`).
EVAL_SEED = 0x5EED


def setting(default: Any, help: str, sweepable: bool = False) -> Any:
    """A config field that is a user setting (a flag of the same name in the apps).

    `sweepable`: a number the algorithm only computes with (no shape, no Python branch on it),
    so a sweep may give each member its own value as a traced scalar (`with_swept_values`)."""
    return dataclasses.field(default=default, metadata={HELP: help, SWEEPABLE: sweepable})


def is_setting(field: dataclasses.Field) -> bool:
    return HELP in field.metadata


def settings_of(config_class) -> tuple[dataclasses.Field, ...]:
    return tuple(f for f in dataclasses.fields(config_class) if is_setting(f))


def sweepable_settings(config_class) -> tuple[str, ...]:
    return tuple(f.name for f in settings_of(config_class) if f.metadata.get(SWEEPABLE))


def sweep_error(config, name: str, values) -> str | None:
    """Why `values` cannot be a sweep axis of setting `name` for this config, or None: the
    setting must exist, be sweepable (not a shape, a count or a choice), and each value must
    pass the config's own checks."""
    fields = {f.name: f for f in settings_of(type(config))}
    if name not in fields:
        return f"{name} is not a setting of {type(config).__name__}"
    if name not in sweepable_settings(type(config)):
        return (
            f"{name} cannot be swept in one call: it sets a shape, a count or a choice "
            f"(sweepable: {', '.join(sweepable_settings(type(config))) or 'none'})"
        )
    if not values:
        return f"{name} needs at least one value"
    for value in values:
        try:
            dataclasses.replace(config, **{name: value})
        except ValueError as error:  # the config's checks (ConfigError) name the setting
            return str(error)
    return None


def with_swept_values(config, values: Mapping[str, Any]):
    """The config with the swept settings' values (traced scalars) in place of its own; the
    config's checks ran on every swept value before the sweep compiled (`sweep_error`)."""
    if not values:
        return config
    swept = copy.copy(config)  # a frozen dataclass: copied without running its checks again
    for name, value in values.items():
        object.__setattr__(swept, name, value)
    return swept


# ----- settings shared by several algorithms (each algorithm's default where it differs) -----


def hidden_sizes(default: tuple[int, ...]):
    return setting(
        default, "Hidden layer widths of the policy and value networks (RL²: GRU layers)."
    )


def gamma():
    return setting(0.99, "Discount.", sweepable=True)


def gae_lambda():
    return setting(1.0, "GAE lambda.", sweepable=True)


def task_pool_seed():
    return setting(0, "Seed that draws finite task pools.")


def num_eval_tasks():
    return setting(40, "Evaluation tasks per evaluation.")


def eval_seed():
    """The seed of the evaluation's keys: not a training flag (training always evaluates with
    EVAL_SEED); a re-evaluation of a run (experiments.evaluate --eval_seed) changes it."""
    return dataclasses.field(default=EVAL_SEED)


def eval_train_region():
    return setting(
        False,
        "Also evaluate on fresh tasks of the training region (metrics eval_train/...): "
        "in-sample beside --eval_tasks' out-of-sample.",
    )


def outer_lr(default: float = 1e-3):
    return setting(default, "Adam learning rate of the outer step (MAML-PPO; RL²).", sweepable=True)


def clip(default: float):
    return setting(default, "PPO clipping epsilon (MAML-PPO's outer step; RL²).", sweepable=True)


def inner_lr(default: float):
    return setting(default, "Inner-loop learning rate (MAML: the adaptation step).", sweepable=True)


def inner_steps():
    return setting(1, "Inner gradient steps during meta-training (MACAW: exactly 1).")


def eval_adapt_steps(default: int):
    return setting(default, "Adaptation steps K at meta-test (returns after 0..K).")


def eval_episodes(default: int):
    return setting(
        default,
        "Episodes per evaluation task (PEARL: z from the prior in the first; MACAW: online "
        "episodes after the offline adaptation).",
    )


def batch_size():
    return setting(
        256,
        "Transitions per task in a gradient step's batch (PEARL: the RL batch; MACAW: each of "
        "D_tr and D_ts).",
    )
