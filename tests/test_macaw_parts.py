"""MACAW's weight-transform MLP and losses: shapes, init scale, latent-only inner steps with
second-order gradients, and the losses (rl.awr's and the algorithm's own on tiny weight-transform
networks) against hand-computed numbers."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from metarl_jax.algos.macaw import adapt_value
from metarl_jax.algos.macaw_losses import (
    inner_policy_loss,
    outer_policy_loss,
    policy_outputs,
    value_loss,
)
from metarl_jax.nets.weight_transform import (
    dense_head_apply,
    init_dense_head,
    init_wt_mlp,
    merge,
    split_adapted,
    wt_layer_weights,
    wt_mlp_apply,
)
from metarl_jax.rl.awr import (
    advantage_head_loss,
    awr_policy_loss,
    awr_weights,
    fixed_std_gaussian_log_prob,
    init_inner_lrs,
    inner_sgd_step,
    value_regression_loss,
)
from metarl_jax.rl.rollout import OfflineTransitions

SIZES = (5, 8, 8, 3)
LATENT = 16


def _regression_loss(inputs, targets):
    def loss(adapted, fixed):
        return jnp.mean(jnp.square(wt_mlp_apply(merge(adapted, fixed), inputs) - targets))

    return loss


def _data(key, in_size, out_size, n=32):
    x_key, y_key = jax.random.split(key)
    return jax.random.normal(x_key, (n, in_size)), jax.random.normal(y_key, (n, out_size))


def test_wt_mlp_shapes_and_features():
    params = init_wt_mlp(jax.random.key(0), SIZES, LATENT)
    assert len(params["latents"]) == len(params["transforms"]) == 3
    for latent, transform, n_in, n_out in zip(
        params["latents"], params["transforms"], SIZES[:-1], SIZES[1:], strict=True
    ):
        assert latent.shape == (LATENT,)
        assert transform["kernel"].shape == (LATENT, n_in * n_out + n_out)
        weight, bias = wt_layer_weights(transform, latent, n_in)
        assert weight.shape == (n_in, n_out)
        assert bias.shape == (n_out,)
    x = jnp.ones((4, 7, 5))
    out, features = wt_mlp_apply(params, x, return_features=True)
    assert out.shape == (4, 7, 3)
    assert features.shape == (4, 7, 8)
    np.testing.assert_array_equal(wt_mlp_apply(params, x), out)


def test_heads_on_features_and_action():
    features, action = jnp.ones((6, 8)), jnp.ones((6, 3))
    head_input = jnp.concatenate([features, action], axis=-1)
    wt_head = init_wt_mlp(jax.random.key(1), (11, 1), LATENT)
    out, head_features = wt_mlp_apply(wt_head, head_input, return_features=True)
    assert out.shape == (6, 1)
    np.testing.assert_array_equal(head_features, head_input)
    dense = init_dense_head(jax.random.key(2), 11, 1)
    assert dense_head_apply(dense, head_input).shape == (6, 1)
    assert split_adapted(dense) == ({}, dense)


def test_generated_weights_have_dense_init_scale():
    keys = jax.random.split(jax.random.key(3), 64)
    params = jax.vmap(lambda k: init_wt_mlp(k, SIZES, LATENT))(keys)
    for index, n_in in enumerate(SIZES[:-1]):
        weights, biases = jax.vmap(
            lambda p, i=index, n=n_in: wt_layer_weights(p["transforms"][i], p["latents"][i], n)
        )(params)
        variance = float(jnp.var(weights))
        assert 0.5 / n_in < variance < 2.0 / n_in, (n_in, variance)
        np.testing.assert_array_equal(biases, 0.0)
    single = init_wt_mlp(jax.random.key(4), SIZES, LATENT)
    weight, _ = wt_layer_weights(single["transforms"][1], single["latents"][1], 8)
    assert 0.5 / 8 < float(jnp.var(weight)) < 2.0 / 8


def test_split_merge_round_trip_nested():
    policy = init_wt_mlp(jax.random.key(5), SIZES, LATENT)
    head = init_wt_mlp(jax.random.key(6), (11, 1), LATENT)
    params = {"policy": policy, "head": head, "log_coef": jnp.zeros(())}
    adapted, fixed = split_adapted(params)
    assert jax.tree.structure(adapted) == jax.tree.structure(
        {"policy": {"latents": policy["latents"]}, "head": {"latents": head["latents"]}}
    )
    assert "latents" not in fixed["policy"] and "log_coef" in fixed
    assert jax.tree.structure(merge(adapted, fixed)) == jax.tree.structure(params)


def test_inner_step_adapts_only_latents_and_is_second_order():
    params = init_wt_mlp(jax.random.key(7), SIZES, LATENT)
    train_loss = _regression_loss(*_data(jax.random.key(8), 5, 3))
    test_loss = _regression_loss(*_data(jax.random.key(9), 5, 3))
    adapted, fixed = split_adapted(params)
    lrs = init_inner_lrs(adapted, 0.1)

    stepped = merge(inner_sgd_step(train_loss, adapted, fixed, lrs), fixed)
    for new, old in zip(stepped["transforms"], params["transforms"], strict=True):
        for name in ("kernel", "bias"):
            np.testing.assert_array_equal(new[name], old[name])
    for new, old in zip(stepped["latents"], params["latents"], strict=True):
        assert float(jnp.max(jnp.abs(new - old))) > 0.0

    def outer(fixed, lrs, first_order=False):
        inner = train_loss
        if first_order:
            inner = lambda a, f: train_loss(a, jax.lax.stop_gradient(f))
        return test_loss(inner_sgd_step(inner, adapted, fixed, lrs), fixed)

    grads = jax.jit(jax.grad(outer, argnums=(0, 1)))(fixed, lrs)
    first_order = jax.jit(jax.grad(lambda f: outer(f, lrs, first_order=True)))(fixed)
    for leaf in jax.tree.leaves(grads):
        assert float(jnp.max(jnp.abs(leaf))) > 0.0
    kernel_grad = grads[0]["transforms"][0]["kernel"]
    first_order_grad = first_order["transforms"][0]["kernel"]
    assert float(jnp.max(jnp.abs(kernel_grad - first_order_grad))) > 1e-6


def test_per_parameter_learning_rates():
    params = init_wt_mlp(jax.random.key(10), (5, 8, 3), LATENT)
    loss = _regression_loss(*_data(jax.random.key(11), 5, 3))
    adapted, fixed = split_adapted(params)
    lrs = {"latents": [jnp.zeros(LATENT), jnp.full(LATENT, 1e-3)]}
    stepped = inner_sgd_step(loss, adapted, fixed, lrs)
    grad = jax.grad(loss)(adapted, fixed)["latents"][1]
    np.testing.assert_array_equal(stepped["latents"][0], adapted["latents"][0])
    np.testing.assert_allclose(
        stepped["latents"][1], adapted["latents"][1] - 1e-3 * grad, rtol=1e-6, atol=0.0
    )
    np.testing.assert_allclose(
        stepped["latents"][1] - adapted["latents"][1], -1e-3 * grad, rtol=1e-3, atol=1e-9
    )
    assert float(jnp.max(jnp.abs(grad))) > 1e-3
    assert jax.tree.structure(init_inner_lrs(adapted)) == jax.tree.structure(adapted)
    assert all(float(jnp.all(lr == 1e-3)) for lr in jax.tree.leaves(init_inner_lrs(adapted)))


def test_awr_weights_by_hand():
    weights = awr_weights(jnp.array([-1.0, 0.0, 2.0, 50.0]), 1.0)
    np.testing.assert_allclose(weights, [math.exp(-1), 1.0, math.exp(2), 20.0], rtol=1e-6)
    np.testing.assert_allclose(
        awr_weights(jnp.array([2.0, 100.0]), 2.0, max_weight=5.0), [math.e, 5.0], rtol=1e-6
    )
    grad = jax.grad(lambda a: jnp.sum(awr_weights(a, 1.0)))(jnp.array([0.5, 1.0]))
    np.testing.assert_array_equal(grad, 0.0)


def test_awr_policy_loss_by_hand():
    log_probs = jnp.array([-1.0, -2.0, -0.5])
    advantages = jnp.array([0.0, math.log(2.0), 100.0])  # weights 1, 2, 20
    # -log_prob * weight: 1, 4, 10.
    np.testing.assert_allclose(awr_policy_loss(log_probs, advantages, 1.0), 5.0, rtol=1e-6)
    masked = awr_policy_loss(log_probs, advantages, 1.0, weights=jnp.array([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(masked, 2.5, rtol=1e-6)
    # T = 2 halves the log-weights: 1, sqrt(2), 20 (clipped) -> (1 + 2 sqrt(2) + 10) / 3.
    np.testing.assert_allclose(
        awr_policy_loss(log_probs, advantages, 2.0), (11.0 + 2.0 * math.sqrt(2.0)) / 3.0, rtol=1e-6
    )
    grad = jax.grad(awr_policy_loss)(log_probs, advantages, 1.0)
    np.testing.assert_allclose(grad, -np.array([1.0, 2.0, 20.0]) / 3.0, rtol=1e-6)


def test_advantage_and_value_losses_by_hand():
    predicted = jnp.array([1.0, 0.5, -1.0])
    returns = jnp.array([3.0, 1.0, 0.0])
    values = jnp.array([1.0, 2.0, 0.5])
    # targets R - V = 2, -1, -0.5; squared errors 1, 2.25, 0.25.
    np.testing.assert_allclose(advantage_head_loss(predicted, returns, values), 3.5 / 3, rtol=1e-6)
    np.testing.assert_allclose(
        advantage_head_loss(predicted, returns, values, weights=jnp.array([1.0, 0.0, 1.0])),
        0.625,
        rtol=1e-6,
    )
    # (V - R)^2 = 4, 1, 0.25.
    np.testing.assert_allclose(value_regression_loss(values, returns), 1.75, rtol=1e-6)
    np.testing.assert_allclose(
        value_regression_loss(values, returns, weights=jnp.array([0.0, 1.0, 1.0])),
        0.625,
        rtol=1e-6,
    )
    grads = jax.grad(advantage_head_loss, argnums=(0, 1, 2))(predicted, returns, values)
    np.testing.assert_allclose(grads[0], 2.0 * np.array([-1.0, 1.5, -0.5]) / 3, rtol=1e-6)
    np.testing.assert_array_equal(grads[1], 0.0)
    np.testing.assert_array_equal(grads[2], 0.0)
    value_grad = jax.grad(value_regression_loss)(values, returns)
    np.testing.assert_allclose(value_grad, 2.0 * np.array([-2.0, 1.0, 0.5]) / 3, rtol=1e-6)


@pytest.mark.parametrize("std", [0.2, 1.3])
def test_fixed_std_log_prob_matches_scipy(std):
    mean_key, action_key = jax.random.split(jax.random.key(12))
    mean = 2.0 * jax.random.normal(mean_key, (4, 3))
    actions = jax.random.uniform(action_key, (4, 3), minval=-1.0, maxval=1.0)
    expected = norm.logpdf(np.asarray(actions), loc=np.tanh(np.asarray(mean)), scale=std).sum(-1)
    np.testing.assert_allclose(
        fixed_std_gaussian_log_prob(mean, actions, std), expected, rtol=1e-5, atol=1e-5
    )


# ----- the algorithm's losses on one-layer weight-transform networks, latent size 1 ---------


def one_layer(latent: float, weights, biases) -> dict:
    """A weight-transform layer whose latent z = `latent` generates W = latent * weights and
    b = latent * biases (its transform kernel is [weights..., biases...], its bias 0)."""
    kernel = jnp.asarray([[*np.ravel(weights), *np.ravel(biases)]], jnp.float32)
    return {
        "latents": [jnp.array([latent])],
        "transforms": [{"kernel": kernel, "bias": 0 * kernel[0]}],
    }


def test_value_loss_and_one_inner_value_step_by_hand():
    """V(s) = z (0.5 s + 0.25) with z = 2: V = s + 0.5. On s = 1, 2, 0 with returns 1, 3, 1 the
    errors are 0.5, -0.5, -0.5 (L_V = 0.25) and dL_V/dz = mean(2 err (0.5 s + 0.25)) = -0.25, so
    one inner step with step size 0.4 moves z to 2.1 and leaves the transform as it is."""
    value = one_layer(2.0, [0.5], [0.25])
    batch = OfflineTransitions(
        obs=jnp.array([[1.0], [2.0], [0.0]]),
        actions=jnp.zeros((3,), jnp.int32),
        rewards=jnp.zeros((3,)),
        returns=jnp.array([1.0, 3.0, 1.0]),
    )
    np.testing.assert_allclose(value_loss(value, batch), 0.25, rtol=1e-6)
    params = {"value": value, "value_lrs": {"latents": [jnp.array([0.4])]}}
    adapted = adapt_value(params, batch)
    np.testing.assert_allclose(adapted["latents"][0], [2.1], rtol=1e-6)
    np.testing.assert_array_equal(
        adapted["transforms"][0]["kernel"], value["transforms"][0]["kernel"]
    )


@pytest.mark.parametrize("normalize", [False, True])
def test_policy_losses_by_hand(normalize):
    """A bandit policy with logits (0, log 3) (pi = 1/4, 3/4; the observation is 0) and an
    advantage head A(s, a) = 1 for arm 0, 2 for arm 1, on actions 0, 1, 1 with returns 1, 0, 1
    and fixed values 0.5: L_AWR = mean(-log pi(a) min(exp(A / T), w_max)) with A = R - V (or A
    standardised), L_ADV = mean((A(s, a) - (R - V))^2); inner = L_AWR + lambda L_ADV."""
    settings = {
        "temperature": 0.5,
        "max_weight": 2.0,
        "standardize": normalize,
        "discrete": True,
        "action_size": 2,
        "policy_std": 0.2,
    }
    policy = {
        "body": one_layer(1.0, [0.0, 0.0], [0.0, math.log(3.0)]),
        "advantage_head": one_layer(1.0, [0.0, 1.0, 2.0], [0.0]),  # input (s, one-hot a)
    }
    batch = OfflineTransitions(
        obs=jnp.zeros((3, 1)),
        actions=jnp.array([0, 1, 1]),
        rewards=jnp.array([1.0, 0.0, 1.0]),
        returns=jnp.array([1.0, 0.0, 1.0]),
    )
    values = jnp.full((3,), 0.5)
    log_probs, predicted = policy_outputs(
        policy, batch, discrete=True, action_size=2, policy_std=0.2
    )
    np.testing.assert_allclose(log_probs, np.log([0.25, 0.75, 0.75]), rtol=1e-6)
    np.testing.assert_allclose(predicted, [1.0, 2.0, 2.0], rtol=1e-6)

    advantages = np.array([0.5, -0.5, 0.5])
    if normalize:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    weights = np.minimum(np.exp(advantages / 0.5), 2.0)  # exp(1) clamps to 2
    awr = np.mean(-np.log([0.25, 0.75, 0.75]) * weights)
    head = np.mean((np.array([1.0, 2.0, 2.0]) - np.array([0.5, -0.5, 0.5])) ** 2)  # 8.75 / 3
    np.testing.assert_allclose(outer_policy_loss(policy, batch, values, **settings), awr, rtol=1e-6)
    np.testing.assert_allclose(
        inner_policy_loss(policy, batch, values, advantage_coef=0.1, **settings),
        awr + 0.1 * head,
        rtol=1e-6,
    )
