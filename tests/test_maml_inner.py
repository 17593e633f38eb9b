"""MAML's inner step on a problem small enough to differentiate by hand.

A categorical policy with no hidden layer on the bandit's constant (zero) observation has logits
equal to its output bias z, so with p = softmax(z) and g_a = onehot(a) - p:

    REINFORCE  L(z) = -sum_t v_t A_t log p[a_t] / sum_t v_t
               dL/dz   = -sum_t v_t A_t g_{a_t} / sum_t v_t
               d2L/dz2 =  (sum_t v_t A_t / sum_t v_t) (diag(p) - p p^T)
    LVC        L(z) = -mean_v(A exp(log p[a] - log p_sample[a]))
               same gradient at z = z_sample; Hessian adds -mean_v(A g_a g_a^T).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl_jax.algos import make_maml, maml, sweep_member
from metarl_jax.algos.task_axis import TaskAxis
from metarl_jax.envs import make_env
from metarl_jax.rl import Batch, lvc_loss, make_policy, reinforce_loss

from .conftest import max_abs_difference, tiny_config

NUM_ARMS = 3
Z = np.array([0.2, -0.5, 1.0], np.float32)
# Six pulls (time-major [T=6, N=1]); the last is past the episode's end (invalid).
ACTIONS = np.array([0, 2, 2, 1, 0, 1])
ADVANTAGES = np.array([1.0, -0.5, 2.0, 0.3, -1.5, 100.0], np.float32)
VALID = np.array([1, 1, 1, 1, 1, 0], np.float32)


def _policy_and_params(z=Z):
    policy = make_policy(make_env("bandit", num_arms=NUM_ARMS), hidden_sizes=())
    params = policy.init(jax.random.PRNGKey(0))
    params = jax.tree.map(lambda x: x, params)  # a mutable copy of the nested dicts
    layer = params["params"]["Dense_0"]
    params["params"]["Dense_0"] = {"kernel": layer["kernel"], "bias": jnp.asarray(z)}
    return policy, params


def _batch(policy, params):
    obs = jnp.zeros((6, 1, 1))
    actions = jnp.asarray(ACTIONS)[:, None]
    sample_log_probs = policy.dist.log_prob(policy.apply(params, obs), actions)
    return Batch(
        obs=obs,
        actions=actions,
        advantages=jnp.asarray(ADVANTAGES)[:, None],
        valid=jnp.asarray(VALID)[:, None],
        log_probs=sample_log_probs,
    )


def _hand_gradient(z=Z):
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    g = np.eye(NUM_ARMS)[ACTIONS] - p  # [T, arms]
    weights = VALID * ADVANTAGES
    return -(weights[:, None] * g).sum(0) / VALID.sum(), p, g


def _bias_function(loss, policy, params, batch):
    def of_bias(z):
        p = jax.tree.map(lambda x: x, params)
        p["params"]["Dense_0"] = {"kernel": params["params"]["Dense_0"]["kernel"], "bias": z}
        return loss(policy, p, batch)

    return of_bias


def test_policy_logits_are_the_bias_on_zero_observations():
    policy, params = _policy_and_params()
    np.testing.assert_allclose(policy.apply(params, jnp.zeros((1,))), Z)


def test_reinforce_gradient_matches_hand_derivation():
    policy, params = _policy_and_params()
    batch = _batch(policy, params)
    grads = jax.grad(lambda p: reinforce_loss(policy, p, batch))(params)
    expected, _, _ = _hand_gradient()
    np.testing.assert_allclose(grads["params"]["Dense_0"]["bias"], expected, rtol=1e-5, atol=1e-6)
    # The observation is zero: the kernel gets no gradient.
    np.testing.assert_allclose(grads["params"]["Dense_0"]["kernel"], 0.0, atol=1e-7)
    # The invalid step's huge advantage must not leak in (it would dominate otherwise).
    assert np.max(np.abs(expected)) < 2.0


def test_reinforce_loss_value_hand_computed():
    policy, params = _policy_and_params()
    log_p = Z - np.log(np.exp(Z).sum())
    expected = -np.sum(VALID * ADVANTAGES * log_p[ACTIONS]) / VALID.sum()
    loss = reinforce_loss(policy, params, _batch(policy, params))
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_inner_step_moves_logits_as_hand_derived():
    # theta' = theta - alpha * grad: the adapted logits are z - alpha * dL/dz.
    policy, params = _policy_and_params()
    batch = _batch(policy, params)
    alpha = 0.5
    grads = jax.grad(lambda p: reinforce_loss(policy, p, batch))(params)
    adapted = jax.tree.map(lambda p, g: p - alpha * g, params, grads)
    expected, _, _ = _hand_gradient()
    np.testing.assert_allclose(
        policy.apply(adapted, jnp.zeros((1,))), Z - alpha * expected, rtol=1e-5, atol=1e-6
    )
    # A policy-gradient step with these advantages lowers the loss.
    assert float(reinforce_loss(policy, adapted, batch)) < float(
        reinforce_loss(policy, params, batch)
    )


def test_lvc_gradient_equals_reinforce_gradient_at_sampling_parameters():
    policy, params = _policy_and_params()
    batch = _batch(policy, params)
    g_reinforce = jax.grad(lambda p: reinforce_loss(policy, p, batch))(params)
    g_lvc = jax.grad(lambda p: lvc_loss(policy, p, batch))(params)
    np.testing.assert_allclose(
        g_lvc["params"]["Dense_0"]["bias"],
        g_reinforce["params"]["Dense_0"]["bias"],
        rtol=1e-5,
        atol=1e-6,
    )
    # Away from the sampling parameters they differ (the importance ratio is no longer 1).
    _, moved = _policy_and_params(Z + np.array([0.5, 0.0, -0.5], np.float32))
    g_reinforce_moved = jax.grad(lambda p: reinforce_loss(policy, p, batch))(moved)
    g_lvc_moved = jax.grad(lambda p: lvc_loss(policy, p, batch))(moved)
    assert max_abs_difference(g_lvc_moved, g_reinforce_moved) > 1e-2


def test_reinforce_and_lvc_hessians_match_hand_derivation():
    policy, params = _policy_and_params()
    batch = _batch(policy, params)
    _, p, g = _hand_gradient()
    mean_advantage = np.sum(VALID * ADVANTAGES) / VALID.sum()
    h_reinforce_expected = mean_advantage * (np.diag(p) - np.outer(p, p))
    outer = np.einsum("t,ti,tj->ij", VALID * ADVANTAGES, g, g) / VALID.sum()
    h_lvc_expected = h_reinforce_expected - outer

    z = jnp.asarray(Z)
    h_reinforce = jax.hessian(_bias_function(reinforce_loss, policy, params, batch))(z)
    h_lvc = jax.hessian(_bias_function(lvc_loss, policy, params, batch))(z)
    np.testing.assert_allclose(h_reinforce, h_reinforce_expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(h_lvc, h_lvc_expected, rtol=1e-4, atol=1e-6)
    assert np.max(np.abs(np.asarray(h_lvc) - np.asarray(h_reinforce))) > 0.05


def test_second_order_meta_gradient_through_the_inner_step():
    # d/dz L_post(z - alpha dL_in/dz) = (I - alpha H_in) dL_post/dz'  (H_in symmetric).
    policy, params = _policy_and_params()
    inner = _batch(policy, params)
    post = inner._replace(advantages=inner.advantages[::-1] * VALID[:, None])
    alpha = 0.3
    inner_loss = _bias_function(reinforce_loss, policy, params, inner)
    post_loss = _bias_function(reinforce_loss, policy, params, post)

    def meta_objective(z, first_order):
        g = jax.grad(inner_loss)(z)
        g = jax.lax.stop_gradient(g) if first_order else g
        return post_loss(z - alpha * g)

    z = jnp.asarray(Z)
    adapted = z - alpha * jax.grad(inner_loss)(z)
    post_grad = np.asarray(jax.grad(post_loss)(adapted))
    h_inner = np.asarray(jax.hessian(inner_loss)(z))
    second = jax.grad(meta_objective)(z, False)
    first = jax.grad(meta_objective)(z, True)
    np.testing.assert_allclose(
        second, (np.eye(NUM_ARMS) - alpha * h_inner) @ post_grad, rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(first, post_grad, rtol=1e-5, atol=1e-7)
    assert np.max(np.abs(np.asarray(second) - np.asarray(first))) > 1e-3


def test_first_order_changes_the_outer_step_but_not_the_data():
    """Same seed, same data: first- and second-order MAML differ only in the outer gradient."""
    env = make_env("bandit", num_arms=NUM_ARMS, horizon=4)
    member = sweep_member(seed=3, meta_batch_size=2)
    results = {}
    for first_order in (False, True):
        config = tiny_config(horizon=4, first_order=first_order, inner_lr=0.5)
        algorithm = make_maml(config, env)
        state = algorithm.init(member)
        new_state, metrics = jax.jit(algorithm.update)(state, member)
        results[first_order] = (state.params, new_state.params, jax.device_get(metrics))
    (init_2nd, params_2nd, m_2nd), (init_1st, params_1st, m_1st) = results[False], results[True]
    assert max_abs_difference(init_2nd, init_1st) == 0.0
    # The adapted parameters' values are the same, so every rollout is the same.
    for name in ("train/return_step0", "train/return_step1"):
        assert m_2nd[name] == pytest.approx(m_1st[name], rel=1e-5, abs=1e-6), name
    # Both moved away from the initialization, but not to the same place.
    assert max_abs_difference(params_2nd, init_2nd) > 1e-4
    assert max_abs_difference(params_1st, init_1st) > 1e-4
    assert max_abs_difference(params_2nd, params_1st) > 1e-6


def test_inner_step_diagnostics_match_a_direct_computation():
    """optim/inner_grad_norm, inner_step_norm (two inner steps), log_std and pre_kl against the
    inner loss differentiated directly; and update() logs them."""
    config = tiny_config(inner_lr=0.3, inner_steps=2)
    env = make_env("navigation", horizon=config.horizon)
    policy = make_policy(env, config.hidden_sizes, config.activation)
    params = policy.init(jax.random.PRNGKey(0))
    task = env.task_space.sample(jax.random.PRNGKey(1))
    inner, _, _ = maml.sample_task(config, env, policy, params, task, jax.random.PRNGKey(2))
    moved = jax.tree.map(lambda p: p + 0.01, params)
    one_task = jax.tree.map(lambda x: x[None], inner)
    found = maml.inner_diagnostics(
        config, env, policy, params, moved, one_task, jnp.ones(1), TaskAxis(1)
    )

    def step(p, batch):
        grads = jax.grad(lambda q: lvc_loss(policy, q, batch))(p)
        return jax.tree.map(lambda a, g: a - 0.3 * g, p, grads), grads

    batches = [jax.tree.map(lambda x, k=k: x[k], inner) for k in range(2)]
    theta1, first_grad = step(params, batches[0])
    theta2, _ = step(theta1, batches[1])
    norm = lambda tree: float(np.sqrt(sum(np.sum(np.square(x)) for x in jax.tree.leaves(tree))))
    assert float(found["inner_grad_norm"]) == pytest.approx(norm(first_grad), rel=1e-4)
    assert float(found["inner_step_norm"]) == pytest.approx(
        norm(jax.tree.map(jnp.subtract, theta2, params)), rel=1e-4
    )
    assert float(found["log_std"]) == 0.0  # the initial log-std
    # every output shifted by 0.01 (both layers' biases and the log-std): KL > 0 but small
    assert 0.0 < float(found["pre_kl"]) < 0.1

    algorithm = make_maml(tiny_config(), env)
    member = sweep_member(seed=0, meta_batch_size=2)
    _, metrics = jax.jit(algorithm.update)(algorithm.init(member), member)
    for name in ("log_std", "inner_grad_norm", "inner_step_norm", "pre_kl"):
        assert np.isfinite(metrics[f"optim/{name}"]), name


@pytest.mark.parametrize("outer_optimizer", ["trpo", "ppo"])
def test_every_step_objective_with_one_inner_step_is_maml(outer_optimizer):
    env = make_env("navigation", horizon=8)
    member = sweep_member(seed=1, meta_batch_size=2)
    updated = {}
    for objective in ("final", "every_step"):
        config = tiny_config(horizon=8, outer_optimizer=outer_optimizer, outer_objective=objective)
        algorithm = make_maml(config, env)
        new_state, metrics = jax.jit(algorithm.update)(algorithm.init(member), member)
        updated[objective] = (new_state.params, jax.device_get(metrics))
    (final_params, final_metrics), (every_params, every_metrics) = updated.values()
    assert max_abs_difference(final_params, every_params) < 1e-6
    for name, value in final_metrics.items():
        assert every_metrics[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name


def test_every_step_objective_pools_each_adapted_policy_on_its_own_data():
    """With two inner steps the outer loss is -sum_k sum_valid r_k A_k / sum_k sum_valid over
    (theta^1, D^1) and (theta^2, D^2), differentiated through both inner steps."""
    alpha = 0.3
    config = tiny_config(inner_lr=alpha, inner_steps=2, outer_objective="every_step")
    env = make_env("navigation", horizon=config.horizon)
    policy = make_policy(env, config.hidden_sizes, config.activation)
    params = policy.init(jax.random.PRNGKey(0))
    task = env.task_space.sample(jax.random.PRNGKey(1))
    inner, post, _ = maml.sample_task(config, env, policy, params, task, jax.random.PRNGKey(2))
    assert post.valid.shape[0] == 2  # D^1 and D^2
    np.testing.assert_array_equal(post.obs[0], inner.obs[1])  # D^1 also feeds the second step
    problem = maml.trpo_problem(
        config, policy, params, jax.tree.map(lambda x: x[None], inner),
        jax.tree.map(lambda x: x[None], post), jnp.ones(1), TaskAxis(1),
    )  # fmt: skip

    def pooled_loss(p):
        batches = [jax.tree.map(lambda x, k=k: x[k], inner) for k in range(2)]
        terms, count = 0.0, 0.0
        for k in range(2):
            grads = jax.grad(lambda q, b=batches[k]: lvc_loss(policy, q, b))(p)
            p = jax.tree.map(lambda a, g: a - alpha * g, p, grads)
            data = jax.tree.map(lambda x, k=k: x[k], post)
            dists = policy.apply(p, data.obs)
            ratio = jnp.exp(policy.dist.log_prob(dists, data.actions) - data.log_probs)
            terms += jnp.sum(ratio * data.advantages * data.valid)
            count += jnp.sum(data.valid)
        return -terms / count

    loss, gradient = jax.value_and_grad(pooled_loss)(params)
    flat_gradient = jax.flatten_util.ravel_pytree(gradient)[0]
    assert float(problem.loss_before) == pytest.approx(float(loss), abs=1e-6)
    np.testing.assert_allclose(problem.gradient, flat_gradient, rtol=1e-4, atol=1e-6)
    assert float(jnp.linalg.norm(flat_gradient)) > 1e-3
