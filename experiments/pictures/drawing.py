"""A plain drawing of a MuJoCo body with matplotlib: what the animation shows where no GL backend
renders. Each geom of the body is drawn from its world pose (`geom_xpos`, `geom_xmat`) and size:
a capsule as a thick round-capped segment, a sphere as a disc. The planar cheetah is seen from
the side (x, z), the ant from above (x, y); the window follows the torso over a grid fixed to
the ground, so the motion shows."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mujoco
import numpy as np
from matplotlib.patches import Circle

# per robot: the world axes drawn (horizontal, vertical), the window's half width and height in
# metres, its vertical centre (None: follow the torso), the ground line's height (None: no line)
VIEWS = {
    "cheetah": ((0, 2), 1.6, 1.2, 0.45, 0.0),
    "ant": ((0, 1), 1.8, 1.35, None, None),
}
BODY_COLOR = "#6b5440"
GRID_SPACING = 0.5


def draw_frames(model: mujoco.MjModel, robot: str, qpos: np.ndarray, width: int, height: int):
    """Frames [F, height, width, 3] uint8 of the body at each qpos [F, nq]."""
    (h_axis, v_axis), half_w, half_h, centre_v, ground = VIEWS[robot]
    data = mujoco.MjData(model)
    geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] != 0]
    torso = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "torso")
    dpi = 100
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_facecolor("#dfe6ee")
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    points_per_metre = width * 72 / dpi / (2 * half_w)
    frames = np.empty((len(qpos), height, width, 3), np.uint8)
    for i, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        ax.cla()
        centre = data.xpos[torso]
        c_h = centre[h_axis]
        c_v = centre[v_axis] if centre_v is None else centre_v
        ax.set_xlim(c_h - half_w, c_h + half_w)
        ax.set_ylim(c_v - half_h, c_v + half_h)
        _ground(ax, c_h, c_v, half_w, half_h, ground)
        for g in _depth_order(data, geoms, v_axis):
            _draw_geom(ax, model, data, g, (h_axis, v_axis), points_per_metre)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.canvas.draw()
        frames[i] = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    return frames


def _depth_order(data, geoms, v_axis: int) -> list[int]:
    """Far geoms first: from the side (v = z) the larger y is farther; from above the lower z."""
    depth = data.geom_xpos[geoms, 1] if v_axis == 2 else -data.geom_xpos[geoms, 2]
    return [geoms[j] for j in np.argsort(-depth if v_axis == 2 else depth)]


def _ground(ax, c_h: float, c_v: float, half_w: float, half_h: float, ground) -> None:
    first = np.floor((c_h - half_w) / GRID_SPACING) * GRID_SPACING
    for x in np.arange(first, c_h + half_w + GRID_SPACING, GRID_SPACING):
        ax.axvline(x, color="white", lw=1.0, zorder=0)
    if ground is None:
        first = np.floor((c_v - half_h) / GRID_SPACING) * GRID_SPACING
        for y in np.arange(first, c_v + half_h + GRID_SPACING, GRID_SPACING):
            ax.axhline(y, color="white", lw=1.0, zorder=0)
    else:
        ax.axhspan(c_v - half_h - 1.0, ground, color="#9aa5a0", zorder=0.5)


def _draw_geom(ax, model, data, g: int, axes: tuple[int, int], points_per_metre: float) -> None:
    centre = data.geom_xpos[g][list(axes)]
    radius = model.geom_size[g, 0]
    if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_CAPSULE:
        direction = data.geom_xmat[g].reshape(3, 3)[:, 2][list(axes)]
        ends = np.stack(
            [centre - model.geom_size[g, 1] * direction, centre + model.geom_size[g, 1] * direction]
        )
        ax.plot(
            ends[:, 0],
            ends[:, 1],
            color=BODY_COLOR,
            lw=2 * radius * points_per_metre,
            solid_capstyle="round",
            zorder=2,
        )
    else:
        ax.add_patch(Circle(centre, radius, color=BODY_COLOR, zorder=2))
