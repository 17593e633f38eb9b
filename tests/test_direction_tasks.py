"""Cheetah-Dir's evaluation shows inference: both directions played equally, returns reported per
direction, the task-agnostic bound as a level; the env wrappers an oracle and MAML's reference
action scaling use; the physics path chosen for the backend."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metarl_jax.algos.meta_training import task_group_metrics, task_samplers
from metarl_jax.envs import (
    Env,
    make_env,
    resolve_physics,
    with_normalized_actions,
    with_task_in_observation,
)
from metarl_jax.tasks import (
    DirectionTask,
    Restriction,
    TaskSpace,
    draw_pool,
    forward_backward_space,
    parse_restriction,
)
from metarl_jax.tasks.spaces import direction_angle_space


@pytest.mark.parametrize("n", [2, 6, 20])
def test_evaluation_plays_both_directions_equally(n):
    space = forward_backward_space()
    samplers = task_samplers(space, Restriction(), Restriction(), pool_seed=0)
    for sample in (samplers.eval, samplers.train_region):
        directions = np.asarray(sample(jax.random.PRNGKey(3), n).direction)
        assert (directions > 0).sum() == (directions < 0).sum() == n // 2
    # training still samples: a meta-batch is not forced to balance
    trained = np.asarray(samplers.train(_member())(jax.random.PRNGKey(3), 200).direction)
    assert 60 < (trained > 0).sum() < 140
    # the forward-backward Ant is balanced alike
    fwd_back = direction_angle_space(forward_backward=True)
    angles = task_samplers(fwd_back, Restriction(), Restriction(), 0).eval(jax.random.PRNGKey(0), 4)
    np.testing.assert_allclose(np.degrees(np.asarray(angles.angle)), [0, 180, 0, 180], atol=1e-4)


def _member():
    from metarl_jax.algos import sweep_member

    return sweep_member(0, 1)


def test_finite_pools_of_a_two_task_space_hold_both_tasks_for_every_seed():
    space = forward_backward_space()
    for seed in range(6):  # random draws gave {-1, -1} or {+1, +1} for some pool seeds
        pool = draw_pool(space, parse_restriction("finite:2", space), seed)
        assert sorted(np.asarray(pool.direction).tolist()) == [-1.0, 1.0]
    # pools of a region that is not the whole space are still drawn from it
    forward = dataclasses.replace(parse_restriction("range:0,1", space), num_tasks=3)
    assert np.asarray(draw_pool(space, forward, 0).direction).tolist() == [1.0, 1.0, 1.0]


def test_task_group_metrics_average_each_direction():
    space = forward_backward_space()
    tasks = DirectionTask(jnp.array([1.0, -1.0, 1.0, -1.0]))
    returns = jnp.array([10.0, -2.0, 20.0, -4.0])
    metrics = task_group_metrics(space, "eval", tasks, returns)
    assert metrics == {
        "eval/return_dir_forward": pytest.approx(15.0),
        "eval/return_dir_backward": pytest.approx(-3.0),
    }
    navigation = make_env("navigation").task_space
    assert task_group_metrics(navigation, "eval", None, returns) == {}  # a space without groups


def _recording_env() -> Env:
    """A one-dimensional env whose reward is the action it receives, and whose obs is 0."""
    space = TaskSpace(
        "toy", ("direction",), (-1.0,), (1.0,), lambda k: DirectionTask(jnp.float32(1.0)),
        lambda t: jnp.reshape(t.direction, (1,)),
    )  # fmt: skip
    return Env(
        name="toy",
        task_space=space,
        obs_size=2,
        action_size=1,
        discrete=False,
        horizon=3,
        reset=lambda key, task: (jnp.zeros(2), ()),
        step=lambda key, state, action, task: (jnp.zeros(2), state, action[0], False),
        action_bound=2.0,
    )


def test_normalized_actions_scale_onto_the_box_and_clip():
    env = with_normalized_actions(_recording_env(), 10.0)
    assert env.action_bound == 10.0
    step = lambda a: float(env.step(None, (), jnp.array([a]), DirectionTask(1.0))[2])
    assert step(5.0) == pytest.approx(1.0)  # 5 of 10 is half the box [-2, 2]
    assert step(-10.0) == pytest.approx(-2.0)
    assert step(30.0) == pytest.approx(2.0)  # clipped, so a cost on it sees the clipped action


def test_task_in_observation_appends_the_task_coordinates():
    env = with_task_in_observation(_recording_env())
    assert env.obs_size == 3
    obs, state = env.reset(None, DirectionTask(jnp.float32(-1.0)))
    np.testing.assert_allclose(obs, [0.0, 0.0, -1.0])
    obs, *_ = env.step(None, state, jnp.array([0.5]), DirectionTask(jnp.float32(1.0)))
    np.testing.assert_allclose(obs, [0.0, 0.0, 1.0])


def test_physics_auto_is_native_on_a_cpu():
    assert jax.default_backend() == "cpu"
    assert resolve_physics("auto") == "native"
    assert resolve_physics("mjx") == "mjx"
    auto = make_env("cheetah_dir", horizon=3)
    assert auto.step.__qualname__.startswith("make_native_locomotion_env")
    mjx = make_env("cheetah_dir", horizon=3, physics="mjx")
    assert mjx.step.__qualname__.startswith("make_locomotion_env")


def test_the_app_records_the_physics_auto_chose():
    from experiments import cli

    cli.FLAGS.unparse_flags()
    try:
        cli.FLAGS(["main", "--env=cheetah_dir", "--horizon=5", "--algo=maml_trpo"])
        spec = cli.spec_from_flags()
        assert "--physics=native" in cli.flags_file_text().splitlines()
        assert spec.physics.startswith("native") and "auto" in spec.physics
        cli.FLAGS.unparse_flags()
        cli.FLAGS(["main", "--env=cheetah_dir", "--horizon=5", "--physics=mjx"])
        asked = cli.spec_from_flags().physics
        assert asked.startswith("mjx") and asked.endswith("as asked")
    finally:
        cli.FLAGS.unparse_flags()
