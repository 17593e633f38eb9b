"""Action distributions against closed forms, and the linear feature baseline."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from metarl_jax.rl import CATEGORICAL, DIAG_GAUSSIAN
from metarl_jax.rl.baseline import fit_linear_baseline, linear_baseline_values, linear_features

MEAN = np.array([[0.3, -1.2, 2.0], [0.0, 0.5, -0.5]], np.float32)
LOG_STD = np.array([[0.1, -0.7, 0.4], [0.0, 0.2, -0.3]], np.float32)
ACTION = np.array([[1.0, -1.0, 1.5], [0.2, 0.1, 0.0]], np.float32)
LOGITS = np.array([[0.5, -1.0, 2.0, 0.0], [3.0, 0.0, 0.0, -2.0], [0.1, 0.2, 0.3, 0.4]], np.float32)


def test_gaussian_log_prob_matches_scipy():
    expected = stats.norm.logpdf(ACTION, MEAN, np.exp(LOG_STD)).sum(axis=-1)
    np.testing.assert_allclose(DIAG_GAUSSIAN.log_prob((MEAN, LOG_STD), ACTION), expected, rtol=1e-5)


def test_gaussian_log_prob_hand_computed():
    # One dimension, mean 0, std 1, action 1: -0.5 - 0.5 log(2 pi).
    value = DIAG_GAUSSIAN.log_prob((jnp.zeros(1), jnp.zeros(1)), jnp.ones(1))
    assert float(value) == pytest.approx(-0.5 - 0.5 * np.log(2 * np.pi), rel=1e-6)


def test_gaussian_entropy_matches_scipy():
    expected = stats.norm.entropy(MEAN, np.exp(LOG_STD)).sum(axis=-1)
    np.testing.assert_allclose(DIAG_GAUSSIAN.entropy((MEAN, LOG_STD)), expected, rtol=1e-5)


def test_gaussian_kl_closed_form_and_self():
    p, q = (MEAN[0], LOG_STD[0]), (MEAN[1], LOG_STD[1])
    sp, sq = np.exp(LOG_STD[0]), np.exp(LOG_STD[1])
    expected = np.sum(np.log(sq / sp) + (sp**2 + (MEAN[0] - MEAN[1]) ** 2) / (2 * sq**2) - 0.5)
    assert float(DIAG_GAUSSIAN.kl(p, q)) == pytest.approx(expected, rel=1e-5)
    assert float(DIAG_GAUSSIAN.kl(q, p)) != pytest.approx(expected, rel=1e-2)  # not symmetric
    np.testing.assert_allclose(DIAG_GAUSSIAN.kl(p, p), 0.0, atol=1e-6)


def test_gaussian_kl_monte_carlo():
    p, q = (MEAN[0], LOG_STD[0]), (MEAN[1], LOG_STD[1])
    samples = jax.vmap(lambda k: DIAG_GAUSSIAN.sample(k, p))(
        jax.random.split(jax.random.PRNGKey(0), 200_000)
    )
    estimate = jnp.mean(DIAG_GAUSSIAN.log_prob(p, samples) - DIAG_GAUSSIAN.log_prob(q, samples))
    assert float(estimate) == pytest.approx(float(DIAG_GAUSSIAN.kl(p, q)), rel=0.02)


def test_gaussian_samples_have_the_right_moments():
    p = (MEAN[0], LOG_STD[0])
    samples = np.asarray(
        jax.vmap(lambda k: DIAG_GAUSSIAN.sample(k, p))(
            jax.random.split(jax.random.PRNGKey(1), 100_000)
        )
    )
    np.testing.assert_allclose(samples.mean(axis=0), MEAN[0], atol=0.02)
    np.testing.assert_allclose(samples.std(axis=0), np.exp(LOG_STD[0]), rtol=0.02)


def test_categorical_log_prob_and_entropy_match_numpy():
    actions = np.array([2, 0, 3])
    log_p = special.log_softmax(LOGITS.astype(np.float64), axis=-1)
    np.testing.assert_allclose(
        CATEGORICAL.log_prob(LOGITS, jnp.asarray(actions)),
        log_p[np.arange(3), actions],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        CATEGORICAL.entropy(LOGITS), -(np.exp(log_p) * log_p).sum(-1), rtol=1e-5
    )
    # Uniform logits over 4 actions: log(1/4) for every action, entropy log 4.
    assert float(CATEGORICAL.log_prob(jnp.zeros(4), jnp.asarray(1))) == pytest.approx(-np.log(4))
    assert float(CATEGORICAL.entropy(jnp.zeros(4))) == pytest.approx(np.log(4), rel=1e-6)


def test_categorical_log_prob_accepts_float_actions():
    # Rollout buffers may hold actions as floats; the index must still be exact.
    np.testing.assert_allclose(
        CATEGORICAL.log_prob(LOGITS, jnp.array([2.0, 0.0, 3.0])),
        CATEGORICAL.log_prob(LOGITS, jnp.array([2, 0, 3])),
    )


def test_categorical_kl_closed_form_and_self():
    log_p = special.log_softmax(LOGITS[0].astype(np.float64))
    log_q = special.log_softmax(LOGITS[1].astype(np.float64))
    expected = np.sum(np.exp(log_p) * (log_p - log_q))
    assert float(CATEGORICAL.kl(LOGITS[0], LOGITS[1])) == pytest.approx(expected, rel=1e-5)
    np.testing.assert_allclose(CATEGORICAL.kl(LOGITS, LOGITS), np.zeros(3), atol=1e-6)
    # Shifting all logits by a constant leaves the distribution unchanged.
    np.testing.assert_allclose(CATEGORICAL.kl(LOGITS, LOGITS + 5.0), np.zeros(3), atol=1e-5)


def test_categorical_samples_follow_softmax():
    logits = jnp.asarray(LOGITS[0])
    samples = jax.vmap(lambda k: CATEGORICAL.sample(k, logits))(
        jax.random.split(jax.random.PRNGKey(2), 50_000)
    )
    frequencies = np.bincount(np.asarray(samples), minlength=4) / 50_000
    np.testing.assert_allclose(frequencies, special.softmax(LOGITS[0]), atol=0.01)


# ----- linear feature baseline ---------------------------------------------------------------


def test_linear_features_layout():
    obs = jnp.array([[[2.0, -1.0]], [[3.0, 0.5]]])  # [T=2, N=1, d=2]
    features = np.asarray(linear_features(obs))
    assert features.shape == (2, 1, 8)
    np.testing.assert_allclose(features[0, 0], [2.0, -1.0, 4.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(
        features[1, 0], [3.0, 0.5, 9.0, 0.25, 0.01, 1e-4, 1e-6, 1.0], rtol=1e-5
    )


def test_fit_linear_baseline_recovers_exact_weights():
    with jax.enable_x64(True):
        horizon, episodes, d = 30, 8, 2
        key_obs, key_w, key_junk = jax.random.split(jax.random.PRNGKey(3), 3)
        obs = jax.random.normal(key_obs, (horizon, episodes, d), jnp.float64)
        true_weights = jax.random.normal(key_w, (2 * d + 4,), jnp.float64)
        lengths = jnp.array([30, 30, 25, 20, 30, 12, 30, 28])
        valid = (jnp.arange(horizon)[:, None] < lengths[None, :]).astype(jnp.float64)
        returns = linear_features(obs) @ true_weights
        # What lies outside the valid steps must not matter.
        returns = jnp.where(valid > 0, returns, jax.random.normal(key_junk, returns.shape) * 1e3)
        weights = fit_linear_baseline(obs, returns, valid, reg=0.0)
        np.testing.assert_allclose(weights, true_weights, rtol=1e-6, atol=1e-6)
        values = linear_baseline_values(weights, obs, valid)
        np.testing.assert_allclose(values, returns * valid, rtol=1e-6, atol=1e-6)


def test_fit_linear_baseline_float32_default_reg_fits_linear_returns():
    horizon, episodes = 20, 10
    obs = jax.random.uniform(jax.random.PRNGKey(4), (horizon, episodes, 2), minval=-1, maxval=1)
    true_weights = jnp.array([1.0, -2.0, 0.5, 0.3, -4.0, 0.0, 0.0, 2.0])
    valid = jnp.ones((horizon, episodes))
    returns = linear_features(obs) @ true_weights
    weights = fit_linear_baseline(obs, returns, valid)
    values = linear_baseline_values(weights, obs, valid)
    residual = np.asarray(values - returns)
    assert np.sqrt(np.mean(residual**2)) < 1e-2 * np.std(np.asarray(returns))
