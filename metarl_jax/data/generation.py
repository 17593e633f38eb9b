"""An offline data set from a spec: draw the task pools, run one behaviour agent per task, save.

    spec = DataSetSpec(make_env("navigation"), num_train_tasks=2, num_test_tasks=1,
                       steps_per_task=200, behaviour=SacAgentConfig(random_steps=50))
    arrays, metadata = generate_data_set(spec, "data/navigation")

Training tasks are a pool of `num_train_tasks` drawn from the region `train_tasks` with
`task_pool_seed`, test tasks a pool of `num_test_tasks` from `test_tasks` with `task_pool_seed + 1`.
Continuous control runs one SAC agent per task (`behaviour`), every task vmapped in one compiled
chunk of `chunk_iterations` iterations; after each chunk the state is saved in `<out_dir>/partial/`,
from where `resume=True` continues. Bandits (`behaviour=None`) run Thompson sampling in one call.
The finished set is `<out_dir>/offline_data.npz` and `metadata.json` (`metarl_jax.io.offline`'s
format); the partial directory is removed then.
"""

import dataclasses
import datetime
import math
import os
import shutil
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from metarl_jax.data.behaviour import (
    SacAgentConfig,
    bandit_data_per_task,
    nominal_iterations,
    sac_data_arrays,
    sac_data_chunks,
    sac_data_init,
    transitions_per_task,
)
from metarl_jax.envs import Env
from metarl_jax.io.offline import (
    FIELDS,
    PARTIAL_STATE_FILE,
    load_partial_state,
    save_offline_data,
    save_partial_state,
    task_arrays,
)
from metarl_jax.tasks import (
    Restriction,
    RestrictionError,
    check_pool_size,
    draw_pool,
    parse_restriction,
)

PARTIAL_DIR = "partial"
BANDIT_HISTORY_BLOCKS = 10


@dataclasses.dataclass(frozen=True)
class DataSetSpec:
    """What makes an offline data set; the same spec gives the same arrays."""

    env: Env
    num_train_tasks: int
    num_test_tasks: int
    steps_per_task: int  # transitions per task, rounded up to whole episodes; bandit: pulls
    behaviour: SacAgentConfig | None = None  # None: Thompson sampling (bandits)
    train_tasks: str = "full"  # the region of the training pool: full | range:.. | complement:..
    test_tasks: str = "full"
    task_pool_seed: int = 0  # the training pool's; the test pool uses task_pool_seed + 1
    seed: int = 0  # the behaviour agents'
    gamma: float = 0.99  # of the stored returns (and of the SAC agents)
    chunk_iterations: int = 10  # SAC iterations per compiled chunk; does not change the data

    def __post_init__(self):
        bandit = self.env.name == "bandit"
        if bandit != (self.behaviour is None):
            raise ValueError(
                "behaviour: bandits take None (Thompson sampling), other environments a "
                f"SacAgentConfig; got {type(self.behaviour).__name__} for {self.env.name}"
            )
        if self.behaviour is not None and self.behaviour.gamma != self.gamma:
            raise ValueError(
                f"gamma: {self.gamma} differs from the behaviour's gamma {self.behaviour.gamma}"
            )


def pool_restriction(region: str, num_tasks: int, space, flag: str, count_flag: str) -> Restriction:
    """A pool of `num_tasks` drawn from a region; a RestrictionError names the setting at fault."""
    restriction = parse_restriction(region, space, flag)
    if restriction.num_tasks:
        raise RestrictionError(
            f"--{flag}: the data set's tasks are already a pool of --{count_flag}; give a "
            "region (full, range:.., complement:..)"
        )
    check_pool_size(num_tasks, space, count_flag)
    return dataclasses.replace(restriction, num_tasks=num_tasks)


def pool_restrictions(spec: DataSetSpec) -> tuple[Restriction, Restriction]:
    """(training, test) pool restrictions; RestrictionError if a region or a size is invalid."""
    space = spec.env.task_space
    return (
        pool_restriction(
            spec.train_tasks, spec.num_train_tasks, space, "train_tasks", "num_train_tasks"
        ),
        pool_restriction(
            spec.test_tasks, spec.num_test_tasks, space, "test_tasks", "num_test_tasks"
        ),
    )


def draw_tasks(spec: DataSetSpec):
    """(training tasks [K], test tasks [M]), each a task NamedTuple of arrays."""
    space = spec.env.task_space
    train_restriction, test_restriction = pool_restrictions(spec)
    train = draw_pool(space, train_restriction, spec.task_pool_seed)
    test = draw_pool(space, test_restriction, spec.task_pool_seed + 1)
    return train, test


def progress_line(chunk, num_chunks, state, capacity, mean_returns, rows, seconds) -> str:
    sizes = np.asarray(state["buffers"].size)
    remaining = int(np.sum(capacity - sizes))
    rate = rows / max(seconds, 1e-9)
    eta = datetime.timedelta(seconds=round(remaining / rate)) if rate > 0 else "?"
    returns = mean_returns[np.isfinite(mean_returns)]
    shown = f"{np.mean(returns):.2f}" if returns.size else "-"
    return (
        f"chunk {chunk}/{max(num_chunks, chunk)} | steps per task {int(sizes.mean()):,}/"
        f"{capacity:,} | mean behaviour return {shown} | {rate:,.0f} steps/s | ETA {eta}"
    )


def _quiet(line: str) -> None:
    del line


def sac_behaviour_data(
    spec: DataSetSpec,
    tasks,
    partial_dir: str,
    resume: bool = False,
    record_partial: Callable[[str], None] | None = None,
    progress: Callable[[str], None] = _quiet,
):
    """Run (or, with `resume` and a saved state, continue) the SAC agents chunk by chunk, saving
    the state in `partial_dir` after each: (arrays {field: [K+M, N, ...]}, mean behaviour
    returns [chunks, K+M], wall seconds). `record_partial(partial_dir)` runs when a new partial
    directory starts."""
    env, config = spec.env, spec.behaviour
    num_tasks = spec.num_train_tasks + spec.num_test_tasks
    state = sac_data_init(env, config, tasks, jax.random.PRNGKey(spec.seed), spec.steps_per_task)
    history, seconds_before = np.zeros((0, num_tasks), np.float32), 0.0
    if resume and os.path.exists(os.path.join(partial_dir, PARTIAL_STATE_FILE)):
        state, extras = load_partial_state(partial_dir, state)
        history, seconds_before = extras["returns"], float(extras["wall_seconds"])
        progress(f"resuming {os.path.dirname(partial_dir)} at iteration {int(state['iteration'])}")
    else:
        os.makedirs(partial_dir, exist_ok=True)
        if record_partial is not None:
            record_partial(partial_dir)
    capacity = transitions_per_task(env, spec.steps_per_task)
    num_chunks = math.ceil(
        nominal_iterations(env, config, spec.steps_per_task) / spec.chunk_iterations
    )
    progress(
        f"SAC behaviour on {num_tasks} tasks of {env.name} ({capacity:,} transitions each, "
        f"horizon {env.horizon}), chunks of {spec.chunk_iterations} iterations"
    )
    started = time.perf_counter()
    last, size_before = started, int(np.sum(state["buffers"].size))
    initial = state
    for state, mean_returns in sac_data_chunks(initial, env, config, spec.chunk_iterations):
        now = time.perf_counter()
        history = np.concatenate([history, mean_returns[None]])
        size = int(np.sum(state["buffers"].size))
        save_partial_state(
            partial_dir,
            state,
            {"returns": history, "wall_seconds": seconds_before + now - started},
        )
        chunk = math.ceil(int(state["iteration"]) / spec.chunk_iterations)
        rows, seconds = size - size_before, now - last
        progress(progress_line(chunk, num_chunks, state, capacity, mean_returns, rows, seconds))
        last, size_before = now, size
    return sac_data_arrays(state), history, seconds_before + time.perf_counter() - started


def thompson_behaviour_data(spec: DataSetSpec, tasks):
    """Thompson sampling on every bandit task: (arrays, mean reward per tenth of the pulls
    [10, K+M] (bandits have no chunks), wall seconds)."""
    started = time.perf_counter()
    arrays = bandit_data_per_task(tasks, spec.steps_per_task, jax.random.PRNGKey(spec.seed))
    blocks = np.array_split(
        arrays["rewards"], min(BANDIT_HISTORY_BLOCKS, spec.steps_per_task), axis=1
    )
    history = np.stack([block.mean(axis=1) for block in blocks])
    return arrays, history, time.perf_counter() - started


def data_set_arrays(arrays, train_tasks, test_tasks, num_train: int) -> dict[str, np.ndarray]:
    """The per-task rows split into train/<field> and test/<field>, and the tasks' arrays."""
    data = {}
    for split, rows in (("train", slice(0, num_train)), ("test", slice(num_train, None))):
        data.update({f"{split}/{field}": arrays[field][rows] for field in FIELDS})
    data.update(task_arrays(train_tasks, "train_tasks"))
    data.update(task_arrays(test_tasks, "test_tasks"))
    return data


def _returns_lists(history: np.ndarray, first: int, last: int) -> list[list[float | None]]:
    """Per task, its mean behaviour return per chunk (None where it no longer collected)."""
    return [
        [float(v) if np.isfinite(v) else None for v in history[:, task]]
        for task in range(first, last)
    ]


def data_set_metadata(spec: DataSetSpec, task_fields, history, seconds: float) -> dict:
    """metadata.json's content (save_offline_data adds the format version and array shapes)."""
    env = spec.env
    sac_agent = spec.behaviour is not None
    num_train, num_test = spec.num_train_tasks, spec.num_test_tasks
    return {
        "env": env.name,
        "task_space": env.task_space.name,
        "num_arms": None if sac_agent else env.action_size,
        "obs_size": env.obs_size,
        "action_size": env.action_size,
        "discrete": env.discrete,
        "horizon": env.horizon,
        "gamma": spec.gamma,
        "num_train_tasks": num_train,
        "num_test_tasks": num_test,
        "transitions_per_task": (
            transitions_per_task(env, spec.steps_per_task) if sac_agent else spec.steps_per_task
        ),
        "task_fields": list(task_fields),
        "behaviour": "sac" if sac_agent else "thompson",
        "seed": spec.seed,
        "task_pool_seed": spec.task_pool_seed,
        "train_task_restriction": spec.train_tasks,
        "test_task_restriction": spec.test_tasks,
        "returns_per_task": {
            "train": _returns_lists(history, 0, num_train),
            "test": _returns_lists(history, num_train, num_train + num_test),
        },
        "wall_seconds": round(seconds, 2),
        # Continuous actions are the policy's, in [-1, 1]; the env acts on action * action_bound.
        "action_bound": None if env.discrete else env.action_bound,
        "behaviour_config": dataclasses.asdict(spec.behaviour) if sac_agent else None,
    }


def generate_data_set(
    spec: DataSetSpec,
    out_dir: str,
    resume: bool = False,
    record_partial: Callable[[str], None] | None = None,
    progress: Callable[[str], None] = _quiet,
) -> tuple[dict[str, np.ndarray], dict]:
    """Make the data set in `out_dir` (overwriting one there): (arrays, metadata) as saved.

    `resume`: continue from `<out_dir>/partial/`'s saved state when there is one (the caller makes
    sure it was made by the same spec). `record_partial(partial_dir)` runs when a new partial
    directory starts; `progress(line)` receives a line per chunk.
    """
    train_tasks, test_tasks = draw_tasks(spec)
    tasks = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), train_tasks, test_tasks)
    partial_dir = os.path.join(out_dir, PARTIAL_DIR)
    if spec.behaviour is None:
        arrays, history, seconds = thompson_behaviour_data(spec, tasks)
    else:
        arrays, history, seconds = sac_behaviour_data(
            spec, tasks, partial_dir, resume, record_partial, progress
        )
    data = data_set_arrays(arrays, train_tasks, test_tasks, spec.num_train_tasks)
    metadata = data_set_metadata(spec, train_tasks._fields, history, seconds)
    save_offline_data(out_dir, data, metadata)
    shutil.rmtree(partial_dir, ignore_errors=True)
    return data, metadata
