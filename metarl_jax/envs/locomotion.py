"""MuJoCo locomotion meta-tasks on MJX: Cheetah-Dir, Cheetah-Vel, Ant-Dir, Ant-Goal.

Definitions follow the PEARL / rlkit family (oyster's envs; BUILD_NOTES): frame skip 5 on a
0.01 s timestep (dt = 0.05), horizon 200, gym's reset noise (qpos0 + U(-0.1, 0.1), qvel
0.1 N(0, 1)).

    Cheetah-Dir   d * dx/dt - 0.05 |a|^2                              obs qpos[1:], qvel, torso xpos
    Cheetah-Vel   -|dx/dt - v*| - 0.05 |a|^2                          obs as Cheetah-Dir
    Ant-Dir       (dxy/dt).(cos t, sin t) - 0.5 |a|^2 - contact + 1    obs qpos[2:], qvel
                  done when the torso height leaves [0.2, 1] or the state is not finite
    Ant-Goal      -|xy - g|_1 - 0.1 |a|^2 - contact                    obs qpos, qvel
    contact = 0.5e-3 |clip(cfrc_ext, -1, 1)|^2

Models are brax's contact-pruned half_cheetah.xml and ant.xml (only the feet and selected capsules
collide with the floor), loaded from the installed brax package, with the solver set explicitly
per robot (`SOLVER`). Rewards are pure functions of (qpos before, qpos after, cfrc_ext, action,
task), so the same function scores MJX and MuJoCo C states in the cross-check.
"""

import contextlib
import importlib.util
import io
import os
import re
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import mujoco

from metarl_jax.envs.api import Env
from metarl_jax.tasks import (
    TaskSpace,
    direction_angle_space,
    disk_goal_space,
    forward_backward_space,
    velocity_space,
)


def _import_mjx():
    """mujoco.mjx without the "Failed to import warp" lines it prints when the optional warp
    backend is not installed; any other line it prints is passed on."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        from mujoco import mjx
    for line in printed.getvalue().splitlines():
        if not line.endswith("No module named 'warp'"):
            print(line)
    return mjx


mjx = _import_mjx()

FRAME_SKIP = 5
HORIZON = 200
RESET_NOISE = 0.1
# Newton (iterations, line-search iterations) per robot: the fewest that stay stable and close to
# a converged solver under random actions (one iteration blows the ant up and flips the cheetah
# far more often). Measurements in BUILD_NOTES.md.
SOLVER = {"cheetah": (2, 4), "ant": (3, 6)}
ROBOT_XML = {"cheetah": "half_cheetah.xml", "ant": "ant.xml"}
ANT_HEIGHT_RANGE = (0.2, 1.0)


def model_path(robot: str) -> str:
    brax_dir = importlib.util.find_spec("brax").submodule_search_locations[0]  # not imported:
    return os.path.join(brax_dir, "envs", "assets", ROBOT_XML[robot])  # it imports mjx loudly


_TOTAL_MASS = re.compile(r'\s+settotalmass="([^"]+)"')


def model_xml(robot: str) -> tuple[str, float | None]:
    """The robot's XML without the deprecated `settotalmass` compiler attribute, and its value."""
    with open(model_path(robot)) as f:
        xml = f.read()
    found = _TOTAL_MASS.search(xml)
    if found is None:
        return xml, None
    return xml.replace(found.group(0), ""), float(found.group(1))


def set_total_mass(model: mujoco.MjModel, total_mass: float | None) -> None:
    """What the compiler's `settotalmass` did (same arrays, tested): scale the masses, then
    recompute the derived constants."""
    if total_mass is not None:
        mujoco.mj_setTotalmass(model, total_mass)
        mujoco.mj_setConst(model, mujoco.MjData(model))


def load_model(robot: str) -> mujoco.MjModel:
    """The robot's MuJoCo model with this project's solver settings."""
    xml, total_mass = model_xml(robot)
    model = mujoco.MjModel.from_xml_string(xml)
    set_total_mass(model, total_mass)
    model.opt.solver = mujoco.mjtSolver.mjSOL_NEWTON
    model.opt.iterations, model.opt.ls_iterations = SOLVER[robot]
    return model


class Locomotion(NamedTuple):
    """What defines one locomotion meta-task, independent of the physics backend."""

    name: str
    robot: str
    task_space: TaskSpace
    observe: Callable  # (qpos, qvel, torso_xpos) -> obs
    reward: Callable  # (qpos_before, qpos_after, cfrc_ext, action, task) -> reward
    done: Callable  # (qpos, qvel) -> bool
    uses_contact_forces: bool


def _control_cost(action, weight):
    return weight * jnp.sum(jnp.square(action), axis=-1)


def _contact_cost(cfrc_ext):
    return 0.5e-3 * jnp.sum(jnp.square(jnp.clip(cfrc_ext, -1.0, 1.0)), axis=(-2, -1))


def _cheetah_observe(qpos, qvel, torso_xpos):
    return jnp.concatenate([qpos[..., 1:], qvel, torso_xpos], axis=-1)


def _never_done(qpos, qvel):
    return jnp.zeros(qpos.shape[:-1], jnp.bool_)


def _cheetah_dir_reward(qpos_before, qpos_after, cfrc_ext, action, task):
    velocity = (qpos_after[..., 0] - qpos_before[..., 0]) / (FRAME_SKIP * _TIMESTEP["cheetah"])
    return task.direction * velocity - _control_cost(action, 0.05)


def _cheetah_vel_reward(qpos_before, qpos_after, cfrc_ext, action, task):
    velocity = (qpos_after[..., 0] - qpos_before[..., 0]) / (FRAME_SKIP * _TIMESTEP["cheetah"])
    return -jnp.abs(velocity - task.velocity) - _control_cost(action, 0.05)


def _ant_dir_reward(qpos_before, qpos_after, cfrc_ext, action, task):
    velocity = (qpos_after[..., :2] - qpos_before[..., :2]) / (FRAME_SKIP * _TIMESTEP["ant"])
    direction = jnp.stack([jnp.cos(task.angle), jnp.sin(task.angle)], axis=-1)
    forward = jnp.sum(velocity * direction, axis=-1)
    return forward - _control_cost(action, 0.5) - _contact_cost(cfrc_ext) + 1.0


def _ant_goal_reward(qpos_before, qpos_after, cfrc_ext, action, task):
    distance = jnp.sum(jnp.abs(qpos_after[..., :2] - task.goal), axis=-1)
    return -distance - _control_cost(action, 0.1) - _contact_cost(cfrc_ext)


def _ant_done(qpos, qvel):
    finite = jnp.all(jnp.isfinite(qpos), axis=-1) & jnp.all(jnp.isfinite(qvel), axis=-1)
    height = qpos[..., 2]
    healthy = (height >= ANT_HEIGHT_RANGE[0]) & (height <= ANT_HEIGHT_RANGE[1])
    return ~(finite & healthy)


_TIMESTEP = {"cheetah": 0.01, "ant": 0.01}  # the XMLs' timesteps, checked in make_locomotion_env

LOCOMOTION = {
    "cheetah_dir": Locomotion(
        "cheetah_dir",
        "cheetah",
        forward_backward_space(),
        _cheetah_observe,
        _cheetah_dir_reward,
        _never_done,
        False,
    ),
    "cheetah_vel": Locomotion(
        "cheetah_vel",
        "cheetah",
        velocity_space(0.0, 3.0),
        _cheetah_observe,
        _cheetah_vel_reward,
        _never_done,
        False,
    ),
    "ant_dir": Locomotion(
        "ant_dir",
        "ant",
        direction_angle_space(),
        lambda qpos, qvel, _: jnp.concatenate([qpos[..., 2:], qvel], axis=-1),
        _ant_dir_reward,
        _ant_done,
        True,
    ),
    "ant_dir_fwd_back": Locomotion(
        "ant_dir_fwd_back",
        "ant",
        direction_angle_space(forward_backward=True),
        lambda qpos, qvel, _: jnp.concatenate([qpos[..., 2:], qvel], axis=-1),
        _ant_dir_reward,
        _ant_done,
        True,
    ),
    "ant_goal": Locomotion(
        "ant_goal",
        "ant",
        disk_goal_space(3.0),
        lambda qpos, qvel, _: jnp.concatenate([qpos, qvel], axis=-1),
        _ant_goal_reward,
        _never_done,
        True,
    ),
}


def torso_body(model: mujoco.MjModel) -> int:
    return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "torso")


PHYSICS_PRECISION = "highest"


def make_locomotion_env(
    name: str, horizon: int = HORIZON, precision: str | None = PHYSICS_PRECISION
) -> Env:
    """A locomotion meta-task stepped with MJX (batched by vmap, on any JAX device).

    `precision`: the float32 matmul precision of the physics, whatever JAX's global default.
    "highest" (the default) keeps MJX on GPUs equal to MuJoCo C (their default TF32 matmuls
    drift from it); None leaves the physics to the global setting (faster, not exact).
    """
    spec = LOCOMOTION[name]
    model = load_model(spec.robot)
    if model.opt.timestep != _TIMESTEP[spec.robot]:
        raise ValueError(f"{model_path(spec.robot)}: timestep {model.opt.timestep} != 0.01")
    mjx_model = mjx.put_model(model)
    torso = torso_body(model)

    def observe(data):
        return spec.observe(data.qpos, data.qvel, data.xpos[torso])

    def exact(fn):
        if precision is None:
            return fn

        def within_precision(*args):
            with jax.default_matmul_precision(precision):
                return fn(*args)

        return within_precision

    @exact
    def reset(key, task):
        del task
        qpos_key, qvel_key = jax.random.split(key)
        qpos = mjx_model.qpos0 + jax.random.uniform(
            qpos_key, (model.nq,), minval=-RESET_NOISE, maxval=RESET_NOISE
        )
        qvel = RESET_NOISE * jax.random.normal(qvel_key, (model.nv,))
        data = mjx.forward(mjx_model, mjx.make_data(mjx_model).replace(qpos=qpos, qvel=qvel))
        return observe(data), data

    @exact
    def step(key, data, action, task):
        del key
        qpos_before = data.qpos
        data = data.replace(ctrl=action)
        data = jax.lax.fori_loop(0, FRAME_SKIP, lambda _, d: mjx.step(mjx_model, d), data)
        if spec.uses_contact_forces:
            data = mjx.rne_postconstraint(mjx_model, data)
        reward = spec.reward(qpos_before, data.qpos, data._impl.cfrc_ext, action, task)
        return observe(data), data, reward, spec.done(data.qpos, data.qvel)

    return locomotion_env(spec, model, horizon, reset, step)


def locomotion_env(spec: Locomotion, model: mujoco.MjModel, horizon: int, reset, step) -> Env:
    """The Env of a locomotion spec, for any physics backend's reset and step."""
    obs_size = int(jax.eval_shape(lambda: reset(jax.random.PRNGKey(0), None)[0]).shape[0])
    return Env(
        name=spec.name,
        task_space=spec.task_space,
        obs_size=obs_size,
        action_size=model.nu,
        discrete=False,
        horizon=horizon,
        reset=reset,
        step=step,
    )
