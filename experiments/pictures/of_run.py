"""Pictures of a trained run's adaptation: one member's policy played on the first evaluation
tasks, as many stages as its evaluation has (adaptation steps + 1, or episodes of a trial)."""

import jax
import jax.numpy as jnp

from experiments.pictures import write_adaptation_pictures
from metarl_jax.algos import MacawConfig, MamlConfig, PearlConfig
from metarl_jax.runs import GradientPolicy, load_run, play_adaptation, policy_of


def evaluation_stages(config) -> int:
    """How many stages the run's evaluation plays: before and after each adaptation step (MAML,
    MACAW), or its episodes (PEARL's per task, RL²'s per trial)."""
    if isinstance(config, MamlConfig | MacawConfig):
        return config.eval_adapt_steps + 1
    if isinstance(config, PearlConfig):
        return config.eval_episodes
    return config.episodes_per_trial


def write_run_pictures(
    run_dir: str,
    out_dir: str,
    *,
    checkpoint=None,
    member: int = 0,
    config_changes: dict | None = None,
    num_tasks: int = 4,
    renderer: str = "auto",
    seed: int = 0,
) -> list[tuple[str, str]]:
    """Member `member` (an index into the run's members) of the run's checkpoint (None: the
    latest; an iteration; "best"), evaluated with `config_changes`, played on its first
    `num_tasks` evaluation tasks; the pictures in `out_dir`, as write_adaptation_pictures."""
    run = load_run(run_dir, checkpoint, config_changes)
    policy = policy_of(run, member)
    tasks = next(iter(run.algorithm.evaluation_tasks().values()))
    available = jax.tree.leaves(tasks)[0].shape[0]
    count = min(num_tasks, available)
    if isinstance(policy, GradientPolicy) and policy.tasks is not None:
        tasks = jnp.arange(count)  # MACAW plays test tasks of its data set by index
    else:
        tasks = jax.tree.map(lambda leaf: leaf[:count], tasks)
    stages = evaluation_stages(policy.config)
    trajectories = play_adaptation(policy, jax.random.PRNGKey(seed), tasks, stages)
    return write_adaptation_pictures(
        out_dir, policy.env, trajectories, renderer, max_tasks=num_tasks
    )
