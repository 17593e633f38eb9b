"""MJX locomotion tasks against MuJoCo C, their task spaces, and MAML running on them.

The cross-check is teacher-forced: along a whole MJX episode under random actions, MuJoCo C is
put in each MJX state (qpos, qvel, act, warm start, time) and stepped with the same action; the
next state, the observation and the reward (the same pure reward function applied to both) must
agree within float32 tolerance. Free-running trajectories of a chaotic contact system diverge in
any two implementations, so comparing them over 1,000 physics steps would test chaos, not MJX.

Float32 MJX and float64 C agree to ~1e-6 on typical steps. On the few steps where a contact is
made or broken within the step (a penetration depth near zero), the two can resolve the event
differently and disagree by O(1) in velocity; the test therefore bounds the median and the 90th
percentile of the per-step errors over the episode, and requires most steps to agree tightly.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from metarl_jax.envs import LOCOMOTION_ENV_NAMES, make_env
from metarl_jax.envs.locomotion import FRAME_SKIP, LOCOMOTION, load_model, torso_body
from metarl_jax.tasks import (
    AngleTask,
    DirectionTask,
    GoalTask,
    RestrictionError,
    VelocityTask,
    make_sampler,
    parse_restriction,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# float32 MJX vs float64 C over one env step (5 physics steps) from the same state
TYPICAL_ATOL = 1e-4  # median over the episode's steps, for qpos, qvel, obs and reward
P90_ATOL = 2e-3  # 90th percentile
TIGHT_FRACTION = 0.85  # steps within TYPICAL_ATOL on every quantity


@pytest.mark.parametrize(
    "name",
    [
        "cheetah_dir",
        *(pytest.param(n, marks=pytest.mark.slow) for n in ("cheetah_vel", "ant_dir", "ant_goal")),
    ],
)
def test_mjx_matches_mujoco_c_over_an_episode(name):
    spec = LOCOMOTION[name]
    env = make_env(name, physics="mjx")
    model = load_model(spec.robot)
    data = mujoco.MjData(model)
    torso = torso_body(model)
    task = env.task_space.sample(jax.random.PRNGKey(3))
    key = jax.random.PRNGKey(0)
    obs, state = jax.jit(env.reset)(key, task)
    step = jax.jit(env.step)
    actions = np.random.default_rng(0).uniform(-1, 1, (env.horizon, env.action_size))
    errors = {"qpos": [], "qvel": [], "obs": [], "reward": []}
    for action in actions.astype(np.float32):
        data.qpos[:], data.qvel[:] = np.asarray(state.qpos), np.asarray(state.qvel)
        data.act[:], data.qacc_warmstart[:] = (
            np.asarray(state.act),
            np.asarray(state.qacc_warmstart),
        )
        data.time, data.ctrl[:] = float(state.time), action
        qpos_before = data.qpos.copy()
        for _ in range(FRAME_SKIP):
            mujoco.mj_step(model, data)
        if spec.uses_contact_forces:
            mujoco.mj_rnePostConstraint(model, data)
        reward_c = spec.reward(qpos_before, data.qpos, data.cfrc_ext, action, task)
        obs_c = spec.observe(data.qpos, data.qvel, data.xpos[torso])

        obs, state, reward, _ = step(key, state, jnp.asarray(action), task)
        errors["qpos"].append(np.abs(np.asarray(state.qpos) - data.qpos).max())
        errors["qvel"].append(np.abs(np.asarray(state.qvel) - data.qvel).max())
        errors["obs"].append(np.abs(np.asarray(obs) - np.asarray(obs_c)).max())
        errors["reward"].append(abs(float(reward) - float(reward_c)))
    errors = {k: np.asarray(v) for k, v in errors.items()}
    report = {k: (float(np.median(v)), float(np.percentile(v, 90)), float(v.max())) for k, v in
              errors.items()}  # fmt: skip
    for quantity, per_step in errors.items():
        assert np.median(per_step) < TYPICAL_ATOL, (quantity, report)
        assert np.percentile(per_step, 90) < P90_ATOL, (quantity, report)
    tight = np.all([per_step < TYPICAL_ATOL for per_step in errors.values()], axis=0)
    assert tight.mean() > TIGHT_FRACTION, report
    # The episode really moved: a cross-check of a robot standing still would prove little.
    assert np.abs(data.qpos[0] - model.qpos0[0]) > 0.05


def test_env_registry_lists_every_locomotion_task():
    assert set(LOCOMOTION_ENV_NAMES) == set(LOCOMOTION)


def test_reward_functions_on_hand_cases():
    action = np.zeros(8)
    before, after = np.zeros(15), np.zeros(15)
    after[0], after[1] = 0.1, 0.0  # 0.1 m along +x in one env step of 0.05 s: 2 m/s
    cfrc = np.zeros((9, 6))
    ant_dir = LOCOMOTION["ant_dir"].reward
    east, north = AngleTask(jnp.asarray(0.0)), AngleTask(jnp.asarray(np.pi / 2))
    assert float(ant_dir(before, after, cfrc, action, east)) == pytest.approx(2.0 + 1.0)
    assert float(ant_dir(before, after, cfrc, action, north)) == pytest.approx(1.0, abs=1e-6)

    cheetah_before, cheetah_after = np.zeros(9), np.zeros(9)
    cheetah_after[0] = -0.05  # 1 m/s backwards
    a = np.full(6, 0.5)  # control cost 0.05 * 6 * 0.25 = 0.075
    backward = DirectionTask(jnp.asarray(-1.0))
    cheetah_dir = LOCOMOTION["cheetah_dir"].reward
    assert float(cheetah_dir(cheetah_before, cheetah_after, None, a, backward)) == pytest.approx(
        1.0 - 0.075
    )
    cheetah_vel = LOCOMOTION["cheetah_vel"].reward
    target = VelocityTask(jnp.asarray(2.0))
    assert float(cheetah_vel(cheetah_before, cheetah_after, None, a, target)) == pytest.approx(
        -3.0 - 0.075
    )

    at_goal = GoalTask(jnp.asarray([0.1, 0.0]))
    cfrc[1, 0] = 3.0  # clipped to 1 before the contact cost 0.5e-3 * 1
    ant_goal = LOCOMOTION["ant_goal"].reward
    assert float(ant_goal(before, after, cfrc, action, at_goal)) == pytest.approx(-0.5e-3, abs=1e-7)


def test_ant_terminates_when_its_torso_leaves_the_height_range():
    done = LOCOMOTION["ant_dir"].done
    qpos, qvel = np.zeros(15), np.zeros(14)
    for height, expected in [(0.5, False), (0.19, True), (1.01, True), (np.nan, True)]:
        qpos[2] = height
        assert bool(done(qpos, qvel)) is expected


def test_locomotion_task_spaces_take_the_foundation_restrictions():
    key = jax.random.PRNGKey(0)
    ant = LOCOMOTION["ant_dir"].task_space
    arc = make_sampler(ant, parse_restriction("range:0,90", ant))(key, 500)
    rest = make_sampler(ant, parse_restriction("complement:0,90", ant))(key, 500)
    arc_deg, rest_deg = np.degrees(np.asarray(arc.angle)), np.degrees(np.asarray(rest.angle))
    assert arc_deg.min() >= 0 and arc_deg.max() <= 90 and arc_deg.std() > 15
    assert rest_deg.min() > 90 and rest_deg.max() <= 360
    fixed = make_sampler(ant, parse_restriction("finite:4", ant))(key, 500)
    assert len(np.unique(np.asarray(fixed.angle))) == 4

    fwd_back = LOCOMOTION["ant_dir_fwd_back"].task_space
    angles = np.asarray(make_sampler(fwd_back, parse_restriction("full", fwd_back))(key, 200).angle)
    assert set(np.round(np.degrees(angles)).tolist()) == {0.0, 180.0}

    vel = LOCOMOTION["cheetah_vel"].task_space
    low = np.asarray(make_sampler(vel, parse_restriction("range:0,1.5", vel))(key, 300).velocity)
    assert low.max() <= 1.5 and low.min() >= 0
    with pytest.raises(RestrictionError):
        parse_restriction("range:0,4", vel)

    goals = LOCOMOTION["ant_goal"].task_space
    radii = np.linalg.norm(np.asarray(goals.sample(key)[0]))
    assert radii <= 3.0
    batch = np.asarray(make_sampler(goals, parse_restriction("full", goals))(key, 2000).goal)
    assert np.linalg.norm(batch, axis=1).max() <= 3.0
    # r = 3 sqrt(U): uniform on the disk, so a quarter of goals lie within radius 1.5
    assert np.mean(np.linalg.norm(batch, axis=1) < 1.5) == pytest.approx(0.25, abs=0.04)
    quadrant = make_sampler(goals, parse_restriction("range:0,3,0,3", goals))(key, 300).goal
    assert np.all(np.asarray(quadrant) >= 0)

    direction = LOCOMOTION["cheetah_dir"].task_space
    forward = make_sampler(direction, parse_restriction("range:0,1", direction))(key, 50)
    assert np.all(np.asarray(forward.direction) == 1.0)


SMOKE_FLAGS = [
    "--horizon=6",
    "--rollouts_per_task=2",
    "--meta_batch_size=2",
    "--hidden_sizes=8",
    "--num_eval_tasks=2",
    "--eval_adapt_steps=1",
    "--num_iterations=1",
    "--log_every=1",
    "--cg_iterations=2",
    "--ppo_steps=2",
    "--ppo_epochs=2",
    # PEARL
    "--latent_size=2",
    "--encoder_hidden_sizes=8",
    "--initial_steps=6",
    "--num_tasks_sample=2",
    "--prior_steps=6",
    "--posterior_steps=6",
    "--grad_steps=2",
    "--batch_size=4",
    "--context_batch_size=4",
    "--replay_capacity=64",
    "--eval_episodes=2",
]


@pytest.mark.slow
def test_algorithms_run_one_iteration_on_every_locomotion_env(tmp_path):
    """MAML-TRPO, MAML-PPO, RL² and PEARL from the Figure-1 flag files, shrunk, on the native
    MuJoCo C path (the CPU default) and once on MJX (MJX and C step alike: test_native_env); two
    processes at a time (compilation is mostly single-threaded). These runs check that
    everything runs and logs, not speed: they compile with XLA's backend optimisations off
    (`--xla_backend_optimization_level=0`, about half the compile time)."""
    cases = [
        ("maml_trpo_cheetah_dir", "cheetah_dir", "mjx"),
        ("pearl_cheetah_vel", "cheetah_vel", "native"),
        ("maml_ppo_ant_dir", "ant_dir", "native"),
        ("rl2_cheetah_dir", "ant_goal", "native"),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0",
    }
    results = {}
    for group in (cases[:2], cases[2:]):
        running = []
        for flagfile, env_name, physics in group:
            out_dir = tmp_path / f"{flagfile}_{env_name}_{physics}"
            command = [
                sys.executable, "-m", "experiments.main",
                f"--flagfile={REPO}/experiments/flags/{flagfile}.flags",
                f"--env={env_name}", f"--physics={physics}", f"--out_dir={out_dir}",
                *SMOKE_FLAGS,
            ]  # fmt: skip
            running.append(((flagfile, env_name, physics), out_dir, subprocess.Popen(
                command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True,
            )))  # fmt: skip
        for case, out_dir, process in running:
            output, _ = process.communicate(timeout=600)
            assert process.returncode == 0, output[-3000:]
            results[case] = out_dir
    for (flagfile, env_name, _), out_dir in results.items():
        with open(out_dir / "summary.json") as f:
            summary = json.load(f)
        member = summary["members"][0]
        if flagfile.startswith("rl2"):
            curve = ("eval/return_episode0", "eval/return_episode1")
            steps = 2 * 2 * 6  # tasks x episodes per trial x horizon
        elif flagfile.startswith("pearl"):
            curve = ("eval/return_episode0", "eval/return_episode1")
            # 100 tasks x 1 initial episode + 2 sampled tasks x (1 prior + 1 posterior episode)
            steps = (100 + 2 * 2) * 6
        else:
            curve = ("eval/return_step0", "eval/return_step1")
            steps = 2 * 2 * 6 * 2  # tasks x episodes x horizon x (1 + 1)
        for metric in ("train/return", "eval/return", *curve):
            assert np.isfinite(member[metric]["mean"]), (env_name, metric)
        assert summary["env"] == env_name
        # reference levels on the run's evaluation tasks: standing still (on Cheetah-Dir the
        # task-agnostic bound 0 below); no reported upper level at the smoke runs' horizon
        levels = summary["levels"]["eval"]
        lower = "task_agnostic_bound" if env_name == "cheetah_dir" else "zero_action"
        assert (levels["lower"], levels["upper"]) == (lower, None)
        assert np.isfinite(levels["values"]["zero_action"])
        if env_name == "cheetah_dir":  # the evaluation's two directions, each on its own
            for direction in ("eval/return_dir_forward", "eval/return_dir_backward"):
                assert np.isfinite(member[direction]["mean"]), direction
        header = (out_dir / "metrics.csv").read_text().splitlines()[0].split(",")
        assert header[:4] == ["iteration", "env_steps", "seed", "meta_batch_size"]
        assert member["env_steps"] == steps
        assert (out_dir / "plots").is_dir() and (out_dir / "checkpoints").is_dir()


def test_models_load_quietly_and_equal_the_compilers_total_mass_scaling():
    """load_model drops the deprecated `settotalmass` attribute and scales the masses itself:
    every numeric array equals the model MuJoCo compiles from the original XML; importing the
    envs prints nothing (no warp import lines, no deprecation warning)."""
    import mujoco

    from metarl_jax.envs.locomotion import load_model, model_path

    for robot in ("cheetah", "ant"):
        ours = load_model(robot)
        compiled = mujoco.MjModel.from_xml_path(model_path(robot))
        compiled.opt.solver = ours.opt.solver
        compiled.opt.iterations, compiled.opt.ls_iterations = (
            ours.opt.iterations,
            ours.opt.ls_iterations,
        )
        for name in dir(ours):
            value = getattr(ours, name, None)
            if isinstance(value, np.ndarray) and value.dtype.kind in "fi":
                np.testing.assert_array_equal(value, getattr(compiled, name), err_msg=name)
    quiet = subprocess.run(
        [sys.executable, "-c", "from metarl_jax.envs import make_env; make_env('ant_dir')"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == "", quiet
