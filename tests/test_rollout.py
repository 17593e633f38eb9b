"""Environments and rollouts on hand-computed episodes: rewards, termination, frozen episodes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl_jax.envs import make_env
from metarl_jax.rl import CATEGORICAL, DIAG_GAUSSIAN, Policy, episode_returns, rollout
from metarl_jax.tasks import BanditTask, GoalTask


def _fixed_action_policy(action):
    """A (numerically) deterministic Gaussian policy that always takes `action`."""
    action = jnp.asarray(action)
    return Policy(
        init=lambda key: {},
        apply=lambda params, obs: (
            jnp.broadcast_to(action, obs.shape),
            jnp.full(obs.shape, -30.0),
        ),
        dist=DIAG_GAUSSIAN,
    )


def test_navigation_episode_ends_at_the_goal_and_stays_frozen():
    env = make_env("navigation", horizon=5)
    assert env.horizon == 5
    # Goal (0.2, 0.05); each step moves by (0.1, 0.025): the goal is reached on the second step.
    policy = _fixed_action_policy([0.1, 0.025])
    traj = rollout(env, policy, {}, GoalTask(jnp.array([0.2, 0.05])), jax.random.PRNGKey(0), 3, 5)
    assert traj.obs.shape == (5, 3, 2)
    np.testing.assert_array_equal(traj.valid, np.array([[1, 1, 0, 0, 0]] * 3).T)
    first_reward = -np.sqrt(0.1**2 + 0.025**2)
    np.testing.assert_allclose(traj.rewards[:, 0], [first_reward, 0, 0, 0, 0], atol=1e-5)
    np.testing.assert_allclose(episode_returns(traj), [first_reward] * 3, atol=1e-5)
    # Observations are the positions before each step; after the goal they stay put.
    np.testing.assert_allclose(traj.obs[0, 0], [0.0, 0.0])
    np.testing.assert_allclose(traj.obs[1, 0], [0.1, 0.025], atol=1e-6)
    np.testing.assert_allclose(traj.obs[2:, 0], [[0.2, 0.05]] * 3, atol=1e-6)


def test_navigation_clips_actions_and_runs_to_the_horizon():
    env = make_env("navigation", horizon=4)
    # An oversized action is clipped to 0.1 per axis; the goal (-0.5, -0.5) is never reached.
    policy = _fixed_action_policy([5.0, -5.0])
    traj = rollout(env, policy, {}, GoalTask(jnp.array([-0.5, -0.5])), jax.random.PRNGKey(1), 2, 4)
    np.testing.assert_array_equal(traj.valid, np.ones((4, 2)))
    positions = np.array([[0.1, -0.1], [0.2, -0.2], [0.3, -0.3], [0.4, -0.4]])
    expected = -np.linalg.norm(positions - np.array([-0.5, -0.5]), axis=1)
    np.testing.assert_allclose(traj.rewards[:, 1], expected, rtol=1e-5)
    np.testing.assert_allclose(episode_returns(traj), [expected.sum()] * 2, rtol=1e-5)


def test_bandit_rewards_follow_the_arm_probabilities():
    env = make_env("bandit", num_arms=3, horizon=200)
    # Arm 0 never pays, arm 1 always pays, arm 2 pays with probability 0.3.
    task = BanditTask(jnp.array([0.0, 1.0, 0.3]))
    for arm, expected in ((0, 0.0), (1, 1.0), (2, 0.3)):
        logits = jnp.full((3,), -1e4).at[arm].set(0.0)
        policy = Policy(
            init=lambda key: {},
            apply=lambda params, obs, logits=logits: jnp.broadcast_to(logits, (*obs.shape[:-1], 3)),
            dist=CATEGORICAL,
        )
        traj = rollout(env, policy, {}, task, jax.random.PRNGKey(arm), 4, env.horizon)
        assert np.all(np.asarray(traj.actions) == arm)
        assert np.all(np.asarray(traj.valid) == 1)
        assert float(jnp.mean(traj.rewards)) == pytest.approx(expected, abs=0.05)
        np.testing.assert_allclose(traj.log_probs, 0.0, atol=1e-6)
