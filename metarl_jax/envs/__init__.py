"""Environments as pure functions over explicit task pytrees.

The MuJoCo environments are imported on first use: bandit and navigation runs never load MuJoCo.
"""

from metarl_jax.envs.api import (
    Env,
    with_normalized_actions,
    with_task_in_observation,
    with_unit_actions,
)
from metarl_jax.envs.bandit import make_bandit
from metarl_jax.envs.navigation import make_navigation

LOCOMOTION_ENV_NAMES = ("cheetah_dir", "cheetah_vel", "ant_dir", "ant_dir_fwd_back", "ant_goal")
ENV_NAMES = ("bandit", "navigation", *LOCOMOTION_ENV_NAMES)
# Locomotion physics: MJX on any JAX device, MuJoCo C through a callback (CPU), or "auto": the
# fastest exact path of the default backend (native on a CPU, where MJX runs at ~1/8 of MuJoCo C).
PHYSICS = ("auto", "mjx", "native")


def resolve_physics(physics: str) -> str:
    """ "auto" as the physics path it stands for on JAX's default backend; others as they are."""
    if physics != "auto":
        return physics
    import jax

    return "native" if jax.default_backend() == "cpu" else "mjx"


def make_env(
    name: str,
    *,
    horizon: int | None = None,
    num_arms: int = 5,
    physics: str = "auto",
    physics_precision: str | None = "highest",
) -> Env:
    """Build an environment by name; `horizon` overrides its default episode length.

    `physics`: one of PHYSICS ("auto": native on a CPU backend, MJX elsewhere).
    `physics_precision`: MJX's matmul precision ("highest": exact, equal to MuJoCo C on GPUs;
    None: JAX's global default, TF32 on GPUs).
    """
    if name == "bandit":
        env = make_bandit(num_arms)
    elif name == "navigation":
        env = make_navigation()
    elif name in LOCOMOTION_ENV_NAMES and resolve_physics(physics) == "native":
        from metarl_jax.envs.native import make_native_locomotion_env

        env = make_native_locomotion_env(name)
    elif name in LOCOMOTION_ENV_NAMES:
        from metarl_jax.envs.locomotion import make_locomotion_env

        env = make_locomotion_env(name, precision=physics_precision)
    else:
        raise ValueError(f"unknown env {name!r}; known: {ENV_NAMES}")
    return env._replace(horizon=horizon) if horizon else env


__all__ = [
    "ENV_NAMES",
    "LOCOMOTION_ENV_NAMES",
    "PHYSICS",
    "Env",
    "make_bandit",
    "make_env",
    "make_navigation",
    "resolve_physics",
    "with_normalized_actions",
    "with_task_in_observation",
    "with_unit_actions",
]
