"""A run's record (run.json): everything needed to rebuild its env, algorithm and sweep members
from the library alone, as JSON. `run_record` writes it; `rebuild` reads it back."""

import dataclasses
import os
import typing

from metarl_jax.algos.registry import AlgorithmEntry, algorithm_entry
from metarl_jax.envs import (
    Env,
    make_env,
    resolve_physics,
    with_normalized_actions,
    with_task_in_observation,
)
from metarl_jax.io.offline import load_macaw_data
from metarl_jax.tasks import Restriction

RECORD_FILE = "run.json"
ENV_OPTIONS = (
    "name",
    "horizon",
    "num_arms",
    "physics",
    "physics_precision",
    "action_scale",
    "task_in_observation",
)


def _encode(value):
    if isinstance(value, Restriction):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    return value


def encode_config(config) -> dict:
    """Every field of an algorithm's config as JSON values (restrictions as dicts, tuples as
    lists)."""
    return {f.name: _encode(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _decode(value, kind):
    if kind is Restriction:
        return Restriction(**{name: _decode(v, hint) for name, v, hint in _restriction(value)})
    if typing.get_origin(kind) is tuple:
        args = typing.get_args(kind)
        return tuple(_decode(v, args[0] if args else None) for v in value)
    if kind is float:
        return float(value)
    return value


def _restriction(value: dict):
    hints = typing.get_type_hints(Restriction)
    return [(name, v, hints[name]) for name, v in value.items()]


def decode_config(config_class, encoded: dict):
    """The config `encode_config` encoded, each field decoded by its declared type."""
    hints = typing.get_type_hints(config_class)
    return config_class(
        **{
            f.name: _decode(encoded[f.name], hints[f.name])
            for f in dataclasses.fields(config_class)
            if f.name in encoded
        }
    )


def run_record(
    algo: str,
    env_options: dict,
    config,
    members_rows: list[dict],
    hypers: tuple,
    sweep_columns,
    offline_data: str | None,
    matmul_precision: str,
    flags_text: str,
) -> dict:
    """run.json's content. `env_options`: the keys of `ENV_OPTIONS` as the run's flags give them
    (horizon 0: the env's default; physics 'auto' is recorded as the path it took). The offline
    data set's path is recorded absolute, so the run reads back from any directory."""
    env = {name: env_options[name] for name in ENV_OPTIONS}
    env["physics"] = resolve_physics(env["physics"])
    return {
        "algo": algo,
        "env": env,
        "config": encode_config(config),
        "members": [dict(row) for row in members_rows],
        "hypers": [[name, list(values)] for name, values in hypers],
        "sweep_columns": list(sweep_columns),
        "offline_data": os.path.abspath(offline_data) if offline_data else None,
        "matmul_precision": matmul_precision,
        "flags": flags_text,
    }


def record_env(options: dict) -> Env:
    """The run's env as the run app built it: `make_env` and its wrappers."""
    env = make_env(
        options["name"],
        horizon=options["horizon"] or None,
        num_arms=options["num_arms"],
        physics=options["physics"],
        physics_precision=None
        if options["physics_precision"] == "default"
        else options["physics_precision"],
    )
    if options["action_scale"]:
        env = with_normalized_actions(env, options["action_scale"])
    return with_task_in_observation(env) if options["task_in_observation"] else env


def record_hypers(record: dict) -> tuple[tuple[str, tuple[float, ...]], ...]:
    return tuple((name, tuple(float(v) for v in values)) for name, values in record["hypers"])


def rebuild(record: dict) -> tuple[AlgorithmEntry, Env, object, object]:
    """(registry entry, env, config, data) of a recorded run; data is MACAW's offline data set
    (`record["offline_data"]`) or None. Raises ValueError (OfflineDataError) on a damaged or
    missing data set."""
    entry = algorithm_entry(record["algo"])
    env = record_env(record["env"])
    config = decode_config(entry.config_class, record["config"])
    data = None
    if record["offline_data"]:
        data, _ = load_macaw_data(record["offline_data"], env)
    return entry, env, config, data
