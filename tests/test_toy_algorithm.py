"""A minimal algorithm written as docs/ARCHITECTURE.md says ("Adding an algorithm") and run
through the sweep engine: it meta-learns the prior mean of a bandit's arm probabilities.

Each iteration samples the meta-batch's tasks, pulls every arm `pulls` times in each (through the
env's `step`), and moves the prior mean a step towards the meta-batch's average estimate. Under
p_i ~ U[0, 1] the prior should approach 0.5 for every arm, and more tightly with a larger
meta-batch (an average over more tasks): the sweep's members must show both.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from metarl_jax.algos.api import Algorithm, SweepMember
from metarl_jax.algos.meta_training import active_tasks, evaluation_keys, task_samplers
from metarl_jax.algos.settings import setting
from metarl_jax.envs import Env, make_env
from metarl_jax.sweep import sweep_members, train
from metarl_jax.tasks import Restriction


@dataclasses.dataclass(frozen=True)
class PriorMeanConfig:
    step_size: float = setting(0.2, "Step of the prior mean towards the meta-batch's estimate.")
    pulls: int = setting(4, "Pulls of every arm per task and iteration.")
    max_meta_batch_size: int = 16


def make_prior_mean(config: PriorMeanConfig, env: Env) -> Algorithm:
    samplers = task_samplers(env.task_space, Restriction(), Restriction(), pool_seed=0)
    num_arms = env.action_size

    def estimate(task, key):
        """Mean reward of every arm over `pulls` pulls: [arms]."""
        _, state = env.reset(key, task)
        keys = jax.random.split(key, (num_arms, config.pulls))
        arms = jnp.broadcast_to(jnp.arange(num_arms)[:, None], keys.shape[:2])
        pull = jax.vmap(jax.vmap(lambda k, a: env.step(k, state, a, task)[2]))
        return pull(keys, arms).mean(axis=1)

    def init(member: SweepMember):
        return {"prior": jnp.zeros(num_arms), "key": jax.random.PRNGKey(member.seed)}

    def update(state, member: SweepMember):
        key, task_key, pull_key = jax.random.split(state["key"], 3)
        num_tasks = config.max_meta_batch_size
        tasks = samplers.train(member)(task_key, num_tasks)
        estimates = jax.vmap(estimate)(tasks, jax.random.split(pull_key, num_tasks))
        weights = active_tasks(member, num_tasks) / member.meta_batch_size
        target = jnp.sum(weights[:, None] * estimates, axis=0)
        prior = state["prior"] + config.step_size * (target - state["prior"])
        metrics = {"train/estimate": jnp.mean(target), "optim/loss": jnp.mean(target - prior)}
        return {"prior": prior, "key": key}, metrics

    def evaluate(state, member: SweepMember):
        del member
        task_key, _ = evaluation_keys()
        tasks = samplers.eval(task_key, 200)
        error = jnp.abs(state["prior"][None] - tasks.arm_probs.mean(axis=0)).max()
        return {"eval/prior_error": error, "eval/return": -error}

    return Algorithm(
        init=init,
        update=update,
        evaluate=evaluate,
        env_steps_per_iteration=lambda m: (m.meta_batch_size * num_arms * config.pulls).astype(
            jnp.float32
        ),
        loss_metrics=("optim/loss",),
    )


def test_a_toy_algorithm_runs_through_the_engine_and_learns_per_member():
    env = make_env("bandit", num_arms=3)
    algorithm = make_prior_mean(PriorMeanConfig(), env)
    members, rows = sweep_members((0, 1, 2), (1, 16))
    chunks = list(train(algorithm, members, 40, 10))
    assert [c.iteration for c in chunks] == [10, 20, 30, 40]
    size = np.array([r["meta_batch_size"] for r in rows])
    errors = np.asarray(chunks[-1].eval_metrics["eval/prior_error"])
    first = np.asarray(chunks[0].eval_metrics["eval/prior_error"])
    # every member moved from 0 towards 0.5 (error 0.5 at the start) ...
    assert np.all(errors < 0.3) and np.all(errors <= first + 0.05), errors
    # ... and 16 tasks per step average away the task-to-task spread that 1 task cannot
    assert errors[size == 16].mean() < 0.5 * errors[size == 1].mean(), errors
    np.testing.assert_allclose(chunks[-1].env_steps, 40 * size * 3 * 4)
