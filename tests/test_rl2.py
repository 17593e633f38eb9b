"""RL²: trial collection and its recurrent state, the within-trial GAE, learning, sweep masking."""

import dataclasses
import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl_jax.algos import Rl2Config, make_rl2
from metarl_jax.algos.rl2 import rl2_agent, trial_returns
from metarl_jax.envs import make_env
from metarl_jax.rl import make_recurrent_agent, rollout_trials, trial_gae, unroll
from metarl_jax.sweep import sweep_members, train
from metarl_jax.tasks import GoalTask, Restriction

from .conftest import (
    MEMBERS_DIFFER,
    REPO_ROOT,
    assert_trees_close,
    max_abs_difference,
    member_index,
    pick,
)

HORIZON, EPISODES, TRIALS = 4, 3, 2


@functools.cache
def collected_trials():
    env = make_env("navigation", horizon=HORIZON)
    agent = make_recurrent_agent(env, (8,))
    params = agent.init(jax.random.PRNGKey(0))
    task = GoalTask(jnp.array([0.3, -0.2]))
    trajectory = rollout_trials(
        env, agent, params, task, jax.random.PRNGKey(1), TRIALS, EPISODES, HORIZON
    )
    return env, agent, params, trajectory


def test_trial_shapes_and_previous_step_inputs():
    env, agent, _, trajectory = collected_trials()
    steps = EPISODES * HORIZON
    assert trajectory.inputs.shape == (steps, TRIALS, agent.input_size)
    assert agent.input_size == env.obs_size + env.action_size + 2
    inputs = np.asarray(trajectory.inputs)
    done, prev_reward, prev_action = inputs[..., -1], inputs[..., -2], inputs[..., 2:4]
    starts = np.arange(1, EPISODES) * HORIZON
    # the trial starts with no previous step; each later episode starts with done = 1
    np.testing.assert_array_equal(inputs[0, :, 2:], 0.0)
    np.testing.assert_array_equal(done[starts], 1.0)
    mid = np.setdiff1d(np.arange(steps), np.concatenate([[0], starts]))
    np.testing.assert_array_equal(done[mid], 0.0)
    # "previous" is the step before, also across an episode boundary
    np.testing.assert_allclose(prev_reward[1:], np.asarray(trajectory.rewards)[:-1])
    np.testing.assert_allclose(prev_action[1:], np.asarray(trajectory.actions)[:-1])
    # every episode restarts the environment at the origin
    np.testing.assert_array_equal(inputs[starts, :, :2], 0.0)


def test_unroll_reproduces_collection():
    """Backpropagation through time replays exactly the recurrent state seen at collection."""
    _, agent, params, trajectory = collected_trials()
    dist_params, values = unroll(agent, params, trajectory.inputs, trajectory.valid)
    log_probs = agent.dist.log_prob(dist_params, trajectory.actions)
    np.testing.assert_allclose(log_probs, trajectory.log_probs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values, trajectory.values, rtol=1e-5, atol=1e-5)


def test_recurrent_state_is_reset_at_trial_starts_and_nowhere_else():
    _, agent, params, trajectory = collected_trials()
    zero_state = agent.initial_carry((TRIALS,))
    _, zero_state_output, _ = agent.step(params, zero_state, trajectory.inputs)
    zero_state_log_probs = agent.dist.log_prob(zero_state_output, trajectory.actions)
    # Each trial's first step sees the zero state...
    np.testing.assert_allclose(zero_state_log_probs[0], trajectory.log_probs[0], rtol=1e-5)
    # ...and no later step does, in particular not the first step of a later episode. (Step 1
    # is exempt: the first input is all zeros, at the origin with no previous step, and a GRU
    # with zero biases maps a zero state and a zero input to the zero state.)
    for t in range(2, EPISODES * HORIZON):
        assert np.all(np.abs(zero_state_log_probs[t] - trajectory.log_probs[t]) > 1e-6), t

    # Outputs in the last episode depend on inputs of the first one (the state crosses episode
    # boundaries), and trial 1 does not depend on trial 0 at all (separate states).
    def last_episode_log_prob(inputs, trial):
        dists, _ = unroll(agent, params, inputs, trajectory.valid)
        return agent.dist.log_prob(dists, trajectory.actions)[-1, trial]

    grad_trial0 = jax.grad(last_episode_log_prob)(trajectory.inputs, 0)
    assert np.abs(np.asarray(grad_trial0[:HORIZON, 0])).sum() > 1e-4
    np.testing.assert_array_equal(grad_trial0[:, 1], 0.0)


def test_trial_gae_by_hand():
    """r = (1, 2, -, 3) with the third step invalid (a frozen, ended episode), V = (.5, 1, 9, 2)."""
    rewards = jnp.array([1.0, 2.0, 0.0, 3.0])
    values = jnp.array([0.5, 1.0, 9.0, 2.0])
    valid = jnp.array([1.0, 1.0, 0.0, 1.0])
    # lambda = 1: advantage = discounted return over the valid steps minus the value
    # R0 = 1 + .5 * 2 + .25 * 3 = 2.75; R1 = 2 + .5 * 3 = 3.5; R3 = 3
    np.testing.assert_allclose(
        trial_gae(rewards, values, valid, 0.5, 1.0), [2.25, 2.5, 0.0, 1.0], rtol=1e-6
    )
    # lambda = .5: deltas (1, 2, -, 1); A1 = 2 + .25 * 1; A0 = 1 + .25 * 2.25
    np.testing.assert_allclose(
        trial_gae(rewards, values, valid, 0.5, 0.5), [1.5625, 2.25, 0.0, 1.0], rtol=1e-6
    )


def tiny_rl2(**overrides) -> Rl2Config:
    base = Rl2Config(
        hidden_sizes=(8,),
        horizon=3,
        episodes_per_trial=2,
        trials_per_task=2,
        max_meta_batch_size=4,
        ppo_epochs=2,
        num_minibatches=2,
        num_eval_tasks=3,
        train_tasks=Restriction(num_tasks=3),
    )
    return dataclasses.replace(base, **overrides)


def run_rl2(config, seeds, meta_batch_sizes, num_train_tasks, iterations=2):
    env = make_env("navigation", horizon=config.horizon)
    members, rows = sweep_members(seeds, meta_batch_sizes, num_train_tasks)
    result = list(train(make_rl2(config, env), members, iterations, iterations))[-1]
    return result, rows


# One separate run per case (each compile costs seconds): masked meta-batch with a pool, then the
# full meta-batch of the whole region.
@pytest.mark.parametrize(
    "num_minibatches, members",
    [pytest.param(1, [(2, 3)], marks=pytest.mark.slow), (2, [(4, 0)])],
)
def test_masked_sweep_member_equals_separate_run(num_minibatches, members):
    """Seeds x meta-batch sizes (2, 4) x training tasks (1, 3, all) in one call; a member equals
    a run compiled for its meta-batch size alone (minibatches are drawn among active tasks)."""
    sweep, rows = run_rl2(tiny_rl2(num_minibatches=num_minibatches), (0, 1), (2, 4), (1, 3, 0))
    for meta_batch_size, num_train_tasks in members:
        config = tiny_rl2(num_minibatches=num_minibatches, max_meta_batch_size=meta_batch_size)
        alone, _ = run_rl2(config, (1,), (meta_batch_size,), (num_train_tasks,))
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
        assert sweep.env_steps[i] == alone.env_steps[0] == meta_batch_size * 2 * 2 * 3 * 2


def test_metrics_report_every_episode_of_the_trial():
    result, _ = run_rl2(tiny_rl2(), (0,), (4,), (0,), iterations=1)
    assert set(result.eval_metrics) == {
        "eval/return",
        "eval/reward_per_step",
        "eval/return_episode0",
        "eval/return_episode1",
    }
    assert result.eval_metrics["eval/return"] == result.eval_metrics["eval/return_episode1"]
    both = result.eval_metrics["eval/return_episode0"] + result.eval_metrics["eval/return_episode1"]
    per_step = both / (2 * tiny_rl2().horizon)
    np.testing.assert_allclose(result.eval_metrics["eval/reward_per_step"], per_step, rtol=1e-6)
    for name in ("train/return_episode0", "train/return_episode1", "optim/approx_kl"):
        assert np.isfinite(result.train_metrics[name]).all()


@pytest.mark.slow
def test_rl2_beats_random_on_five_armed_bandits():
    """k = 5 arms, n = 10 pulls: after a short CPU run RL² earns clearly more than random play
    (expected n * mean(p)) on 1,000 fresh instances."""
    num_arms, pulls = 5, 10
    env = make_env("bandit", horizon=pulls, num_arms=num_arms)
    config = Rl2Config(horizon=pulls, episodes_per_trial=1, max_meta_batch_size=100)
    members, _ = sweep_members((0,), (100,))
    result = list(train(make_rl2(config, env), members, 150, 150))[-1]
    params = pick(result.state.params, 0)
    tasks = jax.vmap(env.task_space.sample)(jax.random.split(jax.random.PRNGKey(7), 1000))
    agent = rl2_agent(config, env)
    totals = np.asarray(trial_returns(config, env, agent, params, tasks, jax.random.PRNGKey(8)))
    random_totals = pulls * np.asarray(tasks.arm_probs).mean(axis=1)
    gain = totals[:, 0] - random_totals
    standard_error = gain.std() / np.sqrt(gain.size)
    assert gain.mean() > 0.5 and gain.mean() > 5 * standard_error, (gain.mean(), standard_error)


def _bandit_table_answer(script: str) -> list:
    """What a bandit_table function returns, asked in a subprocess (the table's flags clash with
    the app's): `script` prints one JSON line."""
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(found.stdout.strip().splitlines()[-1])


def _spec_of_flag_file(name: str):
    """The RunSpec the app builds from experiments/flags/<name>.flags."""
    from experiments import cli

    flagfile = os.path.join(REPO_ROOT, "experiments", "flags", f"{name}.flags")
    cli.FLAGS.unparse_flags()
    cli.FLAGS(["experiments.main", f"--flagfile={flagfile}"])
    try:
        return cli.spec_from_flags()
    finally:
        cli.FLAGS.unparse_flags()


@pytest.mark.slow
def test_bandit_table_trains_rl2_as_the_rl2_bandit_flag_file_does():
    """The bandit table reads RL²'s training setting from rl2_bandit.flags (its one home): the
    config it builds equals the app's from that file, but for the table's own n."""
    table_config, meta_batch_size = _bandit_table_answer(
        "import dataclasses, json; from experiments.bandit_table import rl2_bandit_setting as s; "
        "c, m = s(num_pulls=10); print(json.dumps([repr(c), m]))"
    )
    spec = _spec_of_flag_file("rl2_bandit")
    assert meta_batch_size == spec.meta_batch_sizes[0] == spec.config.max_meta_batch_size
    expected = dataclasses.replace(
        spec.config, horizon=10, num_eval_tasks=Rl2Config().num_eval_tasks
    )  # the table plays its own instances
    assert table_config == repr(expected)
    assert spec.config.outer_lr == 3e-3  # what the file sets, not Rl2Config's default


@pytest.mark.slow
def test_bandit_table_trains_maml_as_the_maml_bandit_flag_file_does():
    """The bandit table's MAML setting is maml_trpo_bandit.flags' (its one home) with the table's
    n/2 pulls per adaptation batch; and that setting's hidden layers learn (with ReLU on the
    bandit's constant zero observation they would get no gradient at all)."""
    from metarl_jax.algos import MamlConfig, make_maml, sweep_member
    from metarl_jax.envs import make_env

    table_config, meta_batch_size, verdicts = _bandit_table_answer(
        "import json; from experiments.bandit_table import maml_bandit_setting as s, "
        "training_verdict as v; c, m = s(num_pulls=10); "
        "print(json.dumps([repr(c), m, [v(q, 100) for q in "
        "([0.5, 0.6, 0.7, 0.8], [0.5, 0.6, 0.7, 0.705], [0.5, 0.6, 0.7, 0.69], [0.5])]]))"
    )
    # the last quarter against the one before, with a tolerance of 1 % of the latter
    assert [v.rsplit(": ", 1)[-1] for v in verdicts[:3]] == ["still rising", "flat", "falling"]
    assert "no quarters" in verdicts[3]
    spec = _spec_of_flag_file("maml_trpo_bandit")
    assert meta_batch_size == spec.meta_batch_sizes[0] == spec.config.max_meta_batch_size
    defaults = MamlConfig()
    expected = dataclasses.replace(
        spec.config,
        rollouts_per_task=5,
        eval_adapt_steps=defaults.eval_adapt_steps,
        num_eval_tasks=defaults.num_eval_tasks,
    )  # the table plays its own instances
    assert table_config == repr(expected)

    env = make_env("bandit", horizon=1, num_arms=5)
    member = sweep_member(seed=0, meta_batch_size=meta_batch_size)
    for activation, hidden_layers_learn in ((expected.activation, True), ("relu", False)):
        algorithm = make_maml(dataclasses.replace(expected, activation=activation), env)
        state = algorithm.init(member)
        new_state, _ = jax.jit(algorithm.update)(state, member)
        before, after = (s.params["params"]["MLP_0"] for s in (state, new_state))
        moved = max(
            jax.tree.leaves(jax.tree.map(lambda a, b: float(np.abs(a - b).max()), before, after))
        )
        assert (moved > 0.0) == hidden_layers_learn, (activation, moved)
