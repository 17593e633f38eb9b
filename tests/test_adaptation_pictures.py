"""Pictures of adaptation: the figures and animations are written, a locomotion replay reproduces
the recorded observations, and the animation falls back to a plain drawing where MuJoCo's GL
renderer cannot run."""

import ctypes.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from experiments.pictures import replay_episodes, replay_mismatch, write_adaptation_pictures
from metarl_jax.algos.registry import algorithm_entry
from metarl_jax.envs import make_env
from metarl_jax.rl.rollout import run_episodes
from metarl_jax.runs import AdaptationTrajectories, step_labels
from metarl_jax.tasks import BanditTask, GoalTask

from .conftest import TINY_HORIZON, run_main, tiny_config, tiny_navigation
from .run_dirs import env_options, make_run_dir

HORIZON = 16


def record(env, num_tasks: int, labels, horizon: int, act, seed: int = 0):
    """Episodes as play_adaptation records them: one per stage per task, with the key each reset
    got. `act(stage, key, obs, task) -> actions [1, ...]`."""
    key = jax.random.PRNGKey(seed)
    tasks = jax.vmap(env.task_space.sample)(jax.random.split(key, num_tasks))

    def one(stage, key, task):
        steps = run_episodes(env, lambda k, o: (act(stage, k, o, task), ()), task, key, 1, horizon)
        reset_key = jax.random.split(jax.random.split(key)[0], 1)[0]
        fields = (steps.obs, steps.action, steps.reward, steps.valid)
        return (*(f[:, 0] for f in fields), reset_key)

    num_stages = len(labels)
    keys = jax.vmap(lambda s: jax.random.split(jax.random.fold_in(key, s), num_tasks))(
        jnp.arange(num_stages)
    )
    per_task = jax.vmap(one, in_axes=(None, 0, 0))
    fields = jax.jit(jax.vmap(per_task, in_axes=(0, 0, None)))(jnp.arange(num_stages), keys, tasks)
    obs, actions, rewards, valid, keys = fields
    return AdaptationTrajectories(tuple(labels), tasks, obs, actions, rewards, valid, keys)


def random_actions(env):
    def act(stage, key, obs, task):
        del task
        return jax.random.uniform(key, (obs.shape[0], env.action_size), minval=-1, maxval=1)

    return act


def assert_png(path):
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100 and image.size[1] > 100


def assert_gif(path, min_frames=2):
    with Image.open(path) as image:
        assert image.format == "GIF" and image.n_frames >= min_frames


@pytest.fixture(scope="module")
def cheetah():
    env = make_env("cheetah_dir", horizon=HORIZON)
    return env, record(env, 2, step_labels(2), HORIZON, random_actions(env))


def navigation_episodes(num_stages: int, num_tasks: int, horizon: int, seed: int = 0):
    """Episodes that head for the goal more directly at each later stage, made in numpy as the
    env plays them (position += clip(action, -0.1, 0.1), from the origin)."""
    rng = np.random.default_rng(seed)
    goals = rng.uniform(-0.5, 0.5, (num_tasks, 2)).astype(np.float32)
    noise = rng.normal(0.0, 0.06, (num_stages, num_tasks, horizon, 2))
    heading = np.linspace(0.0, 0.08, num_stages)[:, None, None] * goals[None] / 0.5
    actions = (heading[:, :, None] + noise).astype(np.float32)
    positions = np.zeros((num_stages, num_tasks, horizon, 2), np.float32)
    for t in range(1, horizon):
        positions[:, :, t] = positions[:, :, t - 1] + np.clip(actions[:, :, t - 1], -0.1, 0.1)
    return AdaptationTrajectories(
        step_labels(num_stages),
        GoalTask(goals),
        positions,
        actions,
        np.zeros((num_stages, num_tasks, horizon), np.float32),  # not drawn
        np.ones((num_stages, num_tasks, horizon), np.float32),
        np.zeros((num_stages, num_tasks, 2), np.uint32),
    )


def test_navigation_figure_shows_every_stage(tmp_path):
    env = make_env("navigation", horizon=HORIZON)
    trajectories = navigation_episodes(3, 4, HORIZON)
    written = write_adaptation_pictures(str(tmp_path), env, trajectories)
    assert [p.rsplit("/", 1)[-1] for p, _ in written] == ["navigation_paths.png"]
    assert_png(written[0][0])
    assert "matplotlib" in written[0][1]
    replay = replay_episodes(env, trajectories)  # positions: the replayed observations
    assert replay_mismatch(replay, trajectories) < 1e-6


def test_bandit_figure(tmp_path):
    """Pulls made in numpy: greedier at the later stage, rewards drawn with the arms' odds."""
    rng = np.random.default_rng(0)
    num_stages, num_tasks, horizon, num_arms = 2, 3, 10, 4
    probs = rng.uniform(size=(num_tasks, num_arms)).astype(np.float32)
    shape = (num_stages, num_tasks, horizon)
    greedy = rng.uniform(size=shape) < np.array([0.2, 0.8])[:, None, None]
    explore = rng.integers(0, num_arms, shape)
    pulls = np.where(greedy, probs.argmax(axis=1)[None, :, None], explore)
    odds = np.take_along_axis(probs[None], pulls, axis=2)
    rewards = (rng.uniform(size=pulls.shape) < odds).astype(np.float32)
    trajectories = AdaptationTrajectories(
        ("episode 1", "episode 2"),
        BanditTask(probs),
        np.zeros((num_stages, num_tasks, horizon, 1), np.float32),
        pulls,
        rewards,
        np.ones_like(rewards),
        np.zeros((num_stages, num_tasks, 2), np.uint32),
    )
    env = make_env("bandit", num_arms=num_arms)
    written = write_adaptation_pictures(str(tmp_path), env, trajectories)
    assert [p.rsplit("/", 1)[-1] for p, _ in written] == ["bandit_pulls.png"]
    assert_png(written[0][0])


def test_locomotion_replay_reproduces_the_recorded_observations(cheetah):
    env, trajectories = cheetah
    replay = replay_episodes(env, trajectories)
    assert replay.qpos.shape == (2, 2, HORIZON + 1, 9)
    assert replay_mismatch(replay, trajectories) < 1e-6
    # the replayed states are the recorded ones: the observation holds qpos[1:]
    np.testing.assert_array_equal(
        replay.qpos[:, :, 1:HORIZON, 1:], np.asarray(trajectories.obs)[:, :, 1:, :8]
    )


def test_a_replay_from_other_actions_does_not_match(cheetah):
    env, trajectories = cheetah
    other = trajectories._replace(actions=-trajectories.actions)
    assert replay_mismatch(replay_episodes(env, other), trajectories) > 1e-3


def test_locomotion_pictures_with_the_matplotlib_drawing(cheetah, tmp_path):
    env, trajectories = cheetah
    written = write_adaptation_pictures(
        str(tmp_path), env, trajectories, renderer="matplotlib", frame_every=4
    )
    (progress, replayed), (gif, drawn) = written
    assert progress.endswith("cheetah_dir_progress.png") and gif.endswith("cheetah_dir_task0.gif")
    assert_png(progress)
    assert "replayed" in replayed
    assert_gif(gif, min_frames=HORIZON // 4)
    assert drawn.startswith("matplotlib drawing")


def test_the_animation_falls_back_when_the_gl_backend_fails(cheetah, tmp_path, monkeypatch):
    env, trajectories = cheetah
    monkeypatch.setenv("MUJOCO_GL", "disabled")  # MuJoCo then has no GL context to render in
    written = write_adaptation_pictures(str(tmp_path), env, trajectories, frame_every=8)
    gif, used = written[-1]
    assert used.startswith("matplotlib drawing (MuJoCo GL renderer unavailable")
    assert "MUJOCO_GL=disabled" in used
    assert_gif(gif)
    with pytest.raises(RuntimeError, match="unavailable"):
        write_adaptation_pictures(str(tmp_path), env, trajectories, renderer="mujoco")


def test_unknown_renderer_is_refused(cheetah, tmp_path):
    env, trajectories = cheetah
    with pytest.raises(ValueError, match="renderer"):
        write_adaptation_pictures(str(tmp_path), env, trajectories, renderer="povray")


@pytest.mark.skipif(not ctypes.util.find_library("OSMesa"), reason="libosmesa6 not installed")
def test_osmesa_renders_the_animation(cheetah, tmp_path, monkeypatch):
    env, trajectories = cheetah
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    written = write_adaptation_pictures(str(tmp_path), env, trajectories, frame_every=4)
    gif, used = written[-1]
    assert used.startswith("mujoco.Renderer, MUJOCO_GL=osmesa")
    assert_gif(gif, min_frames=HORIZON // 4)
    with Image.open(gif) as image:  # the rendered scene, not a blank frame
        assert len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 50


@pytest.mark.slow
def test_ant_replay_and_pictures(tmp_path):
    env = make_env("ant_dir", horizon=HORIZON)
    trajectories = record(env, 2, step_labels(2), HORIZON, random_actions(env))
    replay = replay_episodes(env, trajectories)
    assert replay_mismatch(replay, trajectories) < 1e-6
    written = write_adaptation_pictures(
        str(tmp_path), env, trajectories, renderer="matplotlib", frame_every=4
    )
    assert_png(written[0][0])
    assert_gif(written[1][0])


def test_the_replay_follows_a_recording_that_rounded_differently(cheetah):
    """Physics compiled otherwise (MJX batched differently, another device) rounds otherwise, and
    an ulp grows into other motion: the replay takes each step's state from the recording."""
    env, trajectories = cheetah
    noise = jax.random.normal(jax.random.PRNGKey(1), trajectories.obs.shape) * 1e-6
    rounded = trajectories._replace(obs=trajectories.obs * (1 + noise))
    replay = replay_episodes(env, rounded)
    assert 0 < replay_mismatch(replay, rounded) < 1e-3
    np.testing.assert_array_equal(replay.qpos[:, :, :HORIZON, 1:], rounded.obs[..., :8])


@pytest.mark.slow
def test_evaluate_render_draws_a_trained_runs_adaptation(tmp_path):
    run_dir = str(tmp_path / "run")
    os.makedirs(run_dir)
    make_run_dir(
        run_dir, algorithm_entry("maml_trpo"), tiny_config(), tiny_navigation(),
        env_options("navigation", TINY_HORIZON), (0,), (2,), iterations=1,
    )  # fmt: skip
    done = run_main(
        f"--run={run_dir}", "--render", "--render_tasks=2", "--adapt_steps=2", "--name=pics",
        module="experiments.evaluate",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    png = os.path.join(run_dir, "evaluations", "pics_pictures", "navigation_paths.png")
    assert f"picture {png} (matplotlib" in done.stdout
    assert_png(png)
