"""run.json: a run's record encodes and decodes its config, env and members exactly."""

import dataclasses
import json

import pytest

from metarl_jax.algos.registry import ENTRIES
from metarl_jax.runs import decode_config, encode_config, rebuild, run_record
from metarl_jax.tasks import Restriction

ENV_OPTIONS = {
    "name": "navigation",
    "horizon": 8,
    "num_arms": 5,
    "physics": "auto",
    "physics_precision": "highest",
    "action_scale": 0.0,
    "task_in_observation": False,
}


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_every_default_config_round_trips_through_json(entry):
    config = entry.config_class(**entry.config_settings)
    encoded = json.loads(json.dumps(encode_config(config)))
    assert decode_config(entry.config_class, encoded) == config


def test_restrictions_and_tuples_round_trip():
    entry = next(e for e in ENTRIES if e.name == "maml_trpo")
    config = dataclasses.replace(
        entry.config_class(),
        hidden_sizes=(8, 4),
        train_tasks=Restriction("range", (-0.5, 0.0), (0.5, 0.5), 3),
        eval_tasks=Restriction("complement", (-0.5, 0.0), (0.5, 0.5)),
    )
    encoded = json.loads(json.dumps(encode_config(config)))
    assert encoded["eval_tasks"]["low"] == [-0.5, 0.0]
    decoded = decode_config(entry.config_class, encoded)
    assert decoded == config and isinstance(decoded.train_tasks.low, tuple)


def test_rebuild_gives_the_env_and_config_of_the_record():
    entry = next(e for e in ENTRIES if e.name == "rl2_ppo")
    config = dataclasses.replace(entry.config_class(), horizon=8, hidden_sizes=(8,))
    rows = [{"seed": s, "meta_batch_size": 2, "num_train_tasks": 0} for s in (0, 1)]
    record = run_record(
        "rl2_ppo", ENV_OPTIONS, config, rows, (), ["meta_batch_size"], None, "highest", "--x=1\n"
    )
    record = json.loads(json.dumps(record))
    assert record["env"]["physics"] != "auto" and record["members"] == rows
    rebuilt_entry, env, rebuilt_config, data = rebuild(record)
    assert rebuilt_entry.name == "rl2_ppo" and rebuilt_config == config and data is None
    assert env.name == "navigation" and env.horizon == 8
