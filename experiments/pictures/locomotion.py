"""Locomotion: the torso's progress over each episode per task and stage (a line figure), and an
animation of the body before and after adaptation (a GIF), both from the replayed states."""

import json
import os
import subprocess
import sys
import tempfile

import mujoco
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from experiments.pictures.drawing import draw_frames
from experiments.pictures.style import (
    figure_legend,
    last_valid,
    panel_grid,
    save,
    stage_colors,
    task_at,
)
from metarl_jax.envs.locomotion import FRAME_SKIP, LOCOMOTION, load_model, torso_body

DT = FRAME_SKIP * 0.01  # seconds per env step (the models' 0.01 s timestep, checked by the envs)
CAMERAS = {
    "cheetah": {"distance": 3.0, "azimuth": 90.0, "elevation": -12.0, "lookat_z": 0.4},
    "ant": {"distance": 4.5, "azimuth": 90.0, "elevation": -30.0, "lookat_z": 0.3},
}
RENDERERS = ("auto", "mujoco", "matplotlib")
GL_TIMEOUT_S = 600
BANNER = 20  # pixels above and below the frames for their labels


def progress(env_name: str, qpos: np.ndarray, task) -> tuple[np.ndarray, str]:
    """What the task rewards, per state (qpos [..., nq] -> [...]), and its axis label: the
    torso's x (cheetah), its displacement along the task's direction (Ant-Dir), its distance to
    the goal (Ant-Goal)."""
    if env_name.startswith("cheetah"):
        return qpos[..., 0], "torso x position (m)"
    if env_name.startswith("ant_dir"):
        angle = float(np.asarray(task.angle))
        direction = np.array([np.cos(angle), np.sin(angle)])
        return qpos[..., :2] @ direction, "torso position along the task's direction (m)"
    goal = np.asarray(task.goal)
    return np.linalg.norm(qpos[..., :2] - goal, axis=-1), "torso's distance to the goal (m)"


def task_caption(env_name: str, task) -> str:
    if env_name == "cheetah_dir":
        return "run forward" if float(np.asarray(task.direction)) > 0 else "run backward"
    if env_name == "cheetah_vel":
        return f"target velocity {float(np.asarray(task.velocity)):.2f} m/s"
    if env_name.startswith("ant_dir"):
        return f"direction {np.degrees(float(np.asarray(task.angle))):.0f}°"
    goal = np.asarray(task.goal)
    return f"goal ({goal[0]:+.2f}, {goal[1]:+.2f})"


def progress_figure(path: str, env, trajectories, qpos: np.ndarray, max_tasks: int) -> str:
    """One panel per task, one line per stage: the torso's progress over the episode."""
    labels = trajectories.stage_labels
    num_tasks = min(max_tasks, qpos.shape[1])
    lengths = last_valid(trajectories.valid)
    colors = stage_colors(len(labels))
    fig, axes = panel_grid(num_tasks, width=4.2, height=3.2)
    for n, ax in enumerate(axes):
        task = task_at(trajectories.tasks, n)
        for s, label in enumerate(labels):
            values, y_label = progress(env.name, qpos[s, n, : lengths[s, n] + 1], task)
            ax.plot(np.arange(len(values)) * DT, values, color=colors[s], lw=1.6, label=label)
        if env.name == "cheetah_vel":
            end = (qpos.shape[2] - 1) * DT
            target = float(np.asarray(task.velocity))
            start = float(qpos[0, n, 0, 0])
            ax.plot(
                [0, end], [start, start + target * end], "k--", lw=1, label="at target velocity"
            )
        ax.set_title(f"task {n}: {task_caption(env.name, task)}", fontsize=10)
        ax.set_xlabel("time (s)")
        ax.set_ylabel(y_label, fontsize=9)
        ax.grid(alpha=0.3)
    figure_legend(fig, axes[0])
    fig.suptitle(f"{env.name}: the torso over each episode, at each stage of adaptation")
    return save(fig, path)


def animation_qpos(qpos: np.ndarray, lengths: np.ndarray, stages, task: int, every: int):
    """The states drawn: [F, len(stages), nq], every `every`-th step from the start; an episode
    that ended stays at its last state."""
    times = np.arange(0, qpos.shape[2], every)
    return np.stack(
        [qpos[s, task, np.minimum(times, lengths[s, task])] for s in stages], axis=1
    ), times


def gl_frames(model: mujoco.MjModel, robot: str, qpos: np.ndarray, width: int, height: int):
    """Frames [F, H, W, 3] from mujoco.Renderer in a child process with MUJOCO_GL (osmesa unless
    set); (frames, description) or (None, why it failed)."""
    with tempfile.TemporaryDirectory() as directory:
        mujoco.mj_saveModel(model, os.path.join(directory, "model.mjb"), None)
        np.save(os.path.join(directory, "qpos.npy"), qpos)
        camera = {**CAMERAS[robot], "width": width, "height": height, "body": torso_body(model)}
        with open(os.path.join(directory, "camera.json"), "w") as f:
            json.dump(camera, f)
        child_env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL") or "osmesa"}
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gl_frames.py")
        try:
            done = subprocess.run(
                [sys.executable, script, directory],
                env=child_env,
                capture_output=True,
                text=True,
                timeout=GL_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            return None, f"MuJoCo GL renderer timed out after {GL_TIMEOUT_S} s"
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["no output"]
            return (
                None,
                f"MuJoCo GL renderer unavailable (MUJOCO_GL={child_env['MUJOCO_GL']}): {lines[-1]}",
            )
        frames = np.load(os.path.join(directory, "frames.npy"))
        with open(os.path.join(directory, "timing.json")) as f:
            timing = json.load(f)
    backend = child_env["MUJOCO_GL"]
    return (
        frames,
        f"mujoco.Renderer, MUJOCO_GL={backend}, {timing['seconds_per_frame']:.3f} s/frame",
    )


def body_frames(env_name: str, qpos: np.ndarray, renderer: str, width: int, height: int):
    """Frames [F, H, W, 3] of the robot at each qpos [F, nq] and which renderer drew them."""
    if renderer not in RENDERERS:
        raise ValueError(f"renderer {renderer!r}; known: {RENDERERS}")
    robot = LOCOMOTION[env_name].robot
    model = load_model(robot)
    why = "renderer='matplotlib' asked for"
    if renderer in ("auto", "mujoco"):
        frames, why = gl_frames(model, robot, qpos, width, height)
        if frames is not None:
            return frames, why
        if renderer == "mujoco":
            raise RuntimeError(why)
    return draw_frames(model, robot, qpos, width, height), f"matplotlib drawing ({why})"


def write_gif(path: str, tiles: np.ndarray, labels, caption: str, times: np.ndarray) -> str:
    """tiles [F, K, H, W, 3] side by side under their labels, the task and the time beneath; one
    GIF frame per row of tiles, played at the episode's speed."""
    num_frames, num_tiles, height, width = tiles.shape[:4]
    font = _font()
    images = []
    for i in range(num_frames):
        image = Image.new("RGB", (num_tiles * width, height + 2 * BANNER), (255, 255, 255))
        image.paste(Image.fromarray(np.concatenate(list(tiles[i]), axis=1)), (0, BANNER))
        draw = ImageDraw.Draw(image)
        for k, label in enumerate(labels):
            draw.text((k * width + 5, 3), label, fill=(0, 0, 0), font=font)
            if k:
                draw.line((k * width, 0, k * width, height + 2 * BANNER), fill=(0, 0, 0), width=2)
        footer = f"{caption}   t = {times[i] * DT:.2f} s"
        draw.text((5, height + BANNER + 3), footer, fill=(0, 0, 0), font=font)
        images.append(image)
    step_ms = round(1000 * DT * float(times[1] - times[0])) if len(times) > 1 else 100
    images[0].save(path, save_all=True, append_images=images[1:], duration=step_ms, loop=0)
    return path


def _font():
    try:
        return ImageFont.load_default(size=14)
    except TypeError:  # pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def animation(path, env, trajectories, qpos, task: int, every: int, renderer: str, size):
    """The GIF of one task: the first and the last stage side by side. (path, renderer used)."""
    labels = trajectories.stage_labels
    stages = sorted({0, len(labels) - 1})
    states, times = animation_qpos(qpos, last_valid(trajectories.valid), stages, task, every)
    width, height = size
    flat, used = body_frames(
        env.name, states.reshape(-1, states.shape[-1]), renderer, width, height
    )
    tiles = flat.reshape(len(times), len(stages), height, width, 3)
    caption = f"task {task}: {task_caption(env.name, task_at(trajectories.tasks, task))}"
    return write_gif(path, tiles, [labels[s] for s in stages], caption, times), used
