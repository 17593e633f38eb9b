"""PEARL's context encoder, its Gaussian maths (product, masking, KL) and the SAC networks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl_jax.nets.context import (
    ContextEncoder,
    RankOneContextEncoder,
    kl_to_standard_normal,
    latent_variances,
    mean_of_factors,
    product_of_gaussians,
    rank_one_posterior,
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


def test_rank_one_posterior_by_hand_with_masking():
    """Prior N(0, I) in 2-D; observation u = (1, 1), c = 2 (u·z = 2, unit noise): precision
    [[2, 1], [1, 2]], information (2, 2), mean (2/3, 2/3), covariance [[2, -1], [-1, 2]] / 3. A
    masked observation (even a NaN one) counts for nothing; none at all gives N(0, I)."""
    directions = jnp.array([[1.0, 1.0], [np.nan, 5.0]])
    values = jnp.array([2.0, np.nan])
    mean, cholesky = rank_one_posterior(directions, values, jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(mean, [2 / 3, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose(cholesky @ cholesky.T, [[2.0, 1.0], [1.0, 2.0]], rtol=1e-6)
    np.testing.assert_allclose(latent_variances(mean, cholesky), [2 / 3, 2 / 3], rtol=1e-6)
    empty_mean, empty = rank_one_posterior(directions, values, jnp.zeros(2))
    np.testing.assert_array_equal(empty_mean, [0.0, 0.0])
    np.testing.assert_allclose(empty, np.eye(2))
    # KL(N(m, S) || N(0, I)) = (tr S + m·m − 2 − log det S) / 2 with det S = 1/3
    by_hand = 0.5 * (4 / 3 + 8 / 9 - 2.0 + np.log(3.0))
    np.testing.assert_allclose(kl_to_standard_normal(mean, cholesky), by_hand, rtol=1e-5)


def test_rank_one_samples_have_the_posterior_covariance_and_the_diagonal_case_agrees():
    mean, cholesky = rank_one_posterior(jnp.array([[1.0, 1.0]]), jnp.array([2.0]))
    z = jax.vmap(lambda k: sample_latent(k, mean, cholesky))(
        jax.random.split(jax.random.PRNGKey(0), 200_000)
    )
    np.testing.assert_allclose(jnp.mean(z, 0), mean, atol=1e-2)
    np.testing.assert_allclose(jnp.cov(z.T), [[2 / 3, -1 / 3], [-1 / 3, 2 / 3]], atol=1e-2)
    # axis-aligned observations: the same posterior as the diagonal family with the prior factor
    directions = jnp.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    values = jnp.array([1.0, -3.0, 0.5])
    mean, cholesky = rank_one_posterior(directions, values)
    # factor n on axis i: variance 1/u², mean c/u
    diag_mean, diag_var = product_of_gaussians(
        jnp.array([[0.5, 0.0], [0.0, -3.0], [0.5, 0.0]]),
        jnp.array([[0.25, 1e9], [1e9, 1.0], [1.0, 1e9]]),
        include_prior=True,
    )
    np.testing.assert_allclose(mean, diag_mean, rtol=1e-5)
    np.testing.assert_allclose(latent_variances(mean, cholesky), diag_var, rtol=1e-5)
    np.testing.assert_allclose(
        kl_to_standard_normal(mean, cholesky), kl_to_standard_normal(diag_mean, diag_var), rtol=1e-5
    )
    key = jax.random.PRNGKey(3)
    np.testing.assert_allclose(
        sample_latent(key, mean, cholesky), sample_latent(key, diag_mean, diag_var), rtol=1e-5
    )


def test_rank_one_observations_locate_a_goal_from_distances():
    """Why the family exists: a reward −‖p − g‖ at a known position p is one linear
    equation in (g, ‖g‖²): ‖p‖² − 2 p·g + ‖g‖² = d². As observations u = s (−2p, 1),
    c = s (d² − ‖p‖²) (large s: little prior), three positions fix the goal — which no product
    of axis-aligned factors can express (each transition constrains g along p, not an axis)."""
    goal = jnp.array([0.3, -0.4])
    positions = jnp.array([[0.0, 0.0], [0.1, 0.05], [-0.05, 0.1], [0.08, -0.02]])
    distances = jnp.linalg.norm(positions - goal, axis=-1)
    scale = 1e3
    directions = scale * jnp.concatenate([-2 * positions, jnp.ones((4, 1))], axis=-1)
    values = scale * (distances**2 - jnp.sum(positions**2, -1))
    mean, _ = rank_one_posterior(directions, values)
    np.testing.assert_allclose(mean[:2], goal, atol=1e-4)
    np.testing.assert_allclose(mean[2], 0.25, atol=1e-4)


def test_rank_one_encoder_shapes_and_permutation_invariance():
    encoder = RankOneContextEncoder(latent_size=3, hidden_sizes=(16,))
    context = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 5))
    weights = jnp.array([[1, 1, 0, 1, 1, 0, 1, 1], [1, 0, 1, 1, 1, 1, 0, 0]], jnp.float32)
    params = encoder.init(jax.random.PRNGKey(1), context)
    directions, values = encoder.apply(params, context)
    assert directions.shape == (2, 8, 3) and values.shape == (2, 8)
    posterior = jax.jit(lambda c, w: rank_one_posterior(*encoder.apply(params, c), w))
    order = jax.random.permutation(jax.random.PRNGKey(2), 8)
    for a, b in zip(
        posterior(context, weights), posterior(context[:, order], weights[:, order]), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


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
