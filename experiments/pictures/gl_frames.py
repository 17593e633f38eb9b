"""MuJoCo's OpenGL renderer in a process of its own (run as a script: `python gl_frames.py DIR`).

MuJoCo picks its GL backend from MUJOCO_GL when it is first imported, and a process that
imported it already (every locomotion env does) cannot switch; a backend that fails (EGL without
a GPU, OSMesa without libosmesa6) may also fail loudly. So the frames are drawn here, in a child
process started with MUJOCO_GL set, and the parent falls back to a plain drawing when this exits
non-zero.

DIR holds model.mjb, qpos.npy [F, nq] and camera.json; this writes frames.npy [F, H, W, 3] uint8
and timing.json (seconds per frame).
"""

import json
import os
import sys
import time

import mujoco
import numpy as np


def render(directory: str) -> None:
    model = mujoco.MjModel.from_binary_path(os.path.join(directory, "model.mjb"))
    qpos = np.load(os.path.join(directory, "qpos.npy"))
    with open(os.path.join(directory, "camera.json")) as f:
        camera_settings = json.load(f)
    data = mujoco.MjData(model)
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    camera.distance = camera_settings["distance"]
    camera.azimuth = camera_settings["azimuth"]
    camera.elevation = camera_settings["elevation"]
    renderer = mujoco.Renderer(model, camera_settings["height"], camera_settings["width"])
    frames = np.empty((len(qpos), renderer.height, renderer.width, 3), np.uint8)
    start = time.perf_counter()
    try:
        for i, q in enumerate(qpos):
            data.qpos[:] = q
            mujoco.mj_forward(model, data)
            camera.lookat[:2] = data.xpos[camera_settings["body"], :2]
            camera.lookat[2] = camera_settings["lookat_z"]
            renderer.update_scene(data, camera=camera)
            frames[i] = renderer.render()
    finally:
        renderer.close()
    seconds = (time.perf_counter() - start) / max(len(qpos), 1)
    np.save(os.path.join(directory, "frames.npy"), frames)
    with open(os.path.join(directory, "timing.json"), "w") as f:
        json.dump({"seconds_per_frame": seconds, "backend": os.environ.get("MUJOCO_GL", "")}, f)


if __name__ == "__main__":
    render(sys.argv[1])
