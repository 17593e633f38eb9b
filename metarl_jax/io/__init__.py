"""Run outputs: metrics.csv, orbax checkpoints and their metadata, live logs (TensorBoard, W&B),
plots and summary.json; offline data sets."""

from metarl_jax.io.offline import (
    OfflineDataError,
    load_offline_data,
    save_offline_data,
    tasks_from_arrays,
)

__all__ = ["OfflineDataError", "load_offline_data", "save_offline_data", "tasks_from_arrays"]
