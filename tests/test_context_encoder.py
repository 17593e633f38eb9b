"""PEARL's context encoder, its Gaussian maths (product, masking, KL) and the SAC networks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl_jax.nets.context import (
    ContextEncoder,
    kl_to_standard_normal,
    mean_of_factors,
    product_of_gaussians,
    sample_latent,
)
from metarl_jax.nets.sac import TanhGaussianActor, TwinQ


def test_product_of_two_1d_factors():
    mean, variance = product_of_gaussians(jnp.array([[1.0], [3.0]]), jnp.array([[1.0], [1 / 3]]))
    # precision 1 + 3 = 4
    np.testing.assert_allclose(variance, [0.25], rtol=1e-6)
    np.testing.assert_allclose(mean, [0.25 * (1.0 + 9.0)], rtol=1e-6)


def test_product_of_2d_factors_with_per_dimension_variances():
    means = jnp.array([[1.0, 2.0], [3.0, -1.0]])
    variances = jnp.array([[1.0, 0.5], [1 / 3, 2.0]])
    mean, variance = product_of_gaussians(means, variances)
    # dim 0: precision 1 + 3 = 4; dim 1: precision 2 + 0.5 = 2.5
    np.testing.assert_allclose(variance, [0.25, 0.4], rtol=1e-6)
    np.testing.assert_allclose(mean, [0.25 * (1 + 9), 0.4 * (2 / 0.5 - 1 / 2)], rtol=1e-6)


@pytest.mark.parametrize("third", [(100.0, 1e-7), (-5.0, 1e6), (np.nan, np.nan), (1.0, 0.0)])
def test_masked_factor_is_ignored(third):
    means = jnp.array([[1.0], [3.0], [third[0]]])
    variances = jnp.array([[1.0], [1 / 3], [third[1]]])
    weights = jnp.array([1.0, 1.0, 0.0])
    mean, variance = product_of_gaussians(means, variances, weights)
    np.testing.assert_allclose(mean, [2.5], rtol=1e-6)
    np.testing.assert_allclose(variance, [0.25], rtol=1e-6)
    np.testing.assert_allclose(mean_of_factors(means, weights), [2.0], rtol=1e-6)


def test_all_masked_gives_standard_normal_with_finite_gradients():
    means = jnp.array([[[1.0, -2.0], [3.0, 0.5]]])
    variances = jnp.array([[[1.0, 0.5], [0.2, 2.0]]])
    weights = jnp.zeros((1, 2))
    for include_prior in (False, True):
        mean, variance = product_of_gaussians(means, variances, weights, include_prior)
        np.testing.assert_array_equal(mean, [[0.0, 0.0]])
        np.testing.assert_array_equal(variance, [[1.0, 1.0]])
    np.testing.assert_array_equal(mean_of_factors(means, weights), [[0.0, 0.0]])

    def loss(means, variances):
        mean, variance = product_of_gaussians(means, variances, weights)
        return jnp.sum(kl_to_standard_normal(mean, variance)) + jnp.sum(
            mean_of_factors(means, weights)
        )

    for grad in jax.grad(loss, argnums=(0, 1))(means, variances):
        assert np.all(np.isfinite(grad))


def test_include_prior_adds_a_standard_normal_factor():
    mean, variance = product_of_gaussians(
        jnp.array([[1.0], [3.0]]), jnp.array([[1.0], [1 / 3]]), include_prior=True
    )
    # precision 1 + 3 + 1 = 5
    np.testing.assert_allclose(variance, [0.2], rtol=1e-6)
    np.testing.assert_allclose(mean, [0.2 * (1.0 + 9.0 + 0.0)], rtol=1e-6)


def test_kl_by_hand_and_by_monte_carlo():
    mean, variance = jnp.array([1.0, 0.0]), jnp.array([1.0, 0.5])
    by_hand = 0.5 * (1.0 + 1.0 - 1.0 - 0.0) + 0.5 * (0.5 - 1.0 - np.log(0.5))
    kl = kl_to_standard_normal(mean, variance)
    np.testing.assert_allclose(kl, by_hand, rtol=1e-6)
    assert float(kl_to_standard_normal(jnp.zeros(3), jnp.ones(3))) == 0.0

    z = sample_latent(jax.random.PRNGKey(0), jnp.broadcast_to(mean, (200_000, 2)), variance)
    log_q = -0.5 * jnp.sum((z - mean) ** 2 / variance + jnp.log(variance), axis=-1)
    log_p = -0.5 * jnp.sum(z**2, axis=-1)
    np.testing.assert_allclose(jnp.mean(log_q - log_p), by_hand, atol=1e-2)


def test_encoder_shapes_and_variance_floor():
    encoder = ContextEncoder(latent_size=4, hidden_sizes=(16, 16))
    context = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 7))
    params = encoder.init(jax.random.PRNGKey(1), context)
    apply = jax.jit(encoder.apply)
    for shape in [(5, 7), (3, 5, 7), (2, 3, 5, 7)]:
        means, variances = apply(params, jnp.ones(shape))
        assert means.shape == variances.shape == (*shape[:-1], 4)
        assert np.all(variances >= 1e-7)

    last = max(params["params"], key=lambda name: int(name.split("_")[-1]))
    low = jax.tree.map(lambda x: x, params)
    low["params"][last]["bias"] = jnp.full_like(low["params"][last]["bias"], -1e3)
    _, variances = apply(low, context)
    np.testing.assert_allclose(variances, 1e-7, rtol=1e-6)


def test_posterior_is_permutation_invariant():
    encoder = ContextEncoder(latent_size=3, hidden_sizes=(16,))
    context = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 5))
    weights = jnp.array([[1, 1, 0, 1, 1, 0, 1, 1], [1, 0, 1, 1, 1, 1, 0, 0]], jnp.float32)
    params = encoder.init(jax.random.PRNGKey(1), context)

    def posterior(context, weights):
        means, variances = encoder.apply(params, context)
        return (
            *product_of_gaussians(means, variances, weights),
            mean_of_factors(means, weights),
        )

    posterior = jax.jit(posterior)
    order = jax.random.permutation(jax.random.PRNGKey(2), 8)
    for a, b in zip(
        posterior(context, weights), posterior(context[:, order], weights[:, order]), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def _final_layers_within_init_scale(tree):
    for layer in tree.values():
        assert np.all(np.abs(layer["kernel"]) <= 3e-3)
        assert np.all(np.abs(layer["bias"]) <= 3e-3) and np.any(layer["bias"] != 0)


def test_actor_shapes_bounds_and_init():
    actor = TanhGaussianActor(action_size=3, hidden_sizes=(32, 32))
    obs = jax.random.normal(jax.random.PRNGKey(0), (4, 6, 10))
    params = actor.init(jax.random.PRNGKey(1), obs)
    apply = jax.jit(actor.apply)
    mean, log_std = apply(params, obs)
    assert mean.shape == log_std.shape == (4, 6, 3)
    _final_layers_within_init_scale({name: params["params"][name] for name in ("mean", "log_std")})

    _, log_std = apply(params, 1e6 * obs)
    assert np.all(log_std >= -20.0) and np.all(log_std <= 2.0)
    assert np.any(log_std == 2.0) and np.any(log_std == -20.0)


def test_twin_q_shapes_and_independent_heads():
    critic = TwinQ(hidden_sizes=(32, 32))
    obs = jax.random.normal(jax.random.PRNGKey(0), (4, 6, 10))
    action = jax.random.normal(jax.random.PRNGKey(1), (4, 6, 3))
    params = critic.init(jax.random.PRNGKey(2), obs, action)
    q1, q2 = critic.apply(params, obs, action)
    assert q1.shape == q2.shape == (4, 6)
    assert not np.allclose(q1, q2)
    assert set(params["params"]) == {"q1", "q2"}
    for head in ("q1", "q2"):
        _final_layers_within_init_scale({"out": params["params"][head]["out"]})
