"""Offline data sets made by behaviour agents (MACAW's data): the agents, and the generation of a
data set from a spec (task pools, chunked and resumable collection, metadata).

Its layer comes after `sweep, io` (tasks -> envs -> nets -> rl -> algos -> sweep, io -> data ->
experiments): it uses tasks, envs, nets, rl, baselines and `io.offline` (the format it saves),
never algos or sweep, and only the apps import it.
"""

from metarl_jax.data.behaviour import (
    SacAgentConfig,
    bandit_data_per_task,
    sac_data_per_task,
    transitions_per_task,
)
from metarl_jax.data.generation import (
    PARTIAL_DIR,
    DataSetSpec,
    draw_tasks,
    generate_data_set,
    pool_restrictions,
)

__all__ = [
    "PARTIAL_DIR",
    "DataSetSpec",
    "SacAgentConfig",
    "bandit_data_per_task",
    "draw_tasks",
    "generate_data_set",
    "pool_restrictions",
    "sac_data_per_task",
    "transitions_per_task",
]
