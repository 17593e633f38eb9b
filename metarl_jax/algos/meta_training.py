"""What every meta-training loop shares: the state layout, tasks per sweep member, eval keys."""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from metarl_jax.algos.api import SweepMember
from metarl_jax.algos.settings import EVAL_SEED
from metarl_jax.tasks import Restriction, TaskSpace, draw_pool, make_sampler


@flax.struct.dataclass
class MetaState:
    """The state of an on-policy meta-learner (MAML, RL²). Checkpoints restore by field name, so
    those saved when the state was a dict of the same keys restore into it."""

    params: Any
    opt_state: Any
    key: jax.Array
    iteration: jax.Array


def initial_state(member: SweepMember, init_params: Callable, optimizer) -> MetaState:
    """Parameters from the member's seed, a fresh optimizer state, iteration 0."""
    key, init_key = jax.random.split(jax.random.PRNGKey(member.seed))
    params = init_params(init_key)
    return MetaState(
        params=params,
        opt_state=optimizer.init(params) if optimizer is not None else optax.EmptyState(),
        key=key,
        iteration=jnp.asarray(0, jnp.int32),
    )


def next_state(state: MetaState, params, opt_state, key) -> MetaState:
    return MetaState(params=params, opt_state=opt_state, key=key, iteration=state.iteration + 1)


class TaskSamplers(NamedTuple):
    train: Callable[[SweepMember], Callable]  # member -> sample(key, n): its training tasks
    eval: Callable  # sample(key, n): evaluation tasks
    train_region: Callable  # sample(key, n): fresh tasks of the training region (no pool)


def task_samplers(
    space: TaskSpace, train_tasks: Restriction, eval_tasks: Restriction, pool_seed: int
) -> TaskSamplers:
    """Finite pools are drawn once, here, and enter the compiled functions as small constants."""
    train_pool = draw_pool(space, train_tasks, pool_seed)
    eval_pool = draw_pool(space, eval_tasks, pool_seed)

    def train(member: SweepMember):
        return make_sampler(space, train_tasks, pool=train_pool, num_active=member.num_train_tasks)

    train_region = make_sampler(space, dataclasses.replace(train_tasks, num_tasks=0), balanced=True)
    evaluation = make_sampler(space, eval_tasks, pool=eval_pool, balanced=True)
    return TaskSamplers(train, evaluation, train_region)


def evaluation_sets(samplers: TaskSamplers, eval_train_region: bool) -> dict[str, Callable]:
    """{metric prefix: task sampler}: `eval/` on the evaluation tasks, and with
    `eval_train_region` also `eval_train/` on fresh tasks of the training region (in-sample)."""
    sets = {"eval": samplers.eval}
    if eval_train_region:
        sets["eval_train"] = samplers.train_region
    return sets


def evaluation_task_sets(
    samplers: TaskSamplers, eval_train_region: bool, num_eval_tasks: int, seed: int = EVAL_SEED
):
    """`Algorithm.evaluation_tasks` of an algorithm that samples its evaluation tasks: every
    evaluation set's tasks, drawn as `evaluate` draws them (with the evaluation seed)."""

    def tasks():
        task_key, _ = evaluation_keys(seed)
        sets = evaluation_sets(samplers, eval_train_region)
        return {prefix: sample(task_key, num_eval_tasks) for prefix, sample in sets.items()}

    return tasks


def task_group_metrics(space: TaskSpace, prefix: str, tasks, values: jax.Array) -> dict:
    """`{prefix}/return_{group}`: the mean of per-task `values` [N] over each of the space's named
    task groups (Cheetah-Dir's `dir_forward` and `dir_backward`); none for a space without."""
    metrics = {}
    for name, member_of in space.groups:
        inside = jax.vmap(member_of)(tasks).astype(values.dtype)
        metrics[f"{prefix}/return_{name}"] = jnp.sum(inside * values) / jnp.maximum(
            jnp.sum(inside), 1.0
        )
    return metrics


def reward_per_step(episode_returns: jax.Array, horizon: int) -> jax.Array:
    """`eval/reward_per_step`: the mean reward per env step over every episode an evaluation
    played on a task, the episodes spent adapting included (the RL² paper's total reward per
    step). Every algorithm logs it alike, so it is the quantity to compare them on."""
    return jnp.mean(episode_returns) / horizon


def per_task_keys(key: jax.Array, num_tasks: int) -> jax.Array:
    """Task i's key depends only on (key, i): a smaller meta-batch sees a prefix of them."""
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(num_tasks))


def active_tasks(member: SweepMember, num_tasks: int) -> jax.Array:
    """1 for the member's first `meta_batch_size` of the sampled maximum, else 0."""
    return (jnp.arange(num_tasks) < member.meta_batch_size).astype(jnp.float32)


def pool_size(member: SweepMember, full: int) -> jax.Array:
    """How many slots of a finite training pool the member draws from (k; 0 means all)."""
    return jnp.where(member.num_train_tasks > 0, member.num_train_tasks, full)


def draw_slots(key: jax.Array, n: int, active: jax.Array) -> jax.Array:
    """n slots uniform among the first `active` of a pool; slot j depends only on (key, j)."""
    return jax.vmap(lambda j: jax.random.randint(jax.random.fold_in(key, j), (), 0, active))(
        jnp.arange(n)
    )


def evaluation_keys(seed: int = EVAL_SEED) -> tuple[jax.Array, jax.Array]:
    """(task key, data key) of every evaluation, the same at every iteration: a learning curve
    follows one set of evaluation tasks played with the same random numbers, so its changes are
    the parameters' and not the tasks' (with tasks redrawn per iteration, their common variation
    moved every seed alike and read as a decline that seeds' confidence intervals cannot see);
    every sweep member meets the same tasks, and evaluating never touches the training stream.
    Training evaluates with EVAL_SEED; a re-evaluation may take another seed (a config's
    `eval_seed`)."""
    return jax.random.split(jax.random.PRNGKey(seed))
