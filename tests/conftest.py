"""Shared helpers: tiny configurations, sweep runners and the experiment app in a subprocess.

Everything here is sized for a 2-core CPU: tiny networks, short horizons, few episodes, so that a
compile costs seconds and the whole suite a few minutes.
"""

import atexit
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile

import jax
import numpy as np
import pytest

from metarl_jax.algos import MamlConfig, make_maml
from metarl_jax.envs import make_env
from metarl_jax.io.offline import task_arrays
from metarl_jax.sweep import sweep_members, train

# Exact float32 matmuls on every backend (GPUs otherwise use TF32): the equivalence tests compare
# to float32 tolerances; the apps default to the same (--matmul_precision).
jax.config.update("jax_default_matmul_precision", "highest")

# One persistent compilation cache for the test session, fresh each time: made by the first
# process that loads this file (pytest, or xdist's controller, whose workers inherit the
# variable) and shared with the app processes the tests start, so a run repeated, resumed or
# re-evaluated with the same sizes loads the executables an earlier one compiled. A half-written
# entry read by another process is reported by JAX as a warning and compiled again.
if "METARL_JAX_TEST_CACHE" not in os.environ:
    os.environ["METARL_JAX_TEST_CACHE"] = tempfile.mkdtemp(prefix="metarl_jax_tests_jax_cache_")
    atexit.register(shutil.rmtree, os.environ["METARL_JAX_TEST_CACHE"], ignore_errors=True)
COMPILATION_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ["METARL_JAX_TEST_CACHE"]
jax.config.update("jax_compilation_cache_dir", COMPILATION_CACHE)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY_HORIZON = 8


def tiny_config(**overrides) -> MamlConfig:
    """A MamlConfig that compiles and runs in seconds on a CPU."""
    base = MamlConfig(
        hidden_sizes=(8,),
        horizon=TINY_HORIZON,
        rollouts_per_task=2,
        max_meta_batch_size=2,
        cg_iterations=3,
        line_search_steps=5,
        ppo_steps=2,
        num_eval_tasks=2,
        eval_adapt_steps=1,
    )
    return dataclasses.replace(base, **overrides)


def tiny_navigation(horizon: int = TINY_HORIZON):
    return make_env("navigation", horizon=horizon)


def run_sweep(config, env, seeds, meta_batch_sizes, num_train_tasks=(0,), num_iterations=2):
    """Train every member of a sweep in one chunk; return (last ChunkResult, member rows)."""
    algorithm = make_maml(config, env)
    members, rows = sweep_members(seeds, meta_batch_sizes, num_train_tasks)
    results = list(train(algorithm, members, num_iterations, chunk_length=num_iterations))
    assert results[-1].iteration == num_iterations
    return results[-1], rows


def member_index(rows, **values) -> int:
    """The position of the one sweep member whose row matches `values`."""
    found = [i for i, row in enumerate(rows) if all(row[k] == v for k, v in values.items())]
    assert len(found) == 1, (values, rows)
    return found[0]


def pick(tree, index):
    """Member `index` of a pytree stacked over sweep members, as numpy arrays."""
    import jax

    return jax.tree.map(lambda leaf: np.asarray(leaf)[index], tree)


# members that differ in a swept value end this far apart at least: far above the equivalence
# tolerance below, so an equivalence between members cannot hold trivially
MEMBERS_DIFFER = 1e-3


def assert_trees_close(actual, expected, rtol=1e-4, atol=1e-5):
    import jax

    actual_leaves, actual_def = jax.tree.flatten(actual)
    expected_leaves, expected_def = jax.tree.flatten(expected)
    assert actual_def == expected_def
    for a, e in zip(actual_leaves, expected_leaves, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=atol)


def max_abs_difference(a, b) -> float:
    import jax

    diffs = jax.tree.map(lambda x, y: float(np.max(np.abs(np.asarray(x) - np.asarray(y)))), a, b)
    return max(jax.tree.leaves(diffs))


# ----- the experiment app --------------------------------------------------------------------

TINY_FLAGS = (
    "--env=navigation",
    "--horizon=5",
    "--rollouts_per_task=2",
    "--meta_batch_size=2",
    "--hidden_sizes=8",
    "--num_eval_tasks=2",
    "--eval_adapt_steps=1",
    "--num_iterations=4",
    "--log_every=2",
    "--cg_iterations=2",
)
# PEARL at TINY_FLAGS' sizes: a pool of 3 goals swept over 2 and all of them.
TINY_PEARL_FLAGS = (
    *TINY_FLAGS,
    "--algo=pearl",
    "--num_train_tasks=2,all",
    "--task_pool_size=3",
    "--latent_size=2",
    "--encoder_hidden_sizes=8",
    "--initial_steps=5",
    "--prior_steps=5",
    "--posterior_steps=10",
    "--num_tasks_sample=2",
    "--grad_steps=2",
    "--batch_size=4",
    "--context_batch_size=3",
    "--replay_capacity=50",
)


def run_main(*args, timeout=300, module="experiments.main") -> subprocess.CompletedProcess:
    """`python -m MODULE ARGS` (an experiment app) from the repository root, output captured,
    in this process's environment (PYTHONPATH led by the repository)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("JAX_PLATFORMS", "cpu")
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def snapshot(directory) -> dict:
    """{relative path: (size, mtime_ns, bytes)} of every file under a directory."""
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            stat = os.stat(path)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = (stat.st_size, stat.st_mtime_ns, f.read())
    return files


# ----- offline data sets (MACAW) -------------------------------------------------------------


def _sample_tasks(env, n, seed):
    import jax

    from metarl_jax.tasks import sample_batch

    return sample_batch(env.task_space.sample, jax.random.PRNGKey(seed), n)


def random_offline_dataset(env, num_train=3, num_test=2, n=4):
    """Random arrays in the format, and their metadata, for `env`."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, k in (("train", num_train), ("test", num_test)):
        if env.discrete:
            actions = rng.integers(0, env.action_size, (k, n)).astype(np.int32)
        else:
            actions = rng.uniform(-1, 1, (k, n, env.action_size)).astype(np.float32)
        arrays |= {
            f"{split}/obs": rng.normal(size=(k, n, env.obs_size)).astype(np.float32),
            f"{split}/actions": actions,
            f"{split}/rewards": rng.normal(size=(k, n)).astype(np.float32),
            f"{split}/next_obs": rng.normal(size=(k, n, env.obs_size)).astype(np.float32),
            f"{split}/dones": (rng.uniform(size=(k, n)) < 0.2).astype(np.float32),
            f"{split}/returns": rng.normal(size=(k, n)).astype(np.float32),
        }
    train_tasks, test_tasks = _sample_tasks(env, num_train, 0), _sample_tasks(env, num_test, 1)
    arrays |= task_arrays(train_tasks, "train_tasks") | task_arrays(test_tasks, "test_tasks")
    metadata = {
        "env": env.name,
        "task_space": env.task_space.name,
        "num_arms": env.action_size if env.name == "bandit" else None,
        "obs_size": env.obs_size,
        "action_size": env.action_size,
        "discrete": env.discrete,
        "horizon": env.horizon,
        "gamma": 0.99,
        "num_train_tasks": num_train,
        "num_test_tasks": num_test,
        "transitions_per_task": n,
        "task_fields": list(train_tasks._fields),
        "behaviour": "thompson" if env.discrete else "sac",
        "seed": 0,
        "task_pool_seed": 0,
        "train_task_restriction": "full",
        "test_task_restriction": "full",
        "returns_per_task": {"train": [[1.0, None]] * num_train, "test": [[2.0, 3.0]] * num_test},
        "wall_seconds": 1.5,
    }
    return arrays, metadata


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT
