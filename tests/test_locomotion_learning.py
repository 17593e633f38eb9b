"""Locomotion learns: MAML-TRPO infers Cheetah-Dir's direction in a short CPU run.

The task only flips the sign of the velocity reward and the control cost is >= 0, so any policy
that ignores the task scores at most 0 averaged over the two directions. Evaluations play both
directions equally; a direction average clearly above 0 after one adaptation step, with both
directions positive, is therefore inference, while the pre-adaptation policy (which cannot know
the direction) stays near 0. Native physics (MuJoCo C from the jitted loop, the CPU default),
horizon 50, actions normalised with scale 10 (the reference's). Measured on a 2-core CPU (seeds
0, 1): the direction average after one step stays near 0 for ~40 iterations, then rises (seed 0:
2.0 at 40, 12.3 at 50, 19.8 at 80 with forward 34.4 and backward 5.2; seed 1: 14.3 at 80, forward
20.4, backward 8.3); before adaptation it stays within ±1. About a minute and a half.
"""

import jax
import numpy as np
import pytest

from metarl_jax.algos import MamlConfig, make_maml
from metarl_jax.envs import make_env, with_normalized_actions
from metarl_jax.sweep import init_states, sweep_members, train

pytestmark = pytest.mark.slow  # learning checks and app runs: the slow tier

HORIZON = 50
ITERATIONS = 100


def test_maml_trpo_infers_the_cheetah_direction():
    env = with_normalized_actions(make_env("cheetah_dir", horizon=HORIZON), 10.0)
    config = MamlConfig(
        horizon=HORIZON,
        hidden_sizes=(32, 32),
        rollouts_per_task=10,
        max_meta_batch_size=10,
        fisher_subsample=0.25,
        num_eval_tasks=10,
        eval_adapt_steps=1,
    )
    algorithm = make_maml(config, env)
    members, _ = sweep_members((0,), (10,))
    state = init_states(algorithm, members)
    initial = jax.device_get(jax.jit(jax.vmap(algorithm.evaluate))(state, members))
    chunks = list(train(algorithm, members, ITERATIONS, 10, state=state))
    final = chunks[-1].eval_metrics
    report = {name: np.round(values, 2).tolist() for name, values in final.items()}
    report["initial"] = float(initial["eval/return"][0])

    assert abs(float(initial["eval/return"][0])) < 2.0, report  # nothing learnt: about 0
    assert float(final["eval/return"][0]) > 10.0, report  # the direction average after a step
    assert float(final["eval/return_dir_forward"][0]) > 2.0, report
    assert float(final["eval/return_dir_backward"][0]) > 2.0, report
    # the gain is the adaptation's: before its step the policy cannot tell the directions apart
    assert abs(float(final["eval/return_step0"][0])) < 3.0, report
