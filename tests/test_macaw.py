"""MACAW: masked sweep members against separate runs, evaluation protocol, learning on bandits."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl_jax import baselines
from metarl_jax.algos import MacawConfig, MacawData, make_macaw
from metarl_jax.algos.macaw import MacawState
from metarl_jax.envs import make_env
from metarl_jax.io import checkpoints
from metarl_jax.sweep import init_states, sweep_members, train

from .conftest import MEMBERS_DIFFER, assert_trees_close, max_abs_difference, member_index, pick

ARMS = 5


@functools.cache
def bandit():
    return make_env("bandit", num_arms=ARMS)


@functools.cache
def thompson_data(num_train: int, num_test: int, pulls: int) -> MacawData:
    """Offline buffers of a Thompson-sampling learner per task (one pull per episode)."""

    def tasks_and_buffers(key, n):
        tasks = jax.vmap(bandit().task_space.sample)(jax.random.split(key, n))
        arms, rewards = baselines.rollout("thompson", tasks, pulls, jax.random.fold_in(key, 1))
        buffers = {
            "obs": jnp.zeros((n, pulls, 1)),
            "actions": arms.astype(jnp.int32),
            "rewards": rewards,
            "returns": rewards,
        }
        return tasks, buffers

    train_tasks, train_buffers = tasks_and_buffers(jax.random.PRNGKey(0), num_train)
    test_tasks, test_buffers = tasks_and_buffers(jax.random.PRNGKey(1), num_test)
    return MacawData(train_buffers, test_buffers, train_tasks, test_tasks)


def tiny_macaw(**overrides) -> MacawConfig:
    base = MacawConfig(
        hidden_sizes=(16, 16),
        wt_latent_size=8,
        horizon=1,
        max_meta_batch_size=4,
        batch_size=32,
        initial_inner_lr=1.0,
        value_lr=1e-3,
        policy_lr=1e-3,
        eval_adapt_steps=2,
        eval_episodes=20,
    )
    return dataclasses.replace(base, **overrides)


def run_macaw(config, data, seeds, meta_batch_sizes, num_train_tasks, iterations=2):
    members, rows = sweep_members(seeds, meta_batch_sizes, num_train_tasks)
    algorithm = make_macaw(config, bandit(), data)
    return list(train(algorithm, members, iterations, iterations))[-1], rows


@pytest.mark.slow
def test_masked_sweep_member_equals_separate_run():
    """Seeds x task batch (2, 4) x training buffers (2, all = 5) in one call; a member equals a
    run compiled for its task batch alone. No env steps are counted: MACAW learns offline."""
    data = thompson_data(5, 3, 200)
    sweep, rows = run_macaw(tiny_macaw(), data, (0, 1), (2, 4), (2, 0))
    for meta_batch_size, num_train_tasks in ((2, 2),):  # both masks at once; compiles cost
        config = tiny_macaw(max_meta_batch_size=meta_batch_size)
        alone, _ = run_macaw(config, data, (1,), (meta_batch_size,), (num_train_tasks,))
        i = member_index(
            rows, seed=1, meta_batch_size=meta_batch_size, num_train_tasks=num_train_tasks
        )
        assert_trees_close(pick(sweep.state.params, i), pick(alone.state.params, 0))
        other = member_index(
            rows, seed=1, meta_batch_size=6 - meta_batch_size, num_train_tasks=num_train_tasks
        )  # the other meta-batch size: the equality above is not met trivially
        params = sweep.state.params
        assert max_abs_difference(pick(params, i), pick(params, other)) > MEMBERS_DIFFER
        for name, value in {**alone.train_metrics, **alone.eval_metrics}.items():
            logged = {**sweep.train_metrics, **sweep.eval_metrics}[name][i]
            np.testing.assert_allclose(logged, value[0], rtol=1e-4, atol=1e-5, err_msg=name)
    assert set(sweep.eval_metrics) == {
        "eval/return",
        "eval/reward_per_step",
        "eval/return_step0",
        "eval/return_step1",
        "eval/return_step2",
    }
    assert np.all(sweep.eval_metrics["eval/return"] == sweep.eval_metrics["eval/return_step1"])
    # adaptation is offline: the reward per step is the online return's, over the horizon
    np.testing.assert_allclose(
        sweep.eval_metrics["eval/reward_per_step"],
        sweep.eval_metrics["eval/return"] / tiny_macaw().horizon,
        rtol=1e-6,
    )
    assert np.all(sweep.env_steps == 0)


@pytest.mark.slow
def test_macaw_learns_bandits_from_offline_data():
    """12 training tasks' buffers (the seed's Figure 3): after a short CPU run, one offline
    adaptation step on a test task's buffer earns clearly more per online pull than random play
    and than the unadapted policy."""
    data = thompson_data(12, 20, 5000)
    config = tiny_macaw(
        hidden_sizes=(32, 32),
        wt_latent_size=16,
        max_meta_batch_size=5,
        batch_size=256,
        initial_inner_lr=3.0,
        eval_adapt_steps=1,
        eval_episodes=500,
    )
    result, _ = run_macaw(config, data, (0,), (5,), (12,), iterations=300)
    adapted = float(result.eval_metrics["eval/return"][0])
    unadapted = float(result.eval_metrics["eval/return_step0"][0])
    random_play = float(data.test_tasks.arm_probs.mean())  # about 0.5
    best_arm = float(data.test_tasks.arm_probs.max(axis=1).mean())  # about 0.83
    assert adapted > random_play + 0.15, (adapted, random_play, best_arm)
    assert adapted > unadapted + 0.15, (adapted, unadapted)


@pytest.mark.slow
def test_checkpoints_of_either_state_layout_restore(tmp_path):
    """A checkpoint restores into the state dataclass whether it holds the state as it is or in
    the dict layout states had before (the same names)."""
    data = thompson_data(5, 3, 200)
    algorithm = make_macaw(tiny_macaw(), bandit(), data)
    members, _ = sweep_members((0, 1), (2,), (0,))
    state = list(train(algorithm, members, 1, 1))[-1].state
    saved_before = {
        "params": state.params,
        "opt_state": {"value": state.opt_state.value, "policy": state.opt_state.policy},
        "key": state.key,
        "iteration": state.iteration,
    }
    template = init_states(algorithm, members)
    for layout, saved in (("dataclass", state), ("dict", saved_before)):
        manager = checkpoints.checkpoint_manager(str(tmp_path / layout))
        checkpoints.save(manager, 1, saved)
        restored = checkpoints.restore(manager, 1, template)
        assert isinstance(restored, MacawState), layout
        jax.tree.map(np.testing.assert_array_equal, restored, state)
