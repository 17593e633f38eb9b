"""The native MuJoCo C physics path (`envs.native`) against MJX and against MuJoCo C itself.

- Against MJX (teacher-forced, float32): along a batch of MJX episodes under random actions, the
  native env is put in each MJX state (qpos, qvel, qacc_warmstart) and stepped with the same
  action, all transitions in ONE vmapped call; next state, warm start, observation and reward
  must agree within float32 tolerance. Resets from the same key must agree too.
- Against sequential `mj_step` (float64): the callback's recovered warm start, pre-integration
  torso position and cfrc_ext equal what MuJoCo C's own data holds, so carrying the warm start
  through the JAX state changes nothing.
- Under jit + vmap over tasks inside `rl.rollout`: one callback call per env step for the whole
  batch, finite rewards.
"""

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from metarl_jax.envs.locomotion import (
    FRAME_SKIP,
    LOCOMOTION,
    load_model,
    make_locomotion_env,
    torso_body,
)
from metarl_jax.envs.native import NativePhysics, NativeState, make_native_locomotion_env
from metarl_jax.rl import make_policy, rollout

QPOS_ATOL, QVEL_ATOL, REWARD_ATOL = 1e-4, 1e-3, 1e-3


def _mjx_transitions(env, task, num_episodes, num_steps, key):
    """Pre-states, actions and MJX's outputs of every step of a batch of MJX episodes."""

    def episode(key):
        obs0, data = env.reset(key, task)
        actions = jax.random.uniform(
            jax.random.fold_in(key, 1), (num_steps, env.action_size), minval=-1.0, maxval=1.0
        )

        def step(data, action):
            before = (data.qpos, data.qvel, data.qacc_warmstart)
            obs, data, reward, done = env.step(key, data, action, task)
            after = (data.qpos, data.qvel, data.qacc_warmstart)
            return data, (before, action, obs, after, reward, done)

        return obs0, jax.lax.scan(step, data, actions)[1]

    keys = jax.random.split(key, num_episodes)
    return jax.jit(jax.vmap(episode))(keys), keys


def _mujoco_c_steps(robot, qpos, qvel, qacc_warmstart, actions):
    """Sequential MuJoCo C from each given state: next (qpos, qvel), float64."""
    model = load_model(robot)
    data = mujoco.MjData(model)
    out_qpos, out_qvel = np.empty_like(qpos, np.float64), np.empty_like(qvel, np.float64)
    for i in range(len(actions)):
        data.qpos[:], data.qvel[:], data.qacc_warmstart[:] = qpos[i], qvel[i], qacc_warmstart[i]
        data.ctrl[:] = actions[i]
        for _ in range(FRAME_SKIP):
            mujoco.mj_step(model, data)
        out_qpos[i], out_qvel[i] = data.qpos, data.qvel
    return out_qpos, out_qvel


@pytest.mark.parametrize("name", ["cheetah_dir", pytest.param("ant_dir", marks=pytest.mark.slow)])
def test_native_env_matches_mjx_step_by_step(name):
    spec = LOCOMOTION[name]
    mjx_env = make_locomotion_env(name, horizon=30)
    env = make_native_locomotion_env(name, horizon=30)
    task = mjx_env.task_space.sample(jax.random.PRNGKey(3))
    num_episodes, num_steps = 4, 30
    (mjx_obs0, (before, actions, obs, after, reward, done)), reset_keys = _mjx_transitions(
        mjx_env, task, num_episodes, num_steps, jax.random.PRNGKey(0)
    )

    # Resets from the same keys: same state, same observation (torso xpos from kinematics).
    native_obs0, native_state0 = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))(reset_keys, task)
    np.testing.assert_allclose(native_obs0, mjx_obs0, atol=1e-6)
    np.testing.assert_array_equal(native_state0.qacc_warmstart, 0.0)

    # Every MJX transition at once: [episodes, steps, ...] flattened into one vmapped batch.
    flat = lambda x: np.asarray(x).reshape((-1, *x.shape[2:]))
    state = NativeState(*(jnp.asarray(flat(x)) for x in before))
    step = jax.jit(jax.vmap(env.step, in_axes=(None, 0, 0, None)))
    n_obs, n_state, n_reward, n_done = (
        np.asarray(x) if not isinstance(x, NativeState) else NativeState(*map(np.asarray, x))
        for x in step(jax.random.PRNGKey(1), state, jnp.asarray(flat(actions)), task)
    )

    # The native env is MuJoCo C: against sequential mj_step from the same states it agrees on
    # every transition (float32 state in and out).
    c_qpos, c_qvel = _mujoco_c_steps(spec.robot, *(flat(x) for x in before), flat(actions))
    np.testing.assert_allclose(n_state.qpos, c_qpos, atol=1e-5)
    np.testing.assert_allclose(n_state.qvel, c_qvel, atol=1e-4)

    # Against MJX: every transition on which MuJoCo C agrees with MJX. On a few transitions MJX
    # and MuJoCo C themselves differ (2-3 Newton iterations do not converge at some contact
    # changes, and MJX's line search is not C's); those must stay rare.
    mjx_qvel = flat(after[1])
    same = np.abs(c_qvel - mjx_qvel).max(axis=1) < QVEL_ATOL
    assert same.mean() >= 0.95, same.mean()
    np.testing.assert_allclose(n_state.qpos[same], flat(after[0])[same], atol=QPOS_ATOL)
    np.testing.assert_allclose(n_state.qvel[same], mjx_qvel[same], atol=QVEL_ATOL)
    mjx_warm = flat(after[2])[same]
    np.testing.assert_allclose(
        n_state.qacc_warmstart[same], mjx_warm, atol=1e-2 + 1e-4 * np.abs(mjx_warm).max()
    )
    np.testing.assert_allclose(n_obs[same], flat(obs)[same], atol=QVEL_ATOL)
    np.testing.assert_allclose(n_reward[same], flat(reward)[same], atol=REWARD_ATOL)
    np.testing.assert_array_equal(n_done[same], flat(done)[same])
    # The episodes really moved and (ant) touched the ground: the comparison covers contacts.
    assert np.abs(flat(after[0])[:, 0] - flat(before[0])[:, 0]).max() > 0.01
    if spec.uses_contact_forces:
        no_contact = np.zeros((len(n_reward), load_model(spec.robot).nbody, 6))
        without = spec.reward(state.qpos, n_state.qpos, no_contact, flat(actions), task)
        assert np.max(np.asarray(without) - n_reward) > 1e-3  # some steps pay a contact cost


@pytest.mark.parametrize("robot", ["cheetah", "ant"])
def test_native_physics_equals_sequential_mujoco_c(robot):
    """Warm start, torso xpos and cfrc_ext recovered by the callback equal MuJoCo C's own."""
    physics = NativePhysics(robot, contact_forces=True, num_threads=2)
    model = load_model(robot)
    torso = torso_body(model)
    rng = np.random.default_rng(0)
    datas = [mujoco.MjData(model) for _ in range(6)]
    for data in datas:
        data.qpos[:] = model.qpos0 + rng.uniform(-0.1, 0.1, model.nq)
        data.qvel[:] = 0.1 * rng.normal(size=model.nv)
    worst = dict.fromkeys(["qpos", "qvel", "warm", "xpos", "cfrc"], 0.0)
    touched = False
    for _ in range(40):
        stack = lambda field: np.stack([getattr(d, field) for d in datas])
        ctrl = rng.uniform(-1, 1, (len(datas), model.nu))
        qpos, qvel, warm, xpos, cfrc = physics.advance(
            stack("qpos"), stack("qvel"), stack("qacc_warmstart"), ctrl
        )
        for i, data in enumerate(datas):
            data.ctrl[:] = ctrl[i]
            for _ in range(FRAME_SKIP):
                mujoco.mj_step(model, data)
            mujoco.mj_rnePostConstraint(model, data)
            scale = 1.0 + np.abs(data.qacc_warmstart).max()
            worst["qpos"] = max(worst["qpos"], np.abs(qpos[i] - data.qpos).max())
            worst["qvel"] = max(worst["qvel"], np.abs(qvel[i] - data.qvel).max())
            worst["warm"] = max(worst["warm"], np.abs(warm[i] - data.qacc_warmstart).max() / scale)
            worst["xpos"] = max(worst["xpos"], np.abs(xpos[i] - data.xpos[torso]).max())
            cfrc_scale = 1.0 + np.abs(data.cfrc_ext).max()
            worst["cfrc"] = max(worst["cfrc"], np.abs(cfrc[i] - data.cfrc_ext).max() / cfrc_scale)
            touched |= bool(np.abs(data.cfrc_ext).max() > 1.0)
    assert max(worst.values()) < 1e-9, worst
    assert touched

    # A state that is not finite, or that MuJoCo C finds unstable (it would reset the data),
    # comes back NaN as MJX's would; the other states of the batch are unaffected.
    qpos = np.stack([model.qpos0] * 3)
    qpos[0] = np.nan
    qvel = np.zeros((3, model.nv))
    qvel[1] = 1e12  # beyond mjMAXVAL: MuJoCo warns and resets
    out = physics.advance(qpos, qvel, np.zeros((3, model.nv)), np.zeros((3, model.nu)))
    assert all(np.isnan(a[:2]).all() and np.isfinite(a[2]).all() for a in out)


def test_native_env_in_jitted_rollout_vmapped_over_tasks():
    physics = NativePhysics("ant", contact_forces=True, num_threads=2)
    env = make_native_locomotion_env("ant_dir", horizon=12, physics=physics)
    policy = make_policy(env, (16,))
    params = policy.init(jax.random.PRNGKey(0))
    num_tasks, num_episodes, horizon = 3, 4, 12
    tasks = jax.vmap(env.task_space.sample)(jax.random.split(jax.random.PRNGKey(1), num_tasks))
    keys = jax.random.split(jax.random.PRNGKey(2), num_tasks)
    collect = jax.jit(
        jax.vmap(lambda task, key: rollout(env, policy, params, task, key, num_episodes, horizon))
    )
    trajectory = jax.block_until_ready(collect(tasks, keys))
    assert trajectory.rewards.shape == (num_tasks, horizon, num_episodes)
    assert trajectory.obs.shape == (num_tasks, horizon, num_episodes, env.obs_size)
    assert np.isfinite(np.asarray(trajectory.rewards)).all()
    assert np.isfinite(np.asarray(trajectory.obs)).all()
    # One callback per env step, each with the whole batch of episodes x tasks.
    assert physics.calls == horizon
    assert physics.last_batch == num_tasks * num_episodes
    # Same keys, same trajectory: the callback is a pure function of its inputs.
    again = collect(tasks, keys)
    np.testing.assert_array_equal(again.rewards, trajectory.rewards)
