"""Environments as pure functions over explicit task pytrees.

The MuJoCo environments are imported on first use: bandit and navigation runs never load MuJoCo.
"""

from metarl_jax.envs.api import Env, with_unit_actions
from metarl_jax.envs.bandit import make_bandit
from metarl_jax.envs.navigation import make_navigation

LOCOMOTION_ENV_NAMES = ("cheetah_dir", "cheetah_vel", "ant_dir", "ant_dir_fwd_back", "ant_goal")
ENV_NAMES = ("bandit", "navigation", *LOCOMOTION_ENV_NAMES)
PHYSICS = ("mjx", "native")  # locomotion: MJX on any JAX device, or MuJoCo C through a callback


def make_env(
    name: str,
    *,
    horizon: int | None = None,
    num_arms: int = 5,
    physics: str = "mjx",
    physics_precision: str | None = "highest",
) -> Env:
    """Build an environment by name; `horizon` overrides its default episode length.

    `physics_precision`: MJX's matmul precision ("highest": exact, equal to MuJoCo C on GPUs;
    None: JAX's global default, TF32 on GPUs).
    """
    if name == "bandit":
        env = make_bandit(num_arms)
    elif name == "navigation":
        env = make_navigation()
    elif name in LOCOMOTION_ENV_NAMES and physics == "native":
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
    "with_unit_actions",
]
