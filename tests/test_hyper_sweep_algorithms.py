"""Every algorithm takes its step sizes as sweep axes: a swept member equals a run with its
values alone (parameters and every metric), and the swept values change the result.

Apart from tests/test_hyper_sweep.py so that the two files' runs share the suite's two workers."""

import dataclasses
import functools

import numpy as np
import pytest

from metarl_jax.algos import make_macaw, make_maml, make_pearl, make_rl2
from metarl_jax.algos.hyper_sweep import swept_algorithm
from metarl_jax.envs import make_env
from metarl_jax.sweep import sweep_members, train

from .conftest import (
    MEMBERS_DIFFER,
    assert_trees_close,
    max_abs_difference,
    member_index,
    pick,
    tiny_config,
    tiny_navigation,
)
from .test_macaw import bandit, thompson_data, tiny_macaw
from .test_pearl import HORIZON, tiny_pearl
from .test_rl2 import tiny_rl2

ITERATIONS = 2


def assert_member_equals_run(result, i, alone):
    assert_trees_close(pick(result.state.params, i), pick(alone.state.params, 0))
    for name in ("train_metrics", "eval_metrics"):
        got, wanted = getattr(result, name), getattr(alone, name)
        assert set(got) == set(wanted)
        for metric in wanted:
            np.testing.assert_allclose(
                got[metric][i], wanted[metric][0], rtol=1e-4, atol=1e-5, err_msg=metric
            )
    assert result.env_steps[i] == alone.env_steps[0]


def _maml(outer_optimizer):
    config = tiny_config(outer_optimizer=outer_optimizer, max_meta_batch_size=2)
    return make_maml, config, tiny_navigation()


def _rl2():
    config = tiny_rl2(max_meta_batch_size=2, num_minibatches=2)
    return make_rl2, config, tiny_navigation(config.horizon)


def _pearl():
    return make_pearl, tiny_pearl(max_meta_batch_size=2), make_env("navigation", horizon=HORIZON)


def _macaw():
    data = thompson_data(3, 2, 100)
    return functools.partial(make_macaw, data=data), tiny_macaw(max_meta_batch_size=2), bandit()


# Each algorithm's step sizes of study (f), two values each: seed 0 x the 2 x 2 grid in one call
# (MAML-TRPO also x meta-batch {1, 2}, so its packs hold one value each); the grid's highest
# corner at meta-batch 2 is run alone, its lowest corner must differ from it.
CASES = {
    "maml_trpo": (
        functools.partial(_maml, "trpo"), {"inner_lr": (0.05, 0.3), "max_kl": (0.002, 0.02)}
    ),
    "maml_ppo": (
        functools.partial(_maml, "ppo"), {"inner_lr": (0.05, 0.3), "outer_lr": (1e-3, 1e-2)}
    ),
    "rl2_ppo": (_rl2, {"outer_lr": (1e-3, 1e-2), "clip": (0.1, 0.3)}),
    "pearl": (_pearl, {"sac_lr": (3e-4, 3e-3), "kl_weight": (0.01, 1.0)}),
    "macaw": (_macaw, {"initial_inner_lr": (0.1, 1.0), "policy_lr": (1e-4, 1e-2)}),
}  # fmt: skip


def swept_run(name):
    build, hypers = CASES[name]
    make, config, env = build()
    meta_batch_sizes = (1, 2) if name == "maml_trpo" else (2,)
    members, rows = sweep_members((0,), meta_batch_sizes, hypers=hypers)
    algorithm = swept_algorithm(make, config, env)
    return list(train(algorithm, members, ITERATIONS, ITERATIONS))[-1], rows


def run_alone(name, values):
    build, _ = CASES[name]
    make, config, env = build()
    members, _ = sweep_members((0,), (2,))
    algorithm = make(dataclasses.replace(config, **values), env)
    return list(train(algorithm, members, ITERATIONS, ITERATIONS))[-1]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_swept_members_equal_their_runs_alone(name):
    """In the algorithm's default layout (packed where it packs; the layouts' equality is
    tests/test_packed_sweep.py's, the sweep on several devices tests/test_sharding.py's)."""
    result, rows = swept_run(name)
    hypers = CASES[name][1]
    lowest = {s: values[0] for s, values in hypers.items()}
    highest = {s: values[-1] for s, values in hypers.items()}
    low, high = (member_index(rows, seed=0, meta_batch_size=2, **v) for v in (lowest, highest))
    assert_member_equals_run(result, high, run_alone(name, highest))
    params = result.state.params
    assert max_abs_difference(pick(params, low), pick(params, high)) > MEMBERS_DIFFER
