"""A run directory made in process (a trained sweep, its checkpoints and run.json), for the tests
that read runs back."""

import json
import os

from metarl_jax.io import checkpoints
from metarl_jax.runs import RECORD_FILE, run_record
from metarl_jax.runs.load import make_algorithm
from metarl_jax.sweep import sweep_members, train


def env_options(name: str, horizon: int, **others) -> dict:
    return {
        "name": name,
        "horizon": horizon,
        "num_arms": others.get("num_arms", 5),
        "physics": "auto",
        "physics_precision": "highest",
        "action_scale": others.get("action_scale", 0.0),
        "task_in_observation": False,
    }


def make_run_dir(
    run_dir, entry, config, env, options, seeds, meta_batch_sizes, hypers=(), iterations=2
):
    """Train every member `iterations` iterations, in chunks of one, checkpointing each; write
    run.json. Returns the chunk results."""
    algorithm = make_algorithm(entry, config, env, None, hypers)
    members, rows = sweep_members(seeds, meta_batch_sizes, (0,), dict(hypers))
    manager = checkpoints.checkpoint_manager(os.path.join(run_dir, "checkpoints"))
    results = []
    for result in train(algorithm, members, iterations, 1):
        checkpoints.save(manager, result.iteration, result.state)
        results.append(result)
    columns = ["meta_batch_size", *(name for name, _ in hypers)]
    record = run_record(
        entry.name, options, config, rows, hypers, columns, None, "highest", "--flags\n"
    )
    with open(os.path.join(run_dir, RECORD_FILE), "w") as f:
        json.dump(record, f)
    return results
