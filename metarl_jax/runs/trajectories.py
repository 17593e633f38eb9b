"""What a policy did while it adapted: one episode per stage per task, stacked."""

from typing import Any, NamedTuple

import jax


class AdaptationTrajectories(NamedTuple):
    """S stages (adaptation steps or episodes of a trial) x N tasks x T steps.

    `reset_keys` is the key each episode's `env.reset` got, so that an episode can be replayed
    through the env from its actions (e.g. to recover a body's positions for a picture)."""

    stage_labels: tuple[str, ...]  # "before adaptation", "after 1 step", ... or "episode 1", ...
    tasks: Any  # task pytree, leading axis N
    obs: jax.Array  # [S, N, T, obs_size]
    actions: jax.Array  # [S, N, T] (discrete) or [S, N, T, A]
    rewards: jax.Array  # [S, N, T]
    valid: jax.Array  # [S, N, T]: 1 while the episode runs, 0 after it ended
    reset_keys: jax.Array  # [S, N, 2] uint32


def step_labels(num_stages: int) -> tuple[str, ...]:
    """Stage labels of a gradient-adapting policy: before adaptation, then after each step."""
    after = tuple(f"after {k} step{'s' if k > 1 else ''}" for k in range(1, num_stages))
    return ("before adaptation", *after)


def episode_labels(num_stages: int) -> tuple[str, ...]:
    """Stage labels of a policy that adapts within a trial: its episodes."""
    return tuple(f"episode {k}" for k in range(1, num_stages + 1))
