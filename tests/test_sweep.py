"""The masked-sweep equivalence: a sweep member equals a separate run of that member alone.

One compiled sweep runs the meta-batch size as a mask over the largest size (4) and the number of
finite training tasks as a mask over the largest pool (3; 0 = the whole distribution). A member's
final parameters and metrics must match those of a run compiled for that member alone.
"""

import functools

import numpy as np
import pytest

from metarl_jax.sweep import sweep_members
from metarl_jax.tasks import Restriction

from .conftest import (
    MEMBERS_DIFFER,
    assert_trees_close,
    max_abs_difference,
    member_index,
    pick,
    run_sweep,
    tiny_config,
    tiny_navigation,
)

OPTIMIZERS = ["trpo", "ppo"]
SEEDS = (0, 1)
META_BATCH_SIZES = (2, 4)
NUM_TRAIN_TASKS = (1, 3, 0)
POOL = 3
ITERATIONS = 2


@functools.cache
def big_sweep(outer_optimizer):
    """Seeds (0, 1) x meta-batch sizes (2, 4) x training tasks (1, 3, all), one compiled call."""
    config = tiny_config(
        outer_optimizer=outer_optimizer,
        max_meta_batch_size=max(META_BATCH_SIZES),
        train_tasks=Restriction(num_tasks=POOL),
    )
    return run_sweep(
        config, tiny_navigation(), SEEDS, META_BATCH_SIZES, NUM_TRAIN_TASKS, ITERATIONS
    )


def separate_run(outer_optimizer, meta_batch_size, num_train_tasks, pool, seed=0):
    """One member alone, compiled for exactly its own meta-batch size and pool."""
    config = tiny_config(
        outer_optimizer=outer_optimizer,
        max_meta_batch_size=meta_batch_size,
        train_tasks=Restriction(num_tasks=pool),
    )
    result, _ = run_sweep(
        config, tiny_navigation(), (seed,), (meta_batch_size,), (num_train_tasks,), ITERATIONS
    )
    return result


def assert_member_equals_run(sweep, rows, run, **member):
    i = member_index(rows, **member)
    assert_trees_close(pick(sweep.state.params, i), pick(run.state.params, 0))
    assert set(sweep.train_metrics) == set(run.train_metrics)
    assert set(sweep.eval_metrics) == set(run.eval_metrics)
    pairs = [(sweep.train_metrics, run.train_metrics), (sweep.eval_metrics, run.eval_metrics)]
    for metrics, single in pairs:
        for name in single:
            np.testing.assert_allclose(
                metrics[name][i], single[name][0], rtol=1e-4, atol=1e-5, err_msg=name
            )
    assert sweep.env_steps[i] == run.env_steps[0]
    assert int(sweep.state.iteration[i]) == int(run.state.iteration[0]) == ITERATIONS


@pytest.mark.parametrize("outer_optimizer", ["trpo", pytest.param("ppo", marks=pytest.mark.slow)])
def test_meta_batch_size_member_equals_separate_run(outer_optimizer):
    """Meta-batch 2 masked out of 4 == a run whose meta-batch is 2."""
    sweep, rows = big_sweep(outer_optimizer)
    run = separate_run(outer_optimizer, meta_batch_size=2, num_train_tasks=POOL, pool=POOL)
    assert_member_equals_run(sweep, rows, run, seed=0, meta_batch_size=2, num_train_tasks=POOL)


@pytest.mark.parametrize("outer_optimizer", ["trpo", pytest.param("ppo", marks=pytest.mark.slow)])
def test_num_train_tasks_member_equals_separate_run(outer_optimizer):
    """The first task of a pool of 3 (traced num_active = 1) == a run on a pool of 1."""
    sweep, rows = big_sweep(outer_optimizer)
    run = separate_run(outer_optimizer, meta_batch_size=4, num_train_tasks=1, pool=1)
    assert_member_equals_run(sweep, rows, run, seed=0, meta_batch_size=4, num_train_tasks=1)


def test_all_tasks_member_equals_separate_full_run():
    """num_train_tasks = 0 ('all') masked out of a pool of 3 == a run with no pool at all."""
    sweep, rows = big_sweep("trpo")
    run = separate_run("trpo", meta_batch_size=4, num_train_tasks=0, pool=0)
    assert_member_equals_run(sweep, rows, run, seed=0, meta_batch_size=4, num_train_tasks=0)


@pytest.mark.parametrize("outer_optimizer", OPTIMIZERS)
def test_sweep_members_really_differ(outer_optimizer):
    """Sanity: the equivalences above are not trivially met by members that never moved."""
    sweep, rows = big_sweep(outer_optimizer)
    params = sweep.state.params

    def distance(a, b):
        return max_abs_difference(pick(params, member_index(rows, **a)), pick(params, b))

    base = {"seed": 0, "meta_batch_size": 2, "num_train_tasks": POOL}
    i = member_index(rows, **base)
    assert distance({**base, "seed": 1}, i) > 1e-3
    # far above the equivalence tests' tolerance (atol 1e-5, rtol 1e-4)
    assert distance({**base, "meta_batch_size": 4}, i) > MEMBERS_DIFFER
    assert distance({**base, "num_train_tasks": 1}, i) > MEMBERS_DIFFER
    assert distance({**base, "num_train_tasks": 0}, i) > MEMBERS_DIFFER
    # Every member is finite and has trained for the same number of iterations.
    assert np.all(np.asarray(sweep.state.iteration) == ITERATIONS)
    for value in {**sweep.train_metrics, **sweep.eval_metrics}.values():
        assert np.all(np.isfinite(value))
    # env steps: meta-batch size x episodes x horizon x (inner steps + 1) x iterations.
    config = tiny_config()
    expected = [
        r["meta_batch_size"] * config.rollouts_per_task * config.horizon * 2 * ITERATIONS
        for r in rows
    ]
    np.testing.assert_array_equal(sweep.env_steps, expected)


def test_sweep_members_order_and_values():
    members, rows = sweep_members(seeds=(5, 6), meta_batch_sizes=(2, 8), num_train_tasks=(1, 0))
    assert [(r["meta_batch_size"], r["num_train_tasks"], r["seed"]) for r in rows] == [
        (2, 1, 5),
        (2, 1, 6),
        (2, 0, 5),
        (2, 0, 6),
        (8, 1, 5),
        (8, 1, 6),
        (8, 0, 5),
        (8, 0, 6),
    ]
    np.testing.assert_array_equal(members.seed, [r["seed"] for r in rows])
    np.testing.assert_array_equal(members.meta_batch_size, [r["meta_batch_size"] for r in rows])
    np.testing.assert_array_equal(members.num_train_tasks, [r["num_train_tasks"] for r in rows])
