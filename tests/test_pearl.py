"""PEARL: oyster's collection protocol into per-task buffers, the evaluation protocol, masked
sweep members against separate runs, and learning on 2-D navigation."""

import ast
import dataclasses
import functools
import importlib
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl_jax.algos import PearlConfig, make_pearl
from metarl_jax.algos.meta_training import draw_slots, evaluation_keys, per_task_keys, task_samplers
from metarl_jax.algos.pearl import (
    PearlState,
    acting_env,
    collect,
    collect_for_task,
    evaluate_task,
    init_params,
    pearl_losses_fn,
    pearl_networks,
    training_pool,
)
from metarl_jax.algos.pearl_losses import (
    critic_and_actor_losses,
    encoder_kl_loss,
    regularized_actor_loss,
    reward_decoder_loss,
)
from metarl_jax.baselines import scripted_returns
from metarl_jax.envs import make_env
from metarl_jax.io import checkpoints
from metarl_jax.nets import ContextEncoder, mean_of_factors
from metarl_jax.rl.rollout import Transitions
from metarl_jax.sweep import init_states, sweep_members, train
from metarl_jax.tasks import (
    AngleTask,
    GoalTask,
    Restriction,
    direction_angle_space,
    euclidean_coords,
)

from .conftest import (
    MEMBERS_DIFFER,
    REPO_ROOT,
    assert_trees_close,
    max_abs_difference,
    member_index,
    pick,
    run_main,
)

HORIZON = 6


def tiny_pearl(**overrides) -> PearlConfig:
    base = PearlConfig(
        latent_size=2,
        hidden_sizes=(16,),
        encoder_hidden_sizes=(16,),
        horizon=HORIZON,
        max_meta_batch_size=4,
        num_task_slots=4,
        num_tasks_sample=3,
        initial_steps=2 * HORIZON,
        prior_steps=2 * HORIZON,
        posterior_steps=3 * HORIZON,
        grad_steps=3,
        batch_size=8,
        context_batch_size=5,
        replay_capacity=40,  # wraps within two iterations
        num_eval_tasks=3,
        train_tasks=Restriction(num_tasks=4),
    )
    return dataclasses.replace(base, **overrides)


@functools.cache
def navigation():
    return make_env("navigation", horizon=HORIZON)


def random_loss_inputs(config, env, key):
    """A random RL batch [M, B, ...] and context [M, N, D] for `pearl_losses_fn`'s loss."""
    m, b = config.max_meta_batch_size, config.batch_size
    keys = iter(jax.random.split(key, 5))
    batch = Transitions(
        obs=jax.random.normal(next(keys), (m, b, env.obs_size)),
        actions=jax.random.uniform(next(keys), (m, b, env.action_size), minval=-1, maxval=1),
        rewards=jax.random.normal(next(keys), (m, b)),
        next_obs=jax.random.normal(next(keys), (m, b, env.obs_size)),
        dones=jnp.zeros((m, b)),
        valid=jnp.ones((m, b)),
    )
    context = jax.random.normal(next(keys), (m, config.context_batch_size, env.obs_size + 3))
    return batch, context


def run_pearl(config, seeds, meta_batch_sizes, num_train_tasks, iterations=2):
    members, rows = sweep_members(seeds, meta_batch_sizes, num_train_tasks)
    result = list(train(make_pearl(config, navigation()), members, iterations, iterations))[-1]
    return result, rows


@pytest.mark.slow
def test_masked_sweep_member_equals_separate_run():
    """Seeds x meta-batch sizes (2, 4) x training tasks (2, 4, all = 4) in one call; a member
    equals a run compiled for its meta-batch size and its pool alone (buffers wrap meanwhile)."""
    sweep, rows = run_pearl(tiny_pearl(), (0, 1), (2, 4), (2, 4, 0))
    for meta_batch_size, num_train_tasks in ((2, 2),):  # both masks at once; compiles cost
        pool = num_train_tasks or 4
        config = tiny_pearl(
            max_meta_batch_size=meta_batch_size,
            num_task_slots=pool,
            train_tasks=Restriction(num_tasks=pool),
        )
        alone, _ = run_pearl(config, (1,), (meta_batch_size,), (num_train_tasks,))
        i = member_index(
            rows, seed=1, meta_batch_size=meta_batch_size, num_train_tasks=num_train_tasks
        )
        for part in ("params", "target_critic"):
            assert_trees_close(
                pick(getattr(sweep.state, part), i), pick(getattr(alone.state, part), 0)
            )
        other = member_index(
            rows, seed=1, meta_batch_size=6 - meta_batch_size, num_train_tasks=num_train_tasks
        )  # the other meta-batch size: the equality above is not met trivially
        params = sweep.state.params
        assert max_abs_difference(pick(params, i), pick(params, other)) > MEMBERS_DIFFER
        for name, value in {**alone.train_metrics, **alone.eval_metrics}.items():
            logged = {**sweep.train_metrics, **sweep.eval_metrics}[name][i]
            np.testing.assert_allclose(logged, value[0], rtol=1e-4, atol=1e-5, err_msg=name)
        # initial data for every active task, then 3 tasks x (2 prior + 3 posterior episodes)
        expected_steps = pool * 2 * HORIZON + 2 * 3 * 5 * HORIZON
        assert sweep.env_steps[i] == alone.env_steps[0] == expected_steps


def one_update(config):
    """(initial state, state after one update) of seed 3, meta-batch 4, the pool's first 3 tasks."""
    algorithm = make_pearl(config, navigation())
    members, _ = sweep_members((3,), (4,), (3,))
    member = jax.tree.map(lambda x: x[0], members)
    state = jax.jit(algorithm.init)(member)
    return state, jax.jit(algorithm.update)(state, member)[0]


@pytest.mark.slow
def test_one_iteration_fills_the_buffers_as_oyster_does():
    """After one update: a drawn task's encoder buffer holds exactly its prior-phase transitions
    (cleared first), its RL buffer gained prior + posterior transitions, other tasks untouched."""
    config = tiny_pearl(replay_capacity=200, num_tasks_sample=3)
    env = acting_env(navigation())
    state, updated = one_update(config)

    _, slot_key, data_key, _ = jax.random.split(state.key, 4)
    drawn = np.asarray(draw_slots(slot_key, config.num_tasks_sample, 3))
    assert drawn.max() < 3  # only the member's first 3 of the pool's 4 tasks
    pool = training_pool(config, env)
    keys = per_task_keys(data_key, config.num_tasks_sample)
    for_task = jax.jit(
        functools.partial(collect_for_task, config, env, pearl_networks(config, env))
    )
    encoder, rl = updated.buffers.encoder, updated.buffers.rl
    before = state.buffers
    for slot in range(config.num_task_slots):
        occurrences = [i for i, s in enumerate(drawn) if s == slot]
        if not occurrences:
            for name in ("encoder", "rl"):
                jax.tree.map(
                    np.testing.assert_array_equal,
                    jax.tree.map(lambda x, s=slot: x[s], getattr(updated.buffers, name)),
                    jax.tree.map(lambda x, s=slot: x[s], getattr(before, name)),
                )
            continue
        task = jax.tree.map(lambda x, s=slot: x[s], pool)
        phases = [for_task(state.params, task, keys[i]) for i in occurrences]
        prior = phases[-1][0]  # the encoder buffer was cleared at every draw
        prior_rows = int(prior.valid.sum())
        assert int(encoder.size[slot]) == prior_rows
        stored = np.asarray(encoder.data["obs"][slot, :prior_rows])
        expected = np.asarray(jnp.swapaxes(prior.obs, 0, 1).reshape(-1, env.obs_size))
        np.testing.assert_allclose(stored, expected[np.asarray(prior.valid.T.reshape(-1)) > 0])
        gained = sum(int(p.valid.sum()) + int(q.valid.sum()) for p, q in phases)
        assert int(rl.size[slot]) == int(before.rl.size[slot]) + gained


@pytest.mark.slow
def test_posterior_in_context_puts_both_phases_in_the_encoder_buffer():
    """With `posterior_in_context` (oyster's num_steps_posterior) a drawn task's cleared encoder
    buffer holds its prior phase, then its posterior phase, in that order."""
    config = tiny_pearl(replay_capacity=200, num_tasks_sample=1, posterior_in_context=True)
    assert config.encoder_capacity == 5 * HORIZON  # 2 prior + 3 posterior episodes
    env = acting_env(navigation())
    state, updated = one_update(config)

    _, slot_key, data_key, _ = jax.random.split(state.key, 4)
    slot = int(draw_slots(slot_key, 1, 3)[0])
    task = jax.tree.map(lambda x: x[slot], training_pool(config, env))
    for_task = functools.partial(collect_for_task, config, env, pearl_networks(config, env))
    prior, posterior = jax.jit(for_task)(state.params, task, per_task_keys(data_key, 1)[0])

    def rows(phase):
        obs = np.asarray(jnp.swapaxes(phase.obs, 0, 1).reshape(-1, env.obs_size))
        return obs[np.asarray(phase.valid.T.reshape(-1)) > 0]

    expected = np.concatenate([rows(prior), rows(posterior)])
    encoder = updated.buffers.encoder
    assert int(encoder.size[slot]) == len(expected) == 5 * HORIZON
    np.testing.assert_allclose(np.asarray(encoder.data["obs"][slot, : len(expected)]), expected)


def test_evaluation_explores_with_the_prior_then_conditions_on_what_it_saw():
    """Deterministic z: episode 0 acts with z = 0 (the prior's mean), episode 1 with the mean of
    the encoder's factors over episode 0's transitions."""
    config = tiny_pearl(deterministic_z=True, eval_episodes=2)
    env = acting_env(navigation())
    networks = pearl_networks(config, env)
    params = init_params(config, env, networks, jax.random.PRNGKey(0))
    task = env.task_space.sample(jax.random.PRNGKey(1))
    key = jax.random.PRNGKey(2)
    evaluate = functools.partial(evaluate_task, config, env, networks)
    returns = np.asarray(jax.jit(evaluate)(params, task, key))

    keys = jax.random.split(key, 2)
    run_keys = [jax.random.split(k)[1] for k in keys]
    first = collect(config, env, networks, params, task, run_keys[0], jnp.zeros((1, 2)), True)
    np.testing.assert_allclose(returns[0], float(first.rewards.sum()), rtol=1e-5)
    context = jnp.concatenate([first.obs, first.actions, first.rewards[..., None]], -1)[:, 0]
    means, _ = ContextEncoder(2, (16,)).apply(params["encoder"], context)
    z = mean_of_factors(means, first.valid[:, 0])
    second = collect(config, env, networks, params, task, run_keys[1], z[None], True)
    np.testing.assert_allclose(returns[1], float(second.rewards.sum()), rtol=1e-5)
    assert np.abs(np.asarray(z)).max() > 1e-3  # episode 1 did not act with the prior's z


def navigation_pearl(**settings) -> PearlConfig:
    """The pearl_nav flag files' shared sizes: horizon 20, networks 2 x 64, latent 3, 4 tasks x
    (40 + 40 steps) and 200 gradient steps per iteration."""
    return PearlConfig(
        latent_size=3,
        hidden_sizes=(64, 64),
        encoder_hidden_sizes=(64, 64),
        horizon=20,
        num_tasks_sample=4,
        initial_steps=100,
        prior_steps=40,
        posterior_steps=40,
        grad_steps=200,
        batch_size=64,
        replay_capacity=20_000,
        **settings,
    )


@pytest.mark.slow
def test_pearl_learns_to_find_the_goal_on_navigation():
    """Two goals (PEARL's Cheetah-Dir protocol on 2-D navigation, evaluated on the training
    goals): after a short CPU run the last evaluation episode, acting on the posterior, is far
    better than the untrained policy, than the goal-agnostic policy that stays at the start, and
    than the first episode, which explores with z from the prior."""
    env = make_env("navigation", horizon=20)
    two_goals = Restriction(num_tasks=2)
    config = navigation_pearl(
        num_task_slots=2,
        context_batch_size=32,
        learn_alpha=True,
        num_eval_tasks=16,
        train_tasks=two_goals,
        eval_tasks=two_goals,
    )
    algorithm = make_pearl(config, env)
    members, _ = sweep_members((0,), (4,), (2,))
    untrained = jax.jit(jax.vmap(algorithm.evaluate))(
        jax.jit(jax.vmap(algorithm.init))(members), members
    )
    result = list(train(algorithm, members, 60, 60))[-1]
    trained = {name: float(value[0]) for name, value in result.eval_metrics.items()}
    goals = np.asarray(training_pool(config, env).goal)
    stay_at_start = -20 * np.linalg.norm(goals, axis=1).mean()  # about -11.5
    assert trained["eval/return"] > float(untrained["eval/return"][0]) + 4, trained
    assert trained["eval/return"] > stay_at_start + 4, (trained, stay_at_start)
    assert trained["eval/return"] > trained["eval/return_episode0"] + 2, trained
    posterior_mean = (trained["eval/return_episode1"] + trained["eval/return_episode2"]) / 2
    assert trained["eval/inference_gain"] == pytest.approx(
        posterior_mean - trained["eval/return_episode0"], rel=1e-5
    )


@pytest.mark.slow
def test_pearl_infers_fresh_goals_after_training_on_40():
    """pearl_nav's setting, shortened (100 iterations, about 1.5 minutes): trained on a pool of 40
    goals, evaluated on 64 fresh goals of the whole square. The posterior episodes must sit most
    of the way from the goal-agnostic policy that stays at the start to the fastest approach to
    the goal on those very goals, far above the exploring first episode (a random walk): the gain
    is inference of goals never seen (the diagonal posterior family stays about halfway)."""
    env = make_env("navigation", horizon=20)
    config = navigation_pearl(
        max_meta_batch_size=16,
        num_task_slots=40,
        context_batch_size=64,
        reward_scale=100.0,
        alpha=1.0,
        exploration="uniform_actions",
        reward_decoder_weight=10.0,
        critic_trains_encoder=False,
        posterior_family="rank_one",
        num_eval_tasks=64,
        train_tasks=Restriction(num_tasks=40),
    )
    members, _ = sweep_members((0,), (16,), (40,))
    result = list(train(make_pearl(config, env), members, 100, 100))[-1]
    trained = {name: float(value[0]) for name, value in result.eval_metrics.items()}
    samplers = task_samplers(env.task_space, config.train_tasks, config.eval_tasks, 0)
    fresh = samplers.eval(evaluation_keys()[0], config.num_eval_tasks)
    pool = np.asarray(training_pool(config, env).goal)
    assert np.min(np.linalg.norm(np.asarray(fresh.goal)[:, None] - pool[None], axis=-1)) > 0
    levels = scripted_returns(env, fresh, jax.random.PRNGKey(0), 20)
    stay, fastest = float(levels["stay_at_start"]), float(levels["fastest_to_goal"])
    assert stay < -6.5 and fastest > -1.0, levels  # the frame: about -7.5 and -0.5
    for episode in (1, 2):
        position = (trained[f"eval/return_episode{episode}"] - stay) / (fastest - stay)
        assert position > 0.6, (trained, levels)
    assert trained["eval/inference_gain"] > 5.0, trained


def test_only_the_critic_and_the_kl_train_the_encoder():
    """oyster's gradient paths: the actor's loss gives the encoder exactly zero gradient (z is
    detached for the policy and the target), the critic's loss a non-zero one — and zero with
    --nocritic_trains_encoder."""
    config = tiny_pearl()
    env = acting_env(navigation())
    networks = pearl_networks(config, env)
    losses = pearl_losses_fn(config, env, networks)
    params = init_params(config, env, networks, jax.random.PRNGKey(0))
    m = config.max_meta_batch_size
    keys = iter(jax.random.split(jax.random.PRNGKey(1), 8))
    batch, context = random_loss_inputs(config, env, next(keys))
    weights = jnp.ones((m,))

    def encoder_gradient(part):
        def loss(encoder_params):
            p = {**params, "encoder": encoder_params}
            return losses(p, params["critic"], batch, context, weights, next(keys))[1][part]

        return jax.grad(loss)(params["encoder"])

    actor = jax.tree.leaves(encoder_gradient("actor_loss"))
    critic = jax.tree.leaves(encoder_gradient("critic_loss"))
    assert all(np.all(np.asarray(g) == 0.0) for g in actor)
    assert max(float(jnp.max(jnp.abs(g))) for g in critic) > 1e-6

    detached = dataclasses.replace(config, critic_trains_encoder=False, reward_decoder_weight=1.0)
    detached_networks = pearl_networks(detached, env)
    with_decoder = init_params(detached, env, detached_networks, jax.random.PRNGKey(0))
    detached_losses = pearl_losses_fn(detached, env, detached_networks)
    gradient = jax.grad(
        lambda e: detached_losses(
            {**with_decoder, "encoder": e}, params["critic"], batch, context, weights, next(keys)
        )[1]["critic_loss"]
    )(params["encoder"])
    assert all(np.all(np.asarray(g) == 0.0) for g in jax.tree.leaves(gradient))


def test_task_probes_tell_a_code_of_the_goal_from_noise():
    """The diagnosis probes (tools.diagnose_pearl): held-out R² near 1 for a latent that is
    an invertible function of the goal, near or below 0 for a latent that ignores it."""
    from tools.diagnose_pearl import knn_r2, probe_r2

    rng = np.random.default_rng(0)
    goals = rng.uniform(-0.5, 0.5, (400, 2))
    linear_code = goals @ np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 1.0]]) + 3.0
    curved_code = np.stack([np.tanh(3 * goals[:, 0]), goals[:, 1] ** 3], axis=1)
    noise = rng.normal(size=(400, 3))
    assert probe_r2(linear_code, goals) > 0.99
    assert knn_r2(linear_code, goals) > 0.9
    assert knn_r2(curved_code, goals) > 0.8
    assert probe_r2(noise, goals) < 0.1
    assert knn_r2(noise, goals) < 0.1


def test_diagnosis_refuses_bad_input_before_compiling(tmp_path):
    flagfile = f"--flagfile={REPO_ROOT}/experiments/flags/pearl_nav.flags"
    for args, flag in (
        ((flagfile, f"--out_dir={tmp_path}"), "--out_dir"),  # no checkpoint there
        ((flagfile, "--algo=maml_trpo", f"--out_dir={tmp_path}"), "--algo"),
    ):
        result = run_main(*args, module="tools.diagnose_pearl", timeout=120)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(f"error: {flag}"), result.stderr
    assert os.listdir(tmp_path) == []


def test_task_probes_regress_directions_as_unit_vectors():
    """euclidean_coords (the probes' and tools.encoder_families' targets): an angle as
    (cos, sin), a goal as itself."""
    angles = AngleTask(jnp.array([0.0, 0.5 * np.pi, 1.75 * np.pi]))
    np.testing.assert_allclose(
        euclidean_coords(direction_angle_space(), angles),
        [[1.0, 0.0], [0.0, 1.0], [np.sqrt(0.5), -np.sqrt(0.5)]],
        atol=1e-6,
    )
    goals = GoalTask(jnp.array([[0.1, -0.2], [0.3, 0.4]]))
    np.testing.assert_array_equal(euclidean_coords(navigation().task_space, goals), goals.goal)


def test_encoder_family_check_refuses_bad_input_before_compiling():
    for args, flag in (
        (("--families=diagonal,full",), "--families"),
        (("--train_tasks=8", "--batch_tasks=16"), "--batch_tasks"),
    ):
        result = run_main(*args, module="tools.encoder_families", timeout=120)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(f"error: {flag}"), result.stderr


def test_uniform_exploration_ignores_the_policy_where_it_explores():
    """--exploration=uniform_actions: the prior phase and evaluation's first episode act
    uniformly at random (the same transitions whatever the parameters), posterior episodes act
    on the posterior (they change with the parameters)."""
    config = tiny_pearl(exploration="uniform_actions", eval_episodes=2)
    env = acting_env(navigation())
    networks = pearl_networks(config, env)
    params = [init_params(config, env, networks, jax.random.PRNGKey(seed)) for seed in (0, 1)]
    task = env.task_space.sample(jax.random.PRNGKey(1))
    key = jax.random.PRNGKey(2)
    for_task = jax.jit(functools.partial(collect_for_task, config, env, networks))
    collected = [for_task(p, task, key) for p in params]
    (prior_a, posterior_a), (prior_b, posterior_b) = collected
    np.testing.assert_array_equal(prior_a.actions, prior_b.actions)
    assert float(jnp.abs(prior_a.actions).max()) > 0.5  # uniform in [-1, 1], not a policy at init
    assert not np.allclose(posterior_a.actions, posterior_b.actions)
    evaluate = jax.jit(functools.partial(evaluate_task, config, env, networks))
    returns = [np.asarray(evaluate(p, task, key)) for p in params]
    assert returns[0][0] == returns[1][0] and returns[0][1] != returns[1][1]


def test_reward_decoder_loss_trains_the_encoder_and_is_absent_by_default():
    """--reward_decoder_weight: a decoder predicts reward_scale * r from (s, a, z); its loss gives
    the encoder a gradient. With weight 0 (oyster) the parameters hold no decoder."""
    env = acting_env(navigation())
    default = tiny_pearl()
    default_networks = pearl_networks(default, env)
    assert "decoder" not in init_params(default, env, default_networks, jax.random.PRNGKey(0))
    config = tiny_pearl(reward_decoder_weight=1.0)
    networks = pearl_networks(config, env)
    losses = pearl_losses_fn(config, env, networks)
    params = init_params(config, env, networks, jax.random.PRNGKey(0))
    m = config.max_meta_batch_size
    keys = iter(jax.random.split(jax.random.PRNGKey(1), 8))
    batch, context = random_loss_inputs(config, env, next(keys))
    key = next(keys)

    def decoder_loss(encoder_params):
        p = {**params, "encoder": encoder_params}
        return losses(p, params["critic"], batch, context, jnp.ones((m,)), key)[1][
            "reward_decoder_loss"
        ]

    loss, gradient = jax.value_and_grad(decoder_loss)(params["encoder"])
    # At initialisation the decoder predicts about 0: the loss is about E[(scale * r)^2].
    expected = float(jnp.mean((config.reward_scale * batch.rewards) ** 2))
    np.testing.assert_allclose(float(loss), expected, rtol=0.2)
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(gradient)) > 1e-6


@pytest.mark.slow
def test_checkpoints_restore_and_resume_exactly(tmp_path):
    """A run resumed from its iteration-2 checkpoint equals the uninterrupted run at iteration 4,
    buffers and keys included; the checkpoint restores the same whether it holds the state as it
    is or in the dict layout states had before they were dataclasses (same names)."""
    algorithm = make_pearl(tiny_pearl(grad_steps=2), navigation())
    members, _ = sweep_members((0, 1), (4,), (3,))
    halfway, final = (result.state for result in train(algorithm, members, 4, 2))
    saved_before = {
        "params": halfway.params,
        "target_critic": halfway.target_critic,
        "opt_state": halfway.opt_state,
        "buffers": {"encoder": halfway.buffers.encoder, "rl": halfway.buffers.rl},
        "key": halfway.key,
        "iteration": halfway.iteration,
    }
    template = init_states(algorithm, members)
    for layout, saved in (("dataclass", halfway), ("dict", saved_before)):
        manager = checkpoints.checkpoint_manager(str(tmp_path / layout))
        checkpoints.save(manager, 2, saved)
        restored = checkpoints.restore(manager, 2, template)
        assert isinstance(restored, PearlState), layout
        jax.tree.map(np.testing.assert_array_equal, restored, halfway)
    resumed = list(train(algorithm, members, 4, 2, restored, 2))[-1].state
    jax.tree.map(np.testing.assert_array_equal, resumed, final)


# ----- the losses on hand-made inputs -------------------------------------------------------


def test_encoder_kl_loss_by_hand():
    """beta sum_i w_i KL(N(m_i, v_i) || N(0, I)), KL = 0.5 sum(v + m^2 - 1 - log v): task 0 is
    the prior (KL 0); task 1 has KL 0.5 ((0.5 + 1 - 1 - log 0.5) + (2 + 1 - 1 - log 2)) = 1.25."""
    means = jnp.array([[0.0, 0.0], [1.0, -1.0]])
    variances = jnp.array([[1.0, 1.0], [0.5, 2.0]])
    loss, kl = encoder_kl_loss(means, variances, jnp.array([1.0, 0.5]), 0.1)
    np.testing.assert_allclose(kl, [0.0, 1.25], atol=1e-6)
    np.testing.assert_allclose(loss, 0.1 * 0.5 * 1.25, rtol=1e-6)


def test_reward_decoder_loss_and_actor_penalties_by_hand():
    """Decoder D(s, a, z) = p (s + a + z) against 5 r, and oyster's penalties on the actor's
    mean and log-std, weighted over a meta-batch of one task of two transitions."""
    batch = Transitions(
        obs=jnp.array([[[1.0], [2.0]]]),
        actions=jnp.array([[[0.5], [-0.5]]]),
        rewards=jnp.array([[0.5, 1.0]]),
        next_obs=jnp.zeros((1, 2, 1)),
        dones=jnp.zeros((1, 2)),
        valid=jnp.ones((1, 2)),
    )
    z = jnp.array([[[0.5], [0.5]]])
    weights = jnp.array([[1.0, 0.0]])  # the second transition is masked out

    def decoder(p, obs, actions, latents):
        return p * (obs + actions + latents)[..., 0]

    # D = 2 * (1 + 0.5 + 0.5) = 4 against 5 * 0.5 = 2.5: (4 - 2.5)^2 = 2.25
    loss = reward_decoder_loss(decoder, 2.0, batch, z, weights, reward_scale=5.0)
    np.testing.assert_allclose(loss, 2.25, rtol=1e-6)
    mean = jnp.array([[[1.0, 3.0], [7.0, 7.0]]])
    log_std = jnp.array([[[-2.0, 0.0], [7.0, 7.0]]])
    # 1 + 0.1 * mean(1, 9) + 0.01 * mean(4, 0) = 1 + 0.5 + 0.02
    penalized = regularized_actor_loss(1.0, mean, log_std, weights, 0.1, 0.01)
    np.testing.assert_allclose(penalized, 1.52, rtol=1e-6)


def linear_actor(p, obs_z):
    """mean = p (s + z), log-std -20: the sampled action is tanh(mean) to within 1e-8."""
    mean = p * jnp.sum(obs_z, axis=-1, keepdims=True)
    return mean, jnp.full_like(mean, -20.0)


def linear_critics(p, obs_z, actions):
    """Q_k = p_k (s + z) + a."""
    inputs, action = jnp.sum(obs_z, axis=-1), actions[..., 0]
    return p["q1"] * inputs + action, p["q2"] * inputs + action


def test_critic_and_actor_losses_by_hand():
    """Twin-Q and actor losses with z appended to s, on linear networks, alpha = 0:
    y = 5 r + 0.9 (1 - d) min_k Q'_k(s' + z, tanh(mu(s' + z))), L_Q = sum_k mean((Q_k - y)^2),
    L_pi = -mean(min_k Q_k(s + z, tanh(mu(s + z)))); z trains the encoder through the critic
    only, and not at all when the critic does not train the encoder."""
    obs, next_obs = np.array([0.5, -1.0]), np.array([1.0, 0.0])
    actions, rewards, dones = np.array([0.2, -0.4]), np.array([1.0, -1.0]), np.array([0.0, 1.0])
    z = 0.25
    batch = Transitions(
        obs=jnp.asarray(obs[None, :, None]),
        actions=jnp.asarray(actions[None, :, None]),
        rewards=jnp.asarray(rewards[None]),
        next_obs=jnp.asarray(next_obs[None, :, None]),
        dones=jnp.asarray(dones[None]),
        valid=jnp.ones((1, 2)),
    )
    params = {"actor": 0.5, "critic": {"q1": 2.0, "q2": -1.0}}
    target_critic = {"q1": 1.0, "q2": 3.0}
    keys = jax.random.split(jax.random.PRNGKey(0), 2)

    def losses(z_value, critic_trains_encoder=True):
        return critic_and_actor_losses(
            linear_actor,
            linear_critics,
            params,
            target_critic,
            batch,
            jnp.full((1, 2, 1), z_value),
            keys[:1],
            keys[1:],
            jnp.ones((1, 2)),
            alpha=0.0,
            gamma=0.9,
            reward_scale=5.0,
            critic_trains_encoder=critic_trains_encoder,
        )

    critic_loss, actor_loss, (q1, _, _, _) = losses(z)
    next_action = np.tanh(0.5 * (next_obs + z))
    target = 5.0 * rewards + 0.9 * (1.0 - dones) * np.minimum(
        1.0 * (next_obs + z) + next_action, 3.0 * (next_obs + z) + next_action
    )
    q1_expected, q2_expected = 2.0 * (obs + z) + actions, -1.0 * (obs + z) + actions
    expected_critic = np.mean((q1_expected - target) ** 2) + np.mean((q2_expected - target) ** 2)
    np.testing.assert_allclose(q1[0], q1_expected, rtol=1e-6)
    np.testing.assert_allclose(critic_loss, expected_critic, rtol=1e-6)
    action = np.tanh(0.5 * (obs + z))
    expected_actor = -np.mean(np.minimum(2.0 * (obs + z) + action, -1.0 * (obs + z) + action))
    np.testing.assert_allclose(actor_loss, expected_actor, rtol=1e-6)

    critic_grad = jax.grad(lambda v: losses(v)[0])(z)
    actor_grad = jax.grad(lambda v: losses(v)[1])(z)
    detached_grad = jax.grad(lambda v: losses(v, critic_trains_encoder=False)[0])(z)
    # d/dz sum_k mean((Q_k - y)^2) with dQ_1/dz = 2, dQ_2/dz = -1 (y holds z fixed)
    expected_grad = np.mean(2 * (q1_expected - target) * 2.0) + np.mean(
        2 * (q2_expected - target) * -1.0
    )
    np.testing.assert_allclose(critic_grad, expected_grad, rtol=1e-5)
    assert float(actor_grad) == 0.0 and float(detached_grad) == 0.0


def test_the_losses_import_neither_their_algorithm_nor_its_config():
    """The losses modules take every setting as an argument: no import of the algorithm module
    or its config (so no two library modules import each other)."""
    for name in ("pearl", "macaw"):
        module = importlib.import_module(f"metarl_jax.algos.{name}_losses")
        with open(module.__file__) as source:
            tree = ast.parse(source.read())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        assert not imported & {f"metarl_jax.algos.{name}", f"metarl_jax.algos.{name}_config"}
