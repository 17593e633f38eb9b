"""The reference levels of a run's evaluation tasks: for the apps that train and re-evaluate."""

from experiments.study_design import seed_reported_levels
from metarl_jax.algos.meta_training import evaluation_keys
from metarl_jax.algos.settings import EVAL_SEED
from metarl_jax.baselines.levels import reference_levels


def evaluation_levels(algorithm, env, eval_seed: int = EVAL_SEED) -> dict:
    """{metric prefix: reference level set (`baselines.levels`)} on the tasks and data key of the
    algorithm's evaluations (seeded by `eval_seed`, as its config's); the level set's metric gets
    the prefix (eval/return, ...)."""
    if algorithm.evaluation_tasks is None:
        return {}
    _, data_key = evaluation_keys(eval_seed)
    levels = {}
    for prefix, tasks in algorithm.evaluation_tasks().items():
        seed = seed_reported_levels(env.name, env.horizon)
        found = reference_levels(env, tasks, data_key, algorithm.evaluation_steps, seed)
        if found:
            levels[prefix] = {**found, "metric": f"{prefix}/{found['metric']}"}
    return levels
