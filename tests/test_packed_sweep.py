"""Packed sweeps: members that differ only in meta-batch size share one task axis of their real
tasks. A packed member must equal the masked member (itself tested equal to a separate run in
test_sweep.py) and a separate run; TRPO's solves and line searches stay per member."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl_jax.algos import make_maml, make_rl2
from metarl_jax.algos.api import PackLayout
from metarl_jax.rl import backtracking_line_search, conjugate_gradient
from metarl_jax.sweep import sweep_members, sweep_plan, train
from metarl_jax.tasks import Restriction

from .conftest import (
    MEMBERS_DIFFER,
    assert_trees_close,
    max_abs_difference,
    member_index,
    pick,
    tiny_config,
    tiny_navigation,
)
from .test_rl2 import tiny_rl2

SEEDS = (0, 1)
META_BATCH_SIZES = (1, 2, 4)
NUM_TRAIN_TASKS = (1, 3, 0)
POOL = 3
ITERATIONS = 2


def make_algorithm(name, max_meta_batch_size, pool):
    restriction = Restriction(num_tasks=pool)
    if name == "rl2":
        config = tiny_rl2(
            max_meta_batch_size=max_meta_batch_size, num_minibatches=1, train_tasks=restriction
        )
        return make_rl2(config, tiny_navigation(config.horizon))
    config = tiny_config(
        outer_optimizer=name, max_meta_batch_size=max_meta_batch_size, train_tasks=restriction
    )
    return make_maml(config, tiny_navigation())


@functools.cache
def sweeps(name):
    """The same 18 members trained packed and masked."""
    algorithm = make_algorithm(name, max(META_BATCH_SIZES), POOL)
    members, rows = sweep_members(SEEDS, META_BATCH_SIZES, NUM_TRAIN_TASKS)
    results = {
        layout: list(train(algorithm, members, ITERATIONS, ITERATIONS, layout=layout))[-1]
        for layout in ("packed", "masked")
    }
    return results, rows


def assert_results_equal(result, reference, i, j):
    """Member i of `result` equals member j of `reference`: params, every metric, env steps."""
    assert_trees_close(pick(result.state.params, i), pick(reference.state.params, j))
    for name in ("train_metrics", "eval_metrics"):
        got, wanted = getattr(result, name), getattr(reference, name)
        assert set(got) == set(wanted)
        for metric in wanted:
            np.testing.assert_allclose(
                got[metric][i], wanted[metric][j], rtol=1e-4, atol=1e-5, err_msg=metric
            )
    assert result.env_steps[i] == reference.env_steps[j]
    assert int(result.state.iteration[i]) == int(reference.state.iteration[j]) == ITERATIONS


ALGORITHMS = ["trpo", "ppo", "rl2"]
# the fast tier checks TRPO; the whole suite all three
FAST_FIRST = [ALGORITHMS[0], *(pytest.param(n, marks=pytest.mark.slow) for n in ALGORITHMS[1:])]


@pytest.mark.parametrize("name", FAST_FIRST)
def test_every_packed_member_equals_its_masked_member(name):
    """Seeds {0, 1} x meta-batch {1, 2, 4} x training tasks {1, 3, all}, in member order."""
    results, rows = sweeps(name)
    for i in range(len(rows)):
        assert_results_equal(results["packed"], results["masked"], i, i)
    # ... and the members really differ (the equalities are not trivially met)
    params = results["packed"].state.params
    base = member_index(rows, seed=0, meta_batch_size=2, num_train_tasks=POOL)
    other = member_index(rows, seed=0, meta_batch_size=4, num_train_tasks=POOL)
    assert max_abs_difference(pick(params, base), pick(params, other)) > MEMBERS_DIFFER


@pytest.mark.parametrize("name", FAST_FIRST)
def test_packed_member_equals_a_separate_run(name):
    """Meta-batch 2 on the first task of the pool, packed beside sizes 1 and 4 == a run compiled
    for meta-batch 2 and a pool of 1 alone."""
    results, rows = sweeps(name)
    members, _ = sweep_members((1,), (2,), (1,))
    algorithm = make_algorithm(name, 2, 1)
    alone = list(train(algorithm, members, ITERATIONS, ITERATIONS, layout="masked"))[-1]
    i = member_index(rows, seed=1, meta_batch_size=2, num_train_tasks=1)
    assert_results_equal(results["packed"], alone, i, 0)


def test_sweep_plan_packs_members_sharing_seed_and_tasks():
    algorithm = make_maml(tiny_config(max_meta_batch_size=4), tiny_navigation())
    members, rows = sweep_members((0, 1, 2), (1, 4), (0,))
    plan = sweep_plan(algorithm, members, num_devices=2)
    assert plan.pack == PackLayout((1, 4))
    np.testing.assert_array_equal(plan.pack.segments, [0, 1, 1, 1, 1])
    np.testing.assert_array_equal(plan.pack.positions, [0, 0, 1, 2, 3])
    packs = plan.order.reshape(-1, 2)
    assert len(packs) == 4  # 3 packs padded to a multiple of 2 devices by repeating the last
    for pack in packs:
        assert len({rows[i]["seed"] for i in pack}) == 1
        assert [rows[i]["meta_batch_size"] for i in pack] == [1, 4]
    np.testing.assert_array_equal(packs[3], packs[2])
    np.testing.assert_array_equal(plan.order[plan.back], np.arange(len(rows)))
    # the masked layout, and sweeps whose packs differ, keep one member per row (last repeated)
    masked = sweep_plan(algorithm, members, num_devices=4, layout="masked")
    assert masked.pack is None
    np.testing.assert_array_equal(masked.order, [0, 1, 2, 3, 4, 5, 5, 5])
    uneven = jax.tree.map(lambda x: x[:5], members)  # seed 2 lacks its size-4 member
    assert sweep_plan(algorithm, uneven, num_devices=1).pack is None
    # RL² packs with minibatches too (each member deals its own tasks into its own minibatches)
    rl2 = make_rl2(tiny_rl2(num_minibatches=2), tiny_navigation(3))
    assert sweep_plan(rl2, members, num_devices=1).pack == PackLayout((1, 4))
    with pytest.raises(ValueError, match="layout"):
        sweep_plan(algorithm, members, 1, layout="dense")


def random_spd(key, size, condition):
    q, _ = jnp.linalg.qr(jax.random.normal(key, (size, size)))
    return (q * jnp.geomspace(1.0, condition, size)) @ q.T


def test_batched_conjugate_gradient_equals_per_member_solves():
    """Three problems solved as rows; one converges in 2 iterations (2 distinct eigenvalues),
    the others run on: each row equals its problem solved alone, stopping test included."""
    keys = jax.random.split(jax.random.PRNGKey(0), 6)
    q, _ = jnp.linalg.qr(jax.random.normal(keys[0], (6, 6)))
    two_values = (q * jnp.asarray([1.0, 1.0, 1.0, 5.0, 5.0, 5.0])) @ q.T
    matrices = jnp.stack([two_values, random_spd(keys[1], 6, 50.0), random_spd(keys[2], 6, 1e3)])
    b = jax.random.normal(keys[3], (3, 6))
    x, r = conjugate_gradient(lambda v: jnp.einsum("gij,gj->gi", matrices, v), b, 5, 1e-10)
    for g in range(3):
        x_g, r_g = conjugate_gradient(lambda v, g=g: matrices[g] @ v, b[g], 5, 1e-10)
        np.testing.assert_allclose(x[g], x_g, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r[g], r_g, rtol=1e-5, atol=1e-6)
    solved = jnp.linalg.solve(two_values, b[0])
    np.testing.assert_allclose(x[0], solved, rtol=1e-4, atol=1e-5)  # stopped after 2
    assert float(jnp.linalg.norm(r[2])) > 1e-3  # the ill-conditioned one has not


def test_batched_line_search_equals_per_member_searches():
    """Each problem accepts its own first fraction (or none); a batch equals the searches alone."""
    # loss(f) = (f - best)^2 - best^2 (below loss 0 for f in (0, 2 best)); kl(f) = f^2 kl1
    best = jnp.asarray([0.9, 0.3, -1.0, 0.5])
    kl_at_one = jnp.asarray([0.001, 0.001, 0.001, 0.05])

    def evaluate(fraction, best=best, kl_at_one=kl_at_one):
        return (fraction - best) ** 2 - best**2, fraction**2 * kl_at_one

    before = jnp.zeros(4)
    batched = backtracking_line_search(evaluate, before, 0.01, 10, 0.5)
    for g in range(4):
        alone = backtracking_line_search(
            lambda f, g=g: evaluate(f, best[g], kl_at_one[g]), before[g], 0.01, 10, 0.5
        )
        for got, wanted in zip(batched, alone, strict=True):
            np.testing.assert_allclose(got[g], wanted, rtol=1e-6)
    # hand-derived: accepted fractions 1, 0.5, none (10 tries), 0.25 (the KL bound); tries
    np.testing.assert_allclose(batched[0], [1.0, 0.5, 0.0, 0.25])
    np.testing.assert_array_equal(batched[3], [1, 2, 10, 3])


@pytest.mark.slow
def test_packed_rl2_members_with_minibatches_equal_masked_members_and_a_separate_run():
    """Two minibatches per epoch: each packed member deals its own active tasks into its own
    minibatches with its own key, as the masked member deals them (the size-1 member's second
    minibatch holds no active task in both layouts). Seeds {0, 1} x meta-batch {1, 2, 4} on a
    pool of 3; and meta-batch 2 == a run compiled for meta-batch 2 alone."""
    restriction = Restriction(num_tasks=POOL)
    config = tiny_rl2(max_meta_batch_size=4, num_minibatches=2, train_tasks=restriction)
    algorithm = make_rl2(config, tiny_navigation(config.horizon))
    members, rows = sweep_members(SEEDS, META_BATCH_SIZES, (POOL,))
    assert sweep_plan(algorithm, members, num_devices=1).pack == PackLayout(META_BATCH_SIZES)
    packed, masked = (
        list(train(algorithm, members, ITERATIONS, ITERATIONS, layout=layout))[-1]
        for layout in ("packed", "masked")
    )
    for i in range(len(rows)):
        assert_results_equal(packed, masked, i, i)
    base = member_index(rows, seed=0, meta_batch_size=2, num_train_tasks=POOL)
    other = member_index(rows, seed=0, meta_batch_size=4, num_train_tasks=POOL)
    params = packed.state.params
    assert max_abs_difference(pick(params, base), pick(params, other)) > MEMBERS_DIFFER

    alone_config = tiny_rl2(max_meta_batch_size=2, num_minibatches=2, train_tasks=restriction)
    alone_members, _ = sweep_members((1,), (2,), (POOL,))
    alone = list(
        train(
            make_rl2(alone_config, tiny_navigation(config.horizon)),
            alone_members,
            ITERATIONS,
            ITERATIONS,
            layout="masked",
        )
    )[-1]
    i = member_index(rows, seed=1, meta_batch_size=2, num_train_tasks=POOL)
    assert_results_equal(packed, alone, i, 0)
