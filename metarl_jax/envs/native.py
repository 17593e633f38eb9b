"""The locomotion meta-tasks stepped by native MuJoCo C from inside `jit` (CPU physics path).

Same tasks, model, solver settings, reset distribution, observations and rewards as
`locomotion.make_locomotion_env` (the `LOCOMOTION` specs are reused as they are); only the
physics runs in MuJoCo C instead of MJX. `env.step` calls `jax.pure_callback` with
`vmap_method="broadcast_all"`, so a whole vmapped batch (episodes x tasks, any nesting) reaches
ONE Python call per env step, which advances every state by FRAME_SKIP physics steps with
`mujoco.rollout` on a persistent pool of `os.cpu_count()` threads.

The env state is a small pytree, `NativeState(qpos, qvel, qacc_warmstart)` (float32, as MJX's).
Three quantities MJX's step returns are not among rollout's outputs (the FULLPHYSICS state:
time, qpos, qvel): they are recovered from sensors added to a copy of the model (sensors never
act on the physics) and from the kinematics of the state before the last physics step:

- **qacc_warmstart**, the last physics step's acceleration, which the Newton solver starts from
  at the next env step. It cannot be read back from rollout, and with 2-3 Newton iterations the
  solver does not always converge, so a different start gives a different step (up to ~2 in qvel
  on the cheetah from a finite-difference estimate (qvel' - qvel)/dt, which besides is the
  implicit-damping acceleration, not qacc). It is recovered exactly: frame angular/linear
  acceleration sensors on every body give the bodies' spatial accelerations (`cacc`, which
  `mj_rnePostConstraint` computes from qacc); with cvel/cdof/cdof_dot from `mj_kinematics` +
  `mj_comPos` + `mj_comVel` at the last step's start state, each body's joint accelerations solve
  cacc[b] - cacc[parent] - cdof_dot qvel = cdof qacc (exact to float64 rounding).
- **torso xpos** in the observation: MJX returns the position computed in the last physics step's
  forward pass, i.e. before that step's integration; the same kinematics gives it.
- **cfrc_ext** (ant rewards): MJX runs `rne_postconstraint` on the data after the last physics
  step, whose contact forces belong to that step's forward pass. Contact sensors (net wrench per
  colliding geom) record exactly those forces; shifted to the subtree centre of mass they are
  `cfrc_ext` as `mj_rnePostConstraint` defines it.

A physics step that MuJoCo C flags as unstable (it resets the data and warns; rollout then stops
that trajectory) comes back as NaN, as MJX's state would, so Ant's done fires the same way.
"""

import os
import threading
from typing import NamedTuple

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from mujoco import rollout as mj_rollout

from metarl_jax.envs.api import Env
from metarl_jax.envs.locomotion import (
    FRAME_SKIP,
    HORIZON,
    LOCOMOTION,
    RESET_NOISE,
    load_model,
    locomotion_env,
    model_xml,
    set_total_mass,
    torso_body,
)

# mjtSensor contact sensor: data fields (bit flags) and reduction
_CONTACT_FORCE, _CONTACT_TORQUE, _CONTACT_POS = 2, 4, 16
_CONTACT_REDUCE_NETFORCE = 3


class NativeState(NamedTuple):
    qpos: jax.Array  # [nq]
    qvel: jax.Array  # [nv]
    qacc_warmstart: jax.Array  # [nv]: the last physics step's qacc, the solver's next start


def _copy_options(source: mujoco.MjOption, target: mujoco.MjOption) -> None:
    for name in dir(source):
        if name.startswith("_"):
            continue
        value = getattr(source, name)
        if callable(value):
            continue
        if isinstance(value, np.ndarray):
            getattr(target, name)[...] = value
        else:
            setattr(target, name, value)


def native_model(robot: str, contact_forces: bool) -> mujoco.MjModel:
    """`load_model(robot)` plus the sensors the callback reads (they do not act on the physics).

    Sensors, after any the XML defines: frame angular then linear acceleration of every body but
    the world (3 + 3 each); then, with `contact_forces`, one contact sensor (net force, torque,
    position) per colliding geom of a non-world body (3 + 3 + 3 each).
    """
    reference = load_model(robot)
    xml, total_mass = model_xml(robot)
    spec = mujoco.MjSpec.from_string(xml)
    for i, body in enumerate(spec.bodies):
        if i == 0:
            continue
        if not body.name:
            body.name = f"native_body_{i}"
        for kind in (mujoco.mjtSensor.mjSENS_FRAMEANGACC, mujoco.mjtSensor.mjSENS_FRAMELINACC):
            spec.add_sensor(type=kind, objtype=mujoco.mjtObj.mjOBJ_XBODY, objname=body.name)
    if contact_forces:
        for i, geom in enumerate(spec.geoms):
            if not geom.name:
                geom.name = f"native_geom_{i}"
        for i in range(reference.ngeom):
            colliding = reference.geom_contype[i] or reference.geom_conaffinity[i]
            if colliding and reference.geom_bodyid[i] != 0:
                sensor = spec.add_sensor(
                    type=mujoco.mjtSensor.mjSENS_CONTACT,
                    objtype=mujoco.mjtObj.mjOBJ_GEOM,
                    objname=spec.geoms[i].name,
                )
                data = _CONTACT_FORCE | _CONTACT_TORQUE | _CONTACT_POS
                sensor.intprm = np.array([data, _CONTACT_REDUCE_NETFORCE, 1])
    model = spec.compile()
    set_total_mass(model, total_mass)
    _copy_options(reference.opt, model.opt)
    # The same physics: same sizes, masses, inertias and options as load_model's model.
    for field in ("nq", "nv", "nu", "na", "nbody", "ngeom", "neq"):
        if getattr(model, field) != getattr(reference, field):
            raise ValueError(f"native model of {robot}: {field} differs from load_model's")
    for field in ("body_mass", "body_inertia", "dof_damping", "dof_armature", "qpos0"):
        if not np.array_equal(getattr(model, field), getattr(reference, field)):
            raise ValueError(f"native model of {robot}: {field} differs from load_model's")
    if model.na or model.neq or model.nplugin:
        raise NotImplementedError("native physics handles models without act, equality, plugins")
    return model


def _dof_body_groups(model: mujoco.MjModel) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Bodies with degrees of freedom grouped by their number of dofs n: (bodies [k], their
    parents [k], their dofs [k, n]), so that each group's accelerations solve in one call."""
    groups = {}
    for b in range(1, model.nbody):
        n = model.body_dofnum[b]
        if n:
            start = model.body_dofadr[b]
            groups.setdefault(n, []).append((b, model.body_parentid[b], range(start, start + n)))
    return [
        tuple(np.array(column) for column in zip(*members, strict=True))
        for members in groups.values()
    ]


class NativePhysics:
    """MuJoCo C physics for batches of states, called from inside jit (numpy in, numpy out)."""

    def __init__(self, robot: str, contact_forces: bool, num_threads: int | None = None):
        self.model = model = native_model(robot, contact_forces)
        self.contact_forces = contact_forces
        self.num_threads = num_threads or os.cpu_count() or 1
        self.torso = torso_body(model)
        self.nstate = mujoco.mj_stateSize(model, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        if self.nstate != 1 + model.nq + model.nv:
            raise NotImplementedError(f"FULLPHYSICS state of size {self.nstate}")
        nbody = model.nbody
        first = load_model(robot).nsensordata  # sensordata indices of native_model's sensors
        self._acc = first + np.arange(6 * (nbody - 1)).reshape(nbody - 1, 2, 3)
        contact_sensors = [
            s
            for s in range(model.nsensor)
            if model.sensor_type[s] == mujoco.mjtSensor.mjSENS_CONTACT
            and model.sensor_adr[s] >= first
        ]
        self._contact_bodies = model.geom_bodyid[model.sensor_objid[contact_sensors]]
        self._contact = np.array([model.sensor_adr[s] + np.arange(9) for s in contact_sensors])
        self._contact = self._contact.reshape(-1, 3, 3)
        self._dof_body_groups = _dof_body_groups(model)
        self._end_time = 0.0  # MuJoCo advances time by repeated addition
        for _ in range(FRAME_SKIP):
            self._end_time += model.opt.timestep
        self._lock = threading.Lock()
        self._pool = None
        self._datas = None
        self._scratch = mujoco.MjData(model)
        self._buffers = {}
        self.calls = 0  # callback calls and the batch size of the last one (for tests, benchmarks)
        self.last_batch = 0

    def _ensure_pool(self):
        if self._pool is None:
            self._pool = mj_rollout.Rollout(nthread=self.num_threads)
            self._datas = [mujoco.MjData(self.model) for _ in range(max(1, self.num_threads))]

    def _buffers_for(self, batch: int):
        if batch not in self._buffers:
            m = self.model
            self._buffers[batch] = (
                [m] * batch,
                np.zeros((batch, self.nstate)),
                np.zeros((batch, m.nv)),
                np.zeros((batch, FRAME_SKIP, m.nu)),
                np.zeros((batch, FRAME_SKIP, self.nstate)),
                np.zeros((batch, FRAME_SKIP, m.nsensordata)),
            )
        return self._buffers[batch]

    def _kinematics(self, qpos, qvel, need_velocity: bool):
        """xpos, subtree_com and (optionally) cvel, cdof, cdof_dot of each state in a batch."""
        m, d = self.model, self._scratch
        batch = qpos.shape[0]
        xpos = np.empty((batch, m.nbody, 3))
        com = np.empty((batch, m.nbody, 3))
        cvel = np.empty((batch, m.nbody, 6)) if need_velocity else None
        cdof = np.empty((batch, m.nv, 6)) if need_velocity else None
        cdof_dot = np.empty((batch, m.nv, 6)) if need_velocity else None
        for i in range(batch):
            d.qpos[:] = qpos[i]
            mujoco.mj_kinematics(m, d)
            mujoco.mj_comPos(m, d)
            xpos[i], com[i] = d.xpos, d.subtree_com
            if need_velocity:
                d.qvel[:] = qvel[i]
                mujoco.mj_comVel(m, d)
                cvel[i], cdof[i], cdof_dot[i] = d.cvel, d.cdof, d.cdof_dot
        return xpos, com, cvel, cdof, cdof_dot

    def _qacc(self, sensordata, qvel, xpos, com, cvel, cdof, cdof_dot):
        """The last physics step's qacc from its body accelerations (see the module docstring)."""
        m = self.model
        batch = qvel.shape[0]
        alpha = sensordata[:, self._acc[:, 0]]  # [B, nbody-1, 3] world angular acceleration
        linear = sensordata[:, self._acc[:, 1]]  # linear acceleration of the body frame origin
        centre = com[:, m.body_rootid[1:]]
        position = xpos[:, 1:]
        omega, v_centre = cvel[:, 1:, :3], cvel[:, 1:, 3:]
        v_point = v_centre + np.cross(omega, position - centre)
        cacc = np.zeros((batch, m.nbody, 6))
        cacc[:, 0, 3:] = -m.opt.gravity
        cacc[:, 1:, :3] = alpha
        cacc[:, 1:, 3:] = linear - np.cross(omega, v_point) + np.cross(alpha, centre - position)
        bias = cdof_dot * qvel[..., None]  # [B, nv, 6]
        qacc = np.empty((batch, m.nv))
        for bodies, parents, dofs in self._dof_body_groups:
            rhs = cacc[:, bodies] - cacc[:, parents] - bias[:, dofs].sum(axis=2)  # [B, k, 6]
            basis = cdof[:, dofs]  # [B, k, n, 6]: rhs = basis^T qacc
            projected = np.einsum("bkic,bkc->bki", basis, rhs)
            if dofs.shape[1] == 1:
                qacc[:, dofs[:, 0]] = projected[..., 0] / np.square(basis[..., 0, :]).sum(-1)
            else:
                normal = np.einsum("bkic,bkjc->bkij", basis, basis)
                qacc[:, dofs] = np.linalg.solve(normal, projected[..., None])[..., 0]
        return qacc

    def _cfrc_ext(self, sensordata, com):
        m = self.model
        cfrc = np.zeros((sensordata.shape[0], m.nbody, 6))
        if not len(self._contact_bodies):
            return cfrc
        force, torque, point = (sensordata[:, self._contact[:, j]] for j in range(3))  # [B, K, 3]
        centre = com[:, m.body_rootid[self._contact_bodies]]
        # the sensor's wrench acts on the sensor's geom from the other one; cfrc_ext is the
        # external force on the body, at the subtree centre of mass: the opposite sign.
        wrench = np.concatenate([torque + np.cross(point - centre, force), force], axis=-1)
        np.subtract.at(cfrc, (slice(None), self._contact_bodies), wrench)
        return cfrc

    def step(self, qpos, qvel, qacc_warmstart, ctrl):
        """Advance a batch (any leading shape) by FRAME_SKIP physics steps with ctrl held.

        Returns float32 (qpos, qvel, qacc_warmstart, torso xpos, cfrc_ext) with the same leading
        shape; cfrc_ext is all zeros without contact forces. This is the jit callback.
        """
        m = self.model
        lead = np.shape(qpos)[:-1]
        out = self.advance(qpos, qvel, qacc_warmstart, ctrl)
        shapes = ((m.nq,), (m.nv,), (m.nv,), (3,), (m.nbody, 6))
        return tuple(
            a.astype(np.float32).reshape(lead + s) for a, s in zip(out, shapes, strict=True)
        )

    def advance(self, qpos, qvel, qacc_warmstart, ctrl):
        """`step` on a flat batch in float64: (qpos, qvel, qacc, torso xpos, cfrc_ext), [B, ...]."""
        m = self.model
        qpos = np.asarray(qpos, np.float64).reshape(-1, m.nq)
        qvel = np.asarray(qvel, np.float64).reshape(-1, m.nv)
        warm = np.asarray(qacc_warmstart, np.float64).reshape(-1, m.nv)
        ctrl = np.asarray(ctrl, np.float64).reshape(-1, m.nu)
        batch = qpos.shape[0]
        # States already diverged (NaN) would only make MuJoCo warn and reset: leave them NaN.
        bad_input = ~(
            np.isfinite(qpos).all(1) & np.isfinite(qvel).all(1) & np.isfinite(warm).all(1)
        )
        with self._lock:
            self.calls += 1
            self.last_batch = batch
            self._ensure_pool()
            models, state0, warm0, control, states, sensordata = self._buffers_for(batch)
            state0[:, 0] = 0.0
            state0[:, 1 : 1 + m.nq] = qpos
            state0[:, 1 + m.nq :] = qvel
            warm0[:] = warm
            control[:] = ctrl[:, None, :]
            if bad_input.any():
                state0[bad_input, 1 : 1 + m.nq] = m.qpos0
                state0[bad_input, 1 + m.nq :] = 0.0
                warm0[bad_input] = 0.0
                control[bad_input] = 0.0
            self._pool.rollout(
                models,
                self._datas,
                state0,
                control,
                skip_checks=True,
                nstep=FRAME_SKIP,
                initial_warmstart=warm0,
                state=states,
                sensordata=sensordata,
            )
            final = states[:, -1]
            before = states[:, -2] if FRAME_SKIP > 1 else state0
            last_sensors = sensordata[:, -1]
            qpos_before = before[:, 1 : 1 + m.nq]
            qvel_before = before[:, 1 + m.nq :]
            xpos, com, cvel, cdof, cdof_dot = self._kinematics(qpos_before, qvel_before, True)
            qacc = self._qacc(last_sensors, qvel_before, xpos, com, cvel, cdof, cdof_dot)
            cfrc = self._cfrc_ext(last_sensors, com)
            new_qpos = final[:, 1 : 1 + m.nq].copy()
            new_qvel = final[:, 1 + m.nq :].copy()
            torso_xpos = xpos[:, self.torso].copy()
            # MuJoCo resets unstable data (time restarts at 0) and rollout stops that trajectory.
            diverged = bad_input | (final[:, 0] != self._end_time)
        if diverged.any():
            for array in (new_qpos, new_qvel, qacc, torso_xpos, cfrc):
                array[diverged] = np.nan
        return new_qpos, new_qvel, qacc, torso_xpos, cfrc

    def torso_position(self, qpos):
        """Forward kinematics: the torso's xpos for a batch of qpos (any leading shape)."""
        m = self.model
        lead = qpos.shape[:-1]
        flat = np.asarray(qpos, np.float64).reshape(-1, m.nq)
        with self._lock:
            xpos = self._kinematics(flat, None, False)[0][:, self.torso]
        return xpos.astype(np.float32).reshape((*lead, 3))


def make_native_locomotion_env(
    name: str,
    horizon: int = HORIZON,
    *,
    num_threads: int | None = None,
    physics: NativePhysics | None = None,
) -> Env:
    """A locomotion meta-task whose physics is MuJoCo C, called from jit (see module docstring).

    `num_threads` defaults to os.cpu_count(); `physics` shares or inspects a NativePhysics.
    """
    spec = LOCOMOTION[name]
    if physics is None:
        physics = NativePhysics(spec.robot, spec.uses_contact_forces, num_threads)
    model = physics.model
    nq, nv, nbody = model.nq, model.nv, model.nbody
    qpos0 = np.asarray(model.qpos0, np.float32)
    free, ball = int(mujoco.mjtJoint.mjJNT_FREE), int(mujoco.mjtJoint.mjJNT_BALL)
    quaternions = [  # qpos slices of free and ball joints' quaternions
        int(model.jnt_qposadr[j]) + (3 if model.jnt_type[j] == free else 0)
        for j in range(model.njnt)
        if model.jnt_type[j] in (free, ball)
    ]
    f32 = jnp.float32
    step_shapes = (
        jax.ShapeDtypeStruct((nq,), f32),
        jax.ShapeDtypeStruct((nv,), f32),
        jax.ShapeDtypeStruct((nv,), f32),
        jax.ShapeDtypeStruct((3,), f32),
        jax.ShapeDtypeStruct((nbody, 6), f32),
    )

    def reset(key, task):
        del task
        qpos_key, qvel_key = jax.random.split(key)
        qpos = jnp.asarray(qpos0) + jax.random.uniform(
            qpos_key, (nq,), minval=-RESET_NOISE, maxval=RESET_NOISE
        )
        for start in quaternions:  # as MJX's forward returns them (MuJoCo C normalizes too)
            quat = qpos[start : start + 4]
            qpos = qpos.at[start : start + 4].set(quat / jnp.linalg.norm(quat))
        qvel = RESET_NOISE * jax.random.normal(qvel_key, (nv,))
        torso_xpos = jax.pure_callback(
            physics.torso_position,
            jax.ShapeDtypeStruct((3,), f32),
            qpos,
            vmap_method="broadcast_all",
        )
        state = NativeState(qpos, qvel, jnp.zeros((nv,), f32))
        return spec.observe(qpos, qvel, torso_xpos), state

    def step(key, state, action, task):
        del key
        qpos, qvel, warm, torso_xpos, cfrc_ext = jax.pure_callback(
            physics.step,
            step_shapes,
            state.qpos,
            state.qvel,
            state.qacc_warmstart,
            action.astype(f32),
            vmap_method="broadcast_all",
        )
        reward = spec.reward(state.qpos, qpos, cfrc_ext, action, task)
        next_state = NativeState(qpos, qvel, warm)
        return spec.observe(qpos, qvel, torso_xpos), next_state, reward, spec.done(qpos, qvel)

    return locomotion_env(spec, model, horizon, reset, step)
