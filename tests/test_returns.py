"""Discounted returns, GAE and masked normalization against hand-computed numbers."""

import jax
import jax.numpy as jnp
import numpy as np

from metarl_jax.rl import discounted_returns, gae, masked_mean, normalize

# Time-major [T=4, N=2]. Episode 0 ends after three steps (its 4th reward must be ignored);
# episode 1 runs to the horizon.
REWARDS = jnp.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])
VALID = jnp.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.0, 1.0]])
VALUES = jnp.array([[0.5, 1.0], [1.0, 1.0], [2.0, 1.0], [10.0, 1.0]])


def test_discounted_returns_hand_computed():
    # gamma = 0.5
    # episode 0: R2 = 3, R1 = 2 + 0.5 * 3 = 3.5, R0 = 1 + 0.5 * 3.5 = 2.75, R3 = 0 (invalid)
    # episode 1: R3 = 1, R2 = 1.5, R1 = 1.75, R0 = 1.875
    expected = np.array([[2.75, 1.875], [3.5, 1.75], [3.0, 1.5], [0.0, 1.0]])
    np.testing.assert_allclose(discounted_returns(REWARDS, VALID, 0.5), expected, rtol=1e-6)


def test_gae_hand_computed():
    # gamma = 0.5, lambda = 0.5, so gamma * lambda = 0.25.
    # episode 0 (values 0.5, 1, 2; the value at the invalid step 3 must not be bootstrapped):
    #   d2 = 3 + 0 - 2 = 1,  d1 = 2 + 0.5 * 2 - 1 = 2,  d0 = 1 + 0.5 * 1 - 0.5 = 1
    #   A2 = 1,  A1 = 2 + 0.25 * 1 = 2.25,  A0 = 1 + 0.25 * 2.25 = 1.5625,  A3 = 0
    # episode 1 (values all 1; the horizon is terminal, value 0 beyond):
    #   d3 = 1 - 1 = 0,  d2 = d1 = d0 = 1 + 0.5 - 1 = 0.5
    #   A3 = 0,  A2 = 0.5,  A1 = 0.5 + 0.25 * 0.5 = 0.625,  A0 = 0.5 + 0.25 * 0.625 = 0.65625
    expected = np.array([[1.5625, 0.65625], [2.25, 0.625], [1.0, 0.5], [0.0, 0.0]])
    np.testing.assert_allclose(gae(REWARDS, VALUES, VALID, 0.5, 0.5), expected, rtol=1e-6)


def test_gae_lambda_zero_is_one_step_td_error():
    # lambda = 0: A_t = delta_t (masked).
    expected = np.array([[1.0, 0.5], [2.0, 0.5], [1.0, 0.5], [0.0, 0.0]])
    np.testing.assert_allclose(gae(REWARDS, VALUES, VALID, 0.5, 0.0), expected, rtol=1e-6)


def test_gae_with_lambda_one_equals_returns_minus_values():
    key_r, key_v = jax.random.split(jax.random.PRNGKey(0))
    horizon, episodes = 12, 6
    rewards = jax.random.normal(key_r, (horizon, episodes))
    values = jax.random.normal(key_v, (horizon, episodes))
    lengths = jnp.array([1, 3, 5, 8, 11, 12])  # episodes of every length, one to the horizon
    valid = (jnp.arange(horizon)[:, None] < lengths[None, :]).astype(jnp.float32)
    rewards = rewards * valid  # as the rollout leaves them
    gamma = 0.9
    advantages = gae(rewards, values, valid, gamma, 1.0)
    expected = (discounted_returns(rewards, valid, gamma) - values) * valid
    np.testing.assert_allclose(advantages, expected, rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(advantages)[np.asarray(valid) == 0] == 0)


def test_masked_mean_hand_computed():
    x = jnp.array([1.0, 3.0, 100.0, -7.0])
    valid = jnp.array([1.0, 1.0, 0.0, 0.0])
    assert float(masked_mean(x, valid)) == 2.0
    # No valid entry: 0, not a division by zero.
    assert float(masked_mean(x, jnp.zeros(4))) == 0.0


def test_normalize_hand_computed():
    # valid entries 1 and 3: mean 2, std 1 -> -1, 1; the invalid entry becomes 0.
    out = normalize(jnp.array([1.0, 3.0, 100.0]), jnp.array([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(out, [-1.0, 1.0, 0.0], atol=1e-6)


def test_normalize_zero_mean_unit_std_over_valid_entries():
    x = 5.0 + 3.0 * jax.random.normal(jax.random.PRNGKey(1), (20, 7))
    valid = (jax.random.uniform(jax.random.PRNGKey(2), (20, 7)) < 0.6).astype(jnp.float32)
    out = np.asarray(normalize(x, valid))
    mask = np.asarray(valid) == 1
    assert 20 < mask.sum() < 140
    np.testing.assert_allclose(out[mask].mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[mask].std(), 1.0, rtol=1e-4)
    assert np.all(out[~mask] == 0.0)
    # The statistics come from the valid entries only: changing an invalid input changes nothing.
    x_changed = jnp.where(valid == 0, 1e6, x)
    np.testing.assert_allclose(normalize(x_changed, valid), out, rtol=1e-5, atol=1e-5)
