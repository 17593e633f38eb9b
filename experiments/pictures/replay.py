"""Replaying recorded episodes through the environment they were played in.

Each episode restarts from `env.reset(reset_key, task)` and is stepped with its recorded actions,
which gives back what the recorded arrays leave out: the physics state (qpos) at every step, and
the observation after the last action. The replayed observations equal the recorded ones on the
valid steps (checked by `replay_mismatch`); after an episode's end the replay keeps stepping and
its states mean nothing.

Float rounding depends on how the physics was compiled (an eager and a jitted reset differ by an
ulp in qvel; MJX batched otherwise drifts by 4e-4 within 10 steps), and a physics episode
amplifies an ulp into other motion within seconds (a Cheetah observation 5.4 apart after 200
steps). So before every step a locomotion replay takes qpos and qvel from the recorded
observation, which holds all of them but the position on the ground plane (Cheetah's x, Ant-Dir's
x and y), on which the physics does not depend; that position is integrated by the replay. The
replayed observations are then one-step predictions of the recorded ones: equal to them with the
physics that recorded them, close with another compilation, far with other actions or another
env.

The step keys are not recorded: the environment's step must not draw from its key (physics and
navigation do not; the bandit does, and needs no replay).
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Replay(NamedTuple):
    obs: np.ndarray  # [S, N, T + 1, obs_size]: before each action, then after the last one
    qpos: np.ndarray | None  # [S, N, T + 1, nq] for physics envs (states with a qpos), else None


def replay_episodes(env, trajectories) -> Replay:
    """Every episode of `trajectories` replayed from its reset key with its recorded actions."""
    actions = jnp.asarray(trajectories.actions)
    num_stages, num_tasks, horizon = actions.shape[:3]
    flat = num_stages * num_tasks
    keys = jnp.asarray(trajectories.reset_keys).reshape(flat, -1)
    tasks = jax.tree.map(
        lambda leaf: jnp.broadcast_to(leaf, (num_stages, *leaf.shape)).reshape(
            flat, *leaf.shape[1:]
        ),
        jax.tree.map(jnp.asarray, trajectories.tasks),
    )
    time_major = jnp.moveaxis(actions.reshape(flat, horizon, *actions.shape[3:]), 1, 0)
    recorded = jnp.asarray(trajectories.obs).reshape(flat, horizon, -1)
    obs, qpos = _replay(env)(keys, tasks, time_major, jnp.moveaxis(recorded, 1, 0))
    unflatten = lambda a: (
        None if a is None else np.asarray(a).reshape(num_stages, num_tasks, *a.shape[1:])
    )
    return Replay(unflatten(obs), unflatten(qpos))


# how many leading qpos coordinates each locomotion observation leaves out
OMITTED_QPOS = {
    "cheetah_dir": 1,
    "cheetah_vel": 1,
    "ant_dir": 2,
    "ant_dir_fwd_back": 2,
    "ant_goal": 0,
}


def resync(env_name: str, state, obs):
    """The state (NativeState or mjx.Data, batched) with the qpos and qvel that the recorded
    observation holds; other envs' states as they are."""
    if env_name not in OMITTED_QPOS:
        return state
    omitted = OMITTED_QPOS[env_name]
    nq, nv = state.qpos.shape[-1], state.qvel.shape[-1]
    seen = nq - omitted
    qpos = state.qpos.at[..., omitted:].set(obs[..., :seen])
    qvel = obs[..., seen : seen + nv].astype(state.qvel.dtype)
    return (
        state.replace(qpos=qpos, qvel=qvel)
        if hasattr(state, "replace")
        else state._replace(qpos=qpos, qvel=qvel)
    )


def _qpos(state):
    return getattr(state, "qpos", None)


@functools.lru_cache(maxsize=8)
def _replay(env):
    """The batched replay of `env`, compiled once per env: keys [B, 2], tasks [B, ...], actions
    [T, B, ...], the recorded observations [T, B, obs] -> obs and qpos [B, T + 1, ...]."""

    @jax.jit
    def run(keys, tasks, actions, recorded):
        obs, state = jax.vmap(env.reset)(keys, tasks)

        def step(carry, inputs):
            obs, state = carry
            action, seen = inputs
            state = resync(env.name, state, seen)
            step_keys = jnp.zeros_like(keys)  # recorded episodes' step keys are not kept
            next_obs, next_state, _, _ = jax.vmap(env.step)(step_keys, state, action, tasks)
            return (next_obs, next_state), (obs, _qpos(state))

        carry = (obs, state)
        (last_obs, last_state), (predicted, positions) = jax.lax.scan(
            step, carry, (actions, recorded)
        )
        obs = jnp.concatenate([predicted, last_obs[None]], axis=0)
        if positions is not None:
            positions = jnp.concatenate([positions, _qpos(last_state)[None]], axis=0)
            positions = jnp.moveaxis(positions, 0, 1)
        return jnp.moveaxis(obs, 0, 1), positions

    return run


def replay_mismatch(replay: Replay, trajectories) -> float:
    """The largest absolute difference between replayed (one-step predicted) and recorded
    observations over the valid steps: 0 when the replay reproduces the episodes exactly."""
    recorded = np.asarray(trajectories.obs)
    valid = np.asarray(trajectories.valid) > 0
    difference = np.abs(replay.obs[:, :, :-1] - recorded)
    return float(np.max(np.where(valid[..., None], difference, 0.0), initial=0.0))
