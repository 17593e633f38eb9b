"""Reading a finished run back: its record (run.json), its restored state, its policies."""

from metarl_jax.runs.load import LoadedRun, RunError, load_run, member_indices
from metarl_jax.runs.policies import (
    GradientPolicy,
    PosteriorPolicy,
    RecurrentPolicy,
    load_policy,
    play_adaptation,
    policy_of,
)
from metarl_jax.runs.record import RECORD_FILE, decode_config, encode_config, rebuild, run_record
from metarl_jax.runs.trajectories import AdaptationTrajectories, episode_labels, step_labels

__all__ = [
    "RECORD_FILE",
    "AdaptationTrajectories",
    "GradientPolicy",
    "LoadedRun",
    "PosteriorPolicy",
    "RecurrentPolicy",
    "RunError",
    "decode_config",
    "encode_config",
    "episode_labels",
    "load_policy",
    "load_run",
    "member_indices",
    "play_adaptation",
    "policy_of",
    "rebuild",
    "run_record",
    "step_labels",
]
