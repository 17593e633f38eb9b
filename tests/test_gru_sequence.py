"""The fused recurrent unroll RL² trains with equals stepping the flax GRU modules, and its
custom VJP equals autodiff, on random batches with masked steps, for one and two GRU layers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl_jax.envs import make_env
from metarl_jax.rl import make_recurrent_agent, unroll
from metarl_jax.rl.gru_sequence import _scan_layer, gru_layer

from .conftest import assert_trees_close

T, N = 10, 6


def _random_batch(agent, seed):
    inputs_key, valid_key, weight_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    inputs = jax.random.normal(inputs_key, (T, N, agent.input_size))
    valid = (jax.random.uniform(valid_key, (T, N)) > 0.25).astype(jnp.float32)
    weights = valid * jax.random.normal(weight_key, (T, N))
    return inputs, valid, weights


def _loss(outputs, weights):
    """A loss reading every output: the distribution's parameters and the values."""
    dist_params, values = outputs
    first = dist_params[0] if isinstance(dist_params, tuple) else dist_params
    return jnp.sum(weights[..., None] * jnp.tanh(first)) + jnp.sum(weights * values**2)


def test_fused_unroll_equals_the_flax_modules_loss_and_gradients():
    """Two GRU layers, Gaussian policy (the categorical one: the PPO-update test below)."""
    env = make_env("navigation")
    agent = make_recurrent_agent(env, (12, 8))
    params = agent.init(jax.random.PRNGKey(0))
    inputs, valid, weights = _random_batch(agent, 1)

    def plain(p):
        return _loss(unroll(agent, p, inputs, valid > 0), weights)

    def fused(p):
        return _loss(agent.fused_unroll(p, inputs, valid > 0, 3), weights)

    plain_loss, plain_grads = jax.jit(jax.value_and_grad(plain))(params)
    fused_loss, fused_grads = jax.jit(jax.value_and_grad(fused))(params)
    np.testing.assert_allclose(fused_loss, plain_loss, rtol=1e-5)
    assert jax.tree.structure(fused_grads) == jax.tree.structure(params)
    assert_trees_close(fused_grads, plain_grads, rtol=1e-4, atol=1e-6)
    # the outputs themselves, on the valid steps
    (plain_dist, plain_values), (fused_dist, fused_values) = (
        unroll(agent, params, inputs, valid > 0),
        agent.fused_unroll(params, inputs, valid > 0),
    )
    keep = np.asarray(valid) > 0
    np.testing.assert_allclose(
        np.asarray(fused_values)[keep], np.asarray(plain_values)[keep], 1e-5, 1e-6
    )
    first = lambda d: np.asarray(d[0] if isinstance(d, tuple) else d)
    np.testing.assert_allclose(
        first(fused_dist)[keep], first(plain_dist)[keep], rtol=1e-5, atol=1e-6
    )


def test_gru_layer_custom_vjp_equals_autodiff_of_the_scan():
    """The backward scan carries only dh; weight gradients are matmuls afterwards."""
    keys = jax.random.split(jax.random.PRNGKey(2), 5)
    width = 5
    projected = jax.random.normal(keys[0], (T, 2, N, 3 * width))
    hidden_kernel = 0.5 * jax.random.normal(keys[1], (2, width, 3 * width))
    hidden_bias = jax.random.normal(keys[2], (2, width))
    valid = (jax.random.uniform(keys[3], (T, N)) > 0.3).astype(jnp.float32)
    cotangent = jax.random.normal(keys[3], (T, 2, N, width))

    start = jax.random.normal(keys[4], (2, N, width))

    def custom(*args):
        return jnp.sum(cotangent * gru_layer(*args, valid, start))

    def autodiff(*args):
        return jnp.sum(cotangent * _scan_layer(*args, valid, start, 1)[0])

    args = (projected, hidden_kernel, hidden_bias)
    np.testing.assert_allclose(custom(*args), autodiff(*args), rtol=1e-6)
    custom_grads = jax.jit(jax.grad(custom, argnums=(0, 1, 2)))(*args)
    autodiff_grads = jax.jit(jax.grad(autodiff, argnums=(0, 1, 2)))(*args)
    assert_trees_close(custom_grads, autodiff_grads, rtol=1e-5, atol=1e-6)


def test_rl2_ppo_update_is_the_same_with_the_fused_unroll():
    """--recurrent_unroll=fused changes how the update is computed, not what it computes."""
    import dataclasses
    import functools

    from metarl_jax.algos import Rl2Config
    from metarl_jax.algos.rl2 import collect_tasks, ppo_batch, ppo_update, rl2_agent, rl2_optimizer
    from metarl_jax.algos.task_axis import TaskAxis

    env = make_env("bandit", horizon=6)
    config = Rl2Config(hidden_sizes=(8,), horizon=6, max_meta_batch_size=3, ppo_epochs=2)
    axis = TaskAxis(3)
    results = []
    for recurrent_unroll in ("cell_steps", "fused"):
        unroll_config = dataclasses.replace(config, recurrent_unroll=recurrent_unroll)
        agent, optimizer = rl2_agent(unroll_config, env), rl2_optimizer(unroll_config)
        params = agent.init(jax.random.PRNGKey(0))
        tasks = jax.vmap(env.task_space.sample)(jax.random.split(jax.random.PRNGKey(1), 3))
        trajectories = collect_tasks(
            unroll_config, env, agent, params, tasks, jax.random.split(jax.random.PRNGKey(2), 3)
        )
        active = jnp.array([1.0, 1.0, 0.0])
        batch = ppo_batch(unroll_config, trajectories, active, axis)
        update = jax.jit(functools.partial(ppo_update, unroll_config, agent, optimizer, axis=axis))
        results.append(update(params, optimizer.init(params), batch, active, jax.random.PRNGKey(3)))
    (cell_params, _, cell_metrics), (fused_params, _, fused_metrics) = results
    assert_trees_close(fused_params, cell_params, rtol=1e-5, atol=1e-6)
    assert_trees_close(fused_metrics, cell_metrics, rtol=1e-4, atol=1e-6)


def test_windows_round_trip():
    from metarl_jax.rl import unwindowed, windowed

    x = jnp.arange(6 * 4 * 2).reshape(6, 4, 2)
    w = windowed(x, 3)
    assert w.shape == (3, 8, 2)
    np.testing.assert_array_equal(w[:, 4:], x[3:])  # the second window's rows
    np.testing.assert_array_equal(unwindowed(w, 6), x)


@pytest.mark.parametrize("recurrent_unroll", ["cell_steps", "fused"])
def test_truncated_bptt_reproduces_the_outputs_and_cuts_the_gradient(recurrent_unroll):
    """Windows unrolled from the states stored at collection give the whole trial's outputs at
    the collecting parameters; the gradient no longer flows across windows, so it differs."""
    import dataclasses

    from metarl_jax.algos import Rl2Config
    from metarl_jax.algos.rl2 import collect_tasks, ppo_batch, rl2_agent, trial_outputs
    from metarl_jax.algos.task_axis import TaskAxis

    env = make_env("navigation", horizon=4)
    config = Rl2Config(
        hidden_sizes=(8,),
        horizon=4,
        episodes_per_trial=2,
        max_meta_batch_size=2,
        recurrent_unroll=recurrent_unroll,
    )
    whole, truncated = config, dataclasses.replace(config, bptt_window=2)
    agent = rl2_agent(config, env)
    params = agent.init(jax.random.PRNGKey(0))
    tasks = jax.vmap(env.task_space.sample)(jax.random.split(jax.random.PRNGKey(1), 2))
    keys = jax.random.split(jax.random.PRNGKey(2), 2)
    trajectories = collect_tasks(truncated, env, agent, params, tasks, keys)
    batch = ppo_batch(truncated, trajectories, jnp.ones((2,)), TaskAxis(2))
    keep = np.asarray(batch.weights) > 0

    def outputs_of(unroll_config):
        return jax.jit(lambda p: trial_outputs(unroll_config, agent, p, batch))

    outputs = [outputs_of(unroll_config)(params) for unroll_config in (whole, truncated)]
    (whole_dist, whole_values), (cut_dist, cut_values) = outputs
    np.testing.assert_allclose(np.asarray(cut_values)[keep], np.asarray(whole_values)[keep], 1e-5)
    np.testing.assert_allclose(
        np.asarray(cut_dist[0])[keep], np.asarray(whole_dist[0])[keep], rtol=1e-5, atol=1e-6
    )

    def value_sum(unroll_config):
        return jax.jit(
            jax.grad(lambda p: jnp.sum(trial_outputs(unroll_config, agent, p, batch)[1] * keep))
        )

    whole_grads, cut_grads = value_sum(whole)(params), value_sum(truncated)(params)
    kernel = ("value", "params", "GRUTorso_0", "GRUCell_0", "hz", "kernel")

    def pick_path(tree):
        for name in kernel:
            tree = tree[name]
        return np.asarray(tree)

    assert not np.allclose(pick_path(cut_grads), pick_path(whole_grads), rtol=1e-3)
