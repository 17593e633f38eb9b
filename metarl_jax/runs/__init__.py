"""Reading a finished run back: its record (run.json), its restored state, its policies."""

from metarl_jax.runs.record import RECORD_FILE, decode_config, encode_config, rebuild, run_record
from metarl_jax.runs.trajectories import AdaptationTrajectories, episode_labels, step_labels

__all__ = [
    "RECORD_FILE",
    "AdaptationTrajectories",
    "decode_config",
    "encode_config",
    "episode_labels",
    "rebuild",
    "run_record",
    "step_labels",
]
