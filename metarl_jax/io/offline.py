"""Offline data sets (MACAW): per-task transitions on disk, readable with numpy and json alone.

    <dir>/offline_data.npz   np.savez, uncompressed; for split in (train, test):
                             <split>/obs [K, N, obs] float32, <split>/actions [K, N, A] float32
                             (discrete: [K, N] int32), <split>/rewards, <split>/next_obs,
                             <split>/dones (1.0 on a terminal transition), <split>/returns (the
                             discounted return-to-go within the transition's episode) [K, N];
                             the tasks as <split>_tasks/<field> [K, ...]
    <dir>/metadata.json      what made the data (env, sizes, gamma, behaviour, seeds, task
                             restrictions, behaviour returns) and "arrays": {name: shape}

`save_offline_data` writes the npz first and metadata.json last, each through a temporary file and
`os.replace`, so a present metadata.json means a complete data set. The partial state of an
unfinished generation run (any pytree) is kept in an npz of its flattened leaves.

JAX is imported only by the functions that build JAX values, so that reading the format (and the
report, which imports `metarl_jax.io`) stays numpy-only.
"""

import json
import math
import os
import zipfile

import numpy as np

FORMAT_VERSION = 1
DATA_FILE = "offline_data.npz"
METADATA_FILE = "metadata.json"
FIELDS = ("obs", "actions", "rewards", "next_obs", "dones", "returns")
PARTIAL_STATE_FILE = "state.npz"
_REQUIRED_METADATA = (
    "format_version",
    "env",
    "task_space",
    "num_arms",
    "obs_size",
    "action_size",
    "discrete",
    "num_train_tasks",
    "num_test_tasks",
    "transitions_per_task",
    "task_fields",
    "arrays",
)
_NPZ_ERRORS = (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError)


class OfflineDataError(ValueError):
    """An offline data set that is missing, damaged, or made for another environment."""


def _one_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def task_arrays(tasks, prefix: str) -> dict[str, np.ndarray]:
    """A batch of tasks (a NamedTuple of [K, ...] arrays) as {'<prefix>/<field>': array}."""
    return {f"{prefix}/{field}": np.asarray(value) for field, value in tasks._asdict().items()}


def _task_type(env):
    import jax

    return type(env.task_space.sample(jax.random.PRNGKey(0)))


def tasks_from_arrays(arrays: dict, prefix: str, env):
    """Rebuild the env's task NamedTuple from the '<prefix>/<field>' arrays, as jnp arrays."""
    import jax.numpy as jnp

    task_type = _task_type(env)
    missing = [
        f"{prefix}/{field}" for field in task_type._fields if f"{prefix}/{field}" not in arrays
    ]
    if missing:
        raise OfflineDataError(f"no task arrays {missing} for {task_type.__name__}")
    return task_type(
        **{field: jnp.asarray(arrays[f"{prefix}/{field}"]) for field in task_type._fields}
    )


def _json_safe(value):
    """NaN and infinities (not JSON) become null, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _replace_file(path: str, write) -> None:
    temporary = path + ".tmp"
    with open(temporary, "wb") as f:
        write(f)
    os.replace(temporary, path)


def save_offline_data(directory: str, arrays: dict[str, np.ndarray], metadata: dict) -> None:
    """Write offline_data.npz, then metadata.json (with "arrays": {name: shape} filled in)."""
    os.makedirs(directory, exist_ok=True)
    metadata_path = os.path.join(directory, METADATA_FILE)
    if os.path.exists(metadata_path):
        os.remove(metadata_path)  # the set is incomplete until the new metadata lands
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    _replace_file(os.path.join(directory, DATA_FILE), lambda f: np.savez(f, **arrays))
    metadata = {
        "format_version": FORMAT_VERSION,
        **metadata,
        "arrays": {name: list(value.shape) for name, value in arrays.items()},
    }
    text = json.dumps(_json_safe(metadata), indent=2, allow_nan=False) + "\n"
    _replace_file(metadata_path, lambda f: f.write(text.encode()))


def _read_metadata(directory: str) -> dict:
    if not os.path.isdir(directory):
        raise OfflineDataError(f"no offline data set at {directory}: no such directory")
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.isfile(path):
        raise OfflineDataError(f"{path} is missing: not a finished offline data set")
    try:
        with open(path) as f:
            metadata = json.load(f)
    except (OSError, ValueError) as error:
        raise OfflineDataError(f"{path} is unreadable: {_one_line(error)}") from None
    if not isinstance(metadata, dict):
        raise OfflineDataError(f"{path} does not hold a JSON object")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise OfflineDataError(
            f"{path}: unknown format_version {metadata.get('format_version')!r} "
            f"(this reader knows {FORMAT_VERSION})"
        )
    missing = [key for key in _REQUIRED_METADATA if key not in metadata]
    if missing:
        raise OfflineDataError(f"{path} lacks {', '.join(missing)}")
    return metadata


def _read_arrays(directory: str, expected_shapes: dict) -> dict[str, np.ndarray]:
    path = os.path.join(directory, DATA_FILE)
    if not os.path.isfile(path):
        raise OfflineDataError(f"{path} is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except _NPZ_ERRORS as error:
        raise OfflineDataError(f"{path} is unreadable or truncated: {_one_line(error)}") from None
    if set(arrays) != set(expected_shapes):
        extra, absent = (
            sorted(set(arrays) - set(expected_shapes)),
            sorted(set(expected_shapes) - set(arrays)),
        )
        raise OfflineDataError(
            f"{path} does not hold the arrays metadata.json lists (missing {absent}, extra {extra})"
        )
    for name, array in arrays.items():
        if list(array.shape) != list(expected_shapes[name]):
            raise OfflineDataError(
                f"{path}: {name} has shape {list(array.shape)}, metadata.json says "
                f"{list(expected_shapes[name])}"
            )
    return arrays


def _check_sizes(arrays: dict, metadata: dict) -> None:
    """The transition arrays of each split are [K or M, N, ...] as the metadata counts."""
    counts = {"train": metadata["num_train_tasks"], "test": metadata["num_test_tasks"]}
    for split, count in counts.items():
        for field in FIELDS:
            name = f"{split}/{field}"
            if name not in arrays:
                raise OfflineDataError(f"the data set has no {name} array")
            if arrays[name].shape[:2] != (count, metadata["transitions_per_task"]):
                raise OfflineDataError(
                    f"{name} has shape {list(arrays[name].shape)}, expected "
                    f"[{count}, {metadata['transitions_per_task']}, ...] from metadata.json"
                )


def _check_env(arrays: dict, metadata: dict, env) -> None:
    def differs(what, data_value, env_value):
        raise OfflineDataError(
            f"the data set was made for {what} {data_value!r}, the environment has {env_value!r}"
        )

    if metadata["env"] != env.name:
        differs("env", metadata["env"], env.name)
    if env.name == "bandit":
        arms = (
            arrays["train_tasks/arm_probs"].shape[-1] if "train_tasks/arm_probs" in arrays else None
        )
        if arms != env.action_size:
            raise OfflineDataError(
                f"the data set's bandit tasks have {arms} arms, the environment has "
                f"{env.action_size}"
            )
    if metadata["task_space"] != env.task_space.name:
        differs("task space", metadata["task_space"], env.task_space.name)
    for key in ("obs_size", "action_size", "discrete"):
        if metadata[key] != getattr(env, key):
            differs(key, metadata[key], getattr(env, key))


def load_offline_data(directory: str, env=None) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, metadata) of a finished data set; OfflineDataError (one line) if it is missing,
    damaged, of another format version, or (given `env`) made for another environment."""
    metadata = _read_metadata(directory)
    arrays = _read_arrays(directory, metadata["arrays"])
    _check_sizes(arrays, metadata)
    if env is not None:
        _check_env(arrays, metadata, env)
    return arrays, metadata


def load_macaw_data(directory: str, env):
    """(MACAW's data set `algos.macaw.MacawData` as device arrays, metadata) of a finished data
    set made for `env`; OfflineDataError as `load_offline_data`."""
    from metarl_jax.algos.macaw import FIELDS as MACAW_FIELDS
    from metarl_jax.algos.macaw import MacawData

    arrays, metadata = load_offline_data(directory, env)
    data = MacawData(
        train={name: arrays[f"train/{name}"] for name in MACAW_FIELDS},
        test={name: arrays[f"test/{name}"] for name in MACAW_FIELDS},
        train_tasks=tasks_from_arrays(arrays, "train_tasks", env),
        test_tasks=tasks_from_arrays(arrays, "test_tasks", env),
    )
    return data, metadata


# ----- the resumable state of an unfinished generation run -------------------------------------


def save_partial_state(directory: str, state, extras: dict[str, np.ndarray]) -> None:
    """The state's leaves (and named extras) in <directory>/state.npz, replaced atomically."""
    import jax

    os.makedirs(directory, exist_ok=True)
    leaves = {f"leaf/{i:04d}": np.asarray(leaf) for i, leaf in enumerate(jax.tree.leaves(state))}
    extras = {f"extra/{name}": np.asarray(value) for name, value in extras.items()}
    _replace_file(
        os.path.join(directory, PARTIAL_STATE_FILE), lambda f: np.savez(f, **leaves, **extras)
    )


def load_partial_state(directory: str, template) -> tuple[object, dict[str, np.ndarray]]:
    """(state shaped like `template`, extras) from <directory>/state.npz."""
    import jax
    import jax.numpy as jnp

    path = os.path.join(directory, PARTIAL_STATE_FILE)
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = {name: data[name] for name in data.files}
    except _NPZ_ERRORS as error:
        raise OfflineDataError(f"{path} is unreadable or truncated: {_one_line(error)}") from None
    template_leaves, treedef = jax.tree.flatten(template)
    if sum(name.startswith("leaf/") for name in stored) != len(template_leaves):
        raise OfflineDataError(f"{path} does not match this run's state (number of leaves)")
    leaves = []
    for i, expected in enumerate(template_leaves):
        leaf = stored.get(f"leaf/{i:04d}")
        if leaf is None or leaf.shape != tuple(expected.shape) or leaf.dtype != expected.dtype:
            raise OfflineDataError(f"{path} does not match this run's state (leaf {i})")
        leaves.append(jnp.asarray(leaf))
    extras = {
        name[len("extra/") :]: value for name, value in stored.items() if name.startswith("extra/")
    }
    return jax.tree.unflatten(treedef, leaves), extras
