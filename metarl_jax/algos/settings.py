"""Config fields that are user settings: a default and a help text, the one home of each setting.

A field declared with `setting(...)` is a setting: the apps make a command-line flag of the same
name from it (its type, default and help), and flags.txt records it under that name. Fields
declared without it (the horizon, the tasks, the largest meta-batch) are derived by whoever
builds the config. A setting several algorithms share is declared once, below, and used by each.
"""

import dataclasses
from typing import Any

HELP = "help"


def setting(default: Any, help: str) -> Any:
    """A config field that is a user setting (a flag of the same name in the apps)."""
    return dataclasses.field(default=default, metadata={HELP: help})


def is_setting(field: dataclasses.Field) -> bool:
    return HELP in field.metadata


def settings_of(config_class) -> tuple[dataclasses.Field, ...]:
    return tuple(f for f in dataclasses.fields(config_class) if is_setting(f))


# ----- settings shared by several algorithms (each algorithm's default where it differs) -----


def hidden_sizes(default: tuple[int, ...]):
    return setting(
        default, "Hidden layer widths of the policy and value networks (RL²: GRU layers)."
    )


def gamma():
    return setting(0.99, "Discount.")


def gae_lambda():
    return setting(1.0, "GAE lambda.")


def task_pool_seed():
    return setting(0, "Seed that draws finite task pools.")


def num_eval_tasks():
    return setting(40, "Evaluation tasks per evaluation.")


def eval_train_region():
    return setting(
        False,
        "Also evaluate on fresh tasks of the training region (metrics eval_train/...): "
        "in-sample beside --eval_tasks' out-of-sample.",
    )


def outer_lr(default: float = 1e-3):
    return setting(default, "Adam learning rate of the outer step (MAML-PPO; RL²).")


def clip(default: float):
    return setting(default, "PPO clipping epsilon (MAML-PPO's outer step; RL²).")


def inner_lr(default: float):
    return setting(default, "Inner-loop learning rate (MAML: the adaptation step).")


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
