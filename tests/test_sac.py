"""SAC maths against hand-computed numbers and the tanh-Gaussian density by change of variables."""

import jax
import jax.numpy as jnp
import numpy as np

from metarl_jax.rl.sac import (
    actor_loss,
    critic_loss,
    default_target_entropy,
    polyak_update,
    soft_q_target,
    tanh_gaussian_log_prob,
    tanh_gaussian_mode,
    tanh_gaussian_sample,
    temperature_loss,
)


def test_soft_q_target_hand_computed():
    # 5 * 1 + 0.9 * (min(2, 3) - 1 * (-0.5)) = 5 + 0.9 * 2.5 = 7.25; done: 5 * 1 = 5.
    target = soft_q_target(
        jnp.array([1.0, 1.0]),
        jnp.array([0.0, 1.0]),
        jnp.array([2.0, 2.0]),
        jnp.array([3.0, 3.0]),
        jnp.array([-0.5, -0.5]),
        gamma=0.9,
        reward_scale=5.0,
        alpha=1.0,
    )
    np.testing.assert_allclose(target, [7.25, 5.0], rtol=1e-6)
    assert target.dtype == jnp.float32


def test_soft_q_target_has_no_gradient():
    def f(next_q):
        target = soft_q_target(
            1.0, 0.0, next_q, next_q + 1.0, -0.5, gamma=0.9, reward_scale=5.0, alpha=1.0
        )
        return jnp.sum(target)

    assert float(jax.grad(f)(jnp.float32(2.0))) == 0.0


def _normal_pdf(u, mean, std):
    return np.exp(-0.5 * ((u - mean) / std) ** 2) / (std * np.sqrt(2.0 * np.pi))


def test_log_prob_matches_change_of_variables_density():
    mean, std = 0.3, 0.7
    actions = np.linspace(-0.99999, 0.99999, 200_001)
    pre_tanh = np.arctanh(actions).astype(np.float32)
    log_prob = tanh_gaussian_log_prob(
        jnp.full((actions.size, 1), mean, jnp.float32),
        jnp.full((actions.size, 1), np.log(std), jnp.float32),
        jnp.asarray(pre_tanh)[:, None],
    )
    assert log_prob.shape == (actions.size,)
    density = np.exp(np.asarray(log_prob, np.float64))
    u = pre_tanh.astype(np.float64)
    expected = _normal_pdf(u, mean, std) / (1.0 - np.tanh(u) ** 2)
    np.testing.assert_allclose(density, expected, rtol=1e-4)
    np.testing.assert_allclose(np.trapezoid(density, np.tanh(u)), 1.0, atol=1e-3)


def test_log_prob_sums_over_last_axis():
    mean = jnp.array([0.1, -0.4])
    log_std = jnp.array([-0.5, 0.2])
    u = jnp.array([0.3, -1.2])
    per_dim = [
        tanh_gaussian_log_prob(mean[i : i + 1], log_std[i : i + 1], u[i : i + 1]) for i in (0, 1)
    ]
    np.testing.assert_allclose(tanh_gaussian_log_prob(mean, log_std, u), sum(per_dim), rtol=1e-6)


def test_log_prob_is_finite_for_extreme_pre_tanh():
    u = jnp.array([[20.0], [-20.0]])
    log_prob = tanh_gaussian_log_prob(jnp.zeros((2, 1)), jnp.zeros((2, 1)), u)
    assert np.all(np.isfinite(log_prob))
    # log(1 - tanh(u)^2) = 2 * (log 2 - |u|) - 2 * log(1 + exp(-2|u|)) ~ 2 * (log 2 - 20).
    expected = -0.5 * 400.0 - 0.5 * np.log(2.0 * np.pi) - 2.0 * (np.log(2.0) - 20.0)
    np.testing.assert_allclose(log_prob, [expected, expected], rtol=1e-6)
    grads = jax.grad(lambda x: jnp.sum(tanh_gaussian_log_prob(0.0, 0.0, x)))(u)
    assert np.all(np.isfinite(grads))


def test_sample_log_prob_matches_its_pre_tanh_value():
    key = jax.random.key(0)
    mean = jnp.array([[0.2, -1.0, 3.0], [0.0, 0.5, -2.0]])
    log_std = jnp.array([[-1.0, 0.0, 0.5], [0.3, -2.0, 0.0]])
    action, log_prob = tanh_gaussian_sample(key, mean, log_std)
    assert action.shape == (2, 3) and log_prob.shape == (2,)
    assert action.dtype == jnp.float32 and log_prob.dtype == jnp.float32
    pre_tanh = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
    np.testing.assert_allclose(action, jnp.tanh(pre_tanh), rtol=1e-6)
    np.testing.assert_allclose(
        log_prob, tanh_gaussian_log_prob(mean, log_std, pre_tanh), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(tanh_gaussian_mode(mean), jnp.tanh(mean))


def test_sample_is_reparameterized_and_vmappable():
    keys = jax.random.split(jax.random.key(1), 4)
    mean, log_std = jnp.zeros((4, 2)), jnp.full((4, 2), -1.0)
    actions, log_probs = jax.jit(jax.vmap(tanh_gaussian_sample))(keys, mean, log_std)
    assert actions.shape == (4, 2) and log_probs.shape == (4,)
    assert not np.allclose(actions[0], actions[1])
    grad = jax.grad(lambda m: jnp.sum(tanh_gaussian_sample(keys[0], m, log_std[0])[0]))(mean[0])
    assert np.all(np.asarray(grad) > 0.0)


def test_critic_loss_hand_computed():
    q1, q2, target = jnp.array([1.0, 2.0]), jnp.array([0.0, 4.0]), jnp.array([1.0, 1.0])
    # errors^2: q1 (0, 1), q2 (1, 9). Means 0.5 + 5 = 5.5.
    np.testing.assert_allclose(critic_loss(q1, q2, target), 5.5, rtol=1e-6)
    # weights (2, 1): (0 + 1) / 3 + (2 + 9) / 3 = 4.
    np.testing.assert_allclose(critic_loss(q1, q2, target, jnp.array([2.0, 1.0])), 4.0, rtol=1e-6)
    np.testing.assert_allclose(critic_loss(q1, q2, target, jnp.array([1.0, 0.0])), 1.0, rtol=1e-6)
    assert float(critic_loss(q1, q2, target, jnp.zeros(2))) == 0.0


def test_actor_loss_hand_computed():
    log_prob, q1, q2 = jnp.array([-1.0, 0.5]), jnp.array([2.0, 1.0]), jnp.array([3.0, -1.0])
    # terms: 0.2 * -1 - 2 = -2.2 and 0.2 * 0.5 - (-1) = 1.1.
    np.testing.assert_allclose(actor_loss(log_prob, q1, q2, 0.2), -0.55, rtol=1e-6)
    # weights (1, 3): (-2.2 + 3.3) / 4 = 0.275.
    weighted = actor_loss(log_prob, q1, q2, 0.2, jnp.array([1.0, 3.0]))
    np.testing.assert_allclose(weighted, 0.275, rtol=1e-5)
    grad = jax.grad(actor_loss)(log_prob, q1, q2, 0.2)
    np.testing.assert_allclose(grad, [0.1, 0.1], rtol=1e-6)


def test_temperature_loss_hand_computed():
    log_prob = jnp.array([-1.0, -3.0])
    # log_prob + target_entropy = (-3, -5), mean -4: loss = -0.5 * -4 = 2, d/dlog_alpha = 4.
    np.testing.assert_allclose(temperature_loss(0.5, log_prob, -2.0), 2.0, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(temperature_loss)(0.5, log_prob, -2.0), 4.0, rtol=1e-6)
    np.testing.assert_allclose(
        temperature_loss(0.5, log_prob, -2.0, jnp.array([1.0, 0.0])), 1.5, rtol=1e-6
    )
    grad_log_prob = jax.grad(temperature_loss, argnums=1)(0.5, log_prob, -2.0)
    np.testing.assert_array_equal(grad_log_prob, [0.0, 0.0])


def test_polyak_update():
    target = {"w": jnp.array([0.0, 1.0]), "b": jnp.float32(2.0)}
    online = {"w": jnp.array([1.0, 1.0]), "b": jnp.float32(0.0)}
    updated = polyak_update(target, online, 0.005)
    np.testing.assert_allclose(updated["w"], [0.005, 1.0], rtol=1e-6)
    np.testing.assert_allclose(updated["b"], 1.99, rtol=1e-6)
    assert updated["w"].dtype == jnp.float32
    copied = polyak_update(target, online, 1.0)
    jax.tree.map(np.testing.assert_array_equal, copied, online)


def test_default_target_entropy():
    assert default_target_entropy(3) == -3.0
    assert isinstance(default_target_entropy(3), float)
