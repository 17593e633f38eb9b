"""Run outputs: metrics.csv, orbax checkpoints, plots and summary.json."""
