"""Pictures of adaptation: what a policy does at each stage of adaptation, per environment.

`write_adaptation_pictures(out_dir, env, trajectories)` takes the episodes of
`metarl_jax.runs.play_adaptation` (stage labels, tasks, obs, actions, rewards, valid, reset keys)
and writes:

- navigation: `navigation_paths.png`, the paths to several goals at every stage;
- bandit: `bandit_pulls.png`, the arms pulled over the trial against the arms' probabilities;
- locomotion: `<env>_progress.png`, the torso's progress per task and stage, and
  `<env>_task<i>.gif`, the body before and after adaptation, drawn by `mujoco.Renderer` where a
  GL backend works (MUJOCO_GL, osmesa by default) and by matplotlib where none does.

It returns [(path, what drew it)], so a caller can say which renderer was used.
"""

import os

import numpy as np

from experiments.pictures.bandit import bandit_figure
from experiments.pictures.locomotion import RENDERERS, animation, progress_figure
from experiments.pictures.navigation import navigation_figure
from experiments.pictures.replay import replay_episodes, replay_mismatch
from metarl_jax.envs import LOCOMOTION_ENV_NAMES

MATPLOTLIB = "matplotlib (Agg)"
# the animation's default: about 50 rendered frames for two stages, under 10 s with OSMesa
FRAMES_PER_EPISODE = 25


def write_adaptation_pictures(
    out_dir: str,
    env,
    trajectories,
    renderer: str = "auto",
    *,
    max_tasks: int = 6,
    animate_tasks: int = 1,
    frame_every: int | None = None,
    frame_size: tuple[int, int] = (320, 240),
) -> list[tuple[str, str]]:
    """The pictures of `trajectories` (played in `env`, wrappers included) in `out_dir`.

    `renderer` draws the locomotion animation: "auto" (MuJoCo's renderer, else matplotlib),
    "mujoco" (an error where it fails) or "matplotlib". `max_tasks` tasks appear in the figures,
    the first `animate_tasks` are animated, every `frame_every`-th step (default: 25 frames per
    episode) at `frame_size` (width, height) per stage.
    """
    if renderer not in RENDERERS:
        raise ValueError(f"renderer {renderer!r}; known: {RENDERERS}")
    os.makedirs(out_dir, exist_ok=True)
    if env.name == "navigation":
        replay = replay_episodes(env, trajectories)
        path = os.path.join(out_dir, "navigation_paths.png")
        return [(navigation_figure(path, trajectories, replay.obs[..., :2], max_tasks), MATPLOTLIB)]
    if env.name == "bandit":
        path = os.path.join(out_dir, "bandit_pulls.png")
        return [(bandit_figure(path, trajectories, max_tasks), MATPLOTLIB)]
    if env.name in LOCOMOTION_ENV_NAMES:
        return _locomotion_pictures(
            out_dir, env, trajectories, renderer, max_tasks, animate_tasks, frame_every, frame_size
        )
    raise ValueError(f"no pictures for env {env.name!r}")


def _locomotion_pictures(out_dir, env, trajectories, renderer, max_tasks, animate, every, size):
    replay = replay_episodes(env, trajectories)
    mismatch = replay_mismatch(replay, trajectories)
    qpos = np.asarray(replay.qpos, np.float64)
    path = os.path.join(out_dir, f"{env.name}_progress.png")
    written = [
        (
            progress_figure(path, env, trajectories, qpos, max_tasks),
            f"{MATPLOTLIB}; states replayed, largest observation difference {mismatch:.2g}",
        )
    ]
    every = every or max(1, round(trajectories.actions.shape[2] / FRAMES_PER_EPISODE))
    for task in range(min(animate, qpos.shape[1])):
        path = os.path.join(out_dir, f"{env.name}_task{task}.gif")
        written.append(animation(path, env, trajectories, qpos, task, every, renderer, size))
    return written


__all__ = ["replay_episodes", "replay_mismatch", "write_adaptation_pictures"]
