"""Behaviour of the Bernoulli-bandit baselines: hand-computed plays on deterministic arms,
statistical comparisons on random tasks, and the Gittins table against bisection and
published values.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.study_design import seed_reported_levels
from metarl_jax.baselines import (
    BASELINES,
    default_gittins_discount,
    gittins_index_table,
    oracle_expected_total,
    play,
    rollout,
    scripted_returns,
    total_reward_table,
)
from metarl_jax.baselines.bayes_optimal import bayes_optimal_value
from metarl_jax.baselines.levels import (
    headline_metric,
    level_span,
    levels_framing,
    position,
    reference_levels,
)
from metarl_jax.envs import make_env
from metarl_jax.tasks import BanditTask, GoalTask, bandit_space, sample_batch
from metarl_jax.tasks.spaces import DirectionTask

NUM_ARMS = 5
NUM_PULLS = 100
NUM_INSTANCES = 1000

# Two deterministic tasks (one good arm) and one stochastic task, all played for SHORT_PLAY pulls.
FIXED_TASKS = BanditTask(
    jnp.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.1, 0.9, 0.2, 0.3]], jnp.float32)
)
SHORT_PLAY = 20


@pytest.fixture(scope="module")
def random_tasks():
    return sample_batch(bandit_space(NUM_ARMS).sample, jax.random.key(0), NUM_INSTANCES)


@pytest.fixture(scope="module")
def totals(random_tasks):
    """{baseline: per-instance total rewards} on the shared tasks, all with the same key."""
    key = jax.random.key(1)
    return {
        name: np.asarray(play(name, random_tasks, NUM_PULLS, key), np.float64).sum(axis=1)
        for name in BASELINES
    }


def standard_error(values) -> float:
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def posterior_means(depth: int) -> np.ndarray:
    successes = np.arange(depth + 1)[:, None]
    failures = np.arange(depth + 1)[None, :]
    return (successes + 1) / (successes + failures + 2.0)


def reachable(depth: int) -> np.ndarray:
    return np.add.outer(np.arange(depth + 1), np.arange(depth + 1)) <= depth


def bisected_gittins_index(successes, failures, discount, horizon, iterations=45):
    """One state's index by bisection on λ, with backward induction up to a + b = horizon + 2."""
    low, high = 0.0, 1.0
    for _ in range(iterations):
        retirement = 0.5 * (low + high)
        gained = np.arange(horizon - successes - failures + 1)
        value = np.maximum(retirement, (successes + gained + 1) / (horizon + 2.0))
        for total in range(horizon - 1, successes + failures - 1, -1):
            mean = (successes + np.arange(total - successes - failures + 1) + 1) / (total + 2.0)
            continuing = (1 - discount) * mean + discount * (
                mean * value[1:] + (1 - mean) * value[:-1]
            )
            value = np.maximum(retirement, continuing)
        if continuing[0] > retirement:
            low = retirement
        else:
            high = retirement
    return 0.5 * (low + high)


# ----- the oracle ----------------------------------------------------------------------------


def test_oracle_mean_total_matches_closed_form():
    tasks = sample_batch(bandit_space(NUM_ARMS).sample, jax.random.key(2), 4000)
    pulls = 50
    totals = np.asarray(play("oracle", tasks, pulls, jax.random.key(3)), np.float64).sum(axis=1)
    expected = oracle_expected_total(NUM_ARMS, pulls)
    assert expected == pytest.approx(pulls * 5 / 6)
    assert abs(totals.mean() - expected) < 4 * standard_error(totals)


def test_oracle_always_pulls_the_best_arm():
    arms, rewards = rollout("oracle", FIXED_TASKS, SHORT_PLAY, jax.random.key(4))
    np.testing.assert_array_equal(
        np.asarray(arms), [[1] * SHORT_PLAY, [3] * SHORT_PLAY, [1] * SHORT_PLAY]
    )
    np.testing.assert_array_equal(np.asarray(rewards)[:2].sum(axis=1), [SHORT_PLAY, SHORT_PLAY])


# ----- hand-computed plays on deterministic arms ---------------------------------------------


def test_greedy_explores_each_arm_once_then_exploits():
    arms, rewards = rollout("greedy", FIXED_TASKS, SHORT_PLAY, jax.random.key(5))
    arms, rewards = np.asarray(arms), np.asarray(rewards)
    # Arms 0..3 once each (reward 1 only from the good arm), then the good arm every pull.
    np.testing.assert_array_equal(arms[0], [0, 1, 2, 3] + [1] * (SHORT_PLAY - 4))
    np.testing.assert_array_equal(arms[1], [0, 1, 2, 3] + [3] * (SHORT_PLAY - 4))
    np.testing.assert_array_equal(rewards[:2].sum(axis=1), [SHORT_PLAY - 3, SHORT_PLAY - 3])


def test_greedy_breaks_ties_uniformly_at_random(random_tasks):
    never_paying = BanditTask(jnp.zeros_like(random_tasks.arm_probs))
    arms = np.asarray(rollout("greedy", never_paying, NUM_PULLS, jax.random.key(6))[0])
    np.testing.assert_array_equal(
        arms[:, :NUM_ARMS], np.tile(np.arange(NUM_ARMS), (NUM_INSTANCES, 1))
    )
    counts = np.bincount(arms[:, NUM_ARMS:].ravel(), minlength=NUM_ARMS)
    share = counts / counts.sum()
    np.testing.assert_allclose(share, 1 / NUM_ARMS, atol=0.01)


def test_ucb1_pulls_each_arm_once_first():
    arms = np.asarray(rollout("ucb1", FIXED_TASKS, SHORT_PLAY, jax.random.key(7))[0])
    np.testing.assert_array_equal(arms[:, :4], np.tile(np.arange(4), (3, 1)))
    # Pull 5: the good arm has mean 1 + bonus, the others 0 + the same bonus.
    np.testing.assert_array_equal(arms[:2, 4], [1, 3])


def test_unknown_policy_and_parameter_are_rejected():
    with pytest.raises(ValueError, match="unknown policy"):
        play("softmax", FIXED_TASKS, SHORT_PLAY, jax.random.key(0))
    with pytest.raises(TypeError, match="epsilon"):
        play("ucb1", FIXED_TASKS, SHORT_PLAY, jax.random.key(0), epsilon=0.2)


# ----- comparisons on random tasks -----------------------------------------------------------


def test_random_earns_half_per_pull(totals):
    random_totals = totals["random"]
    assert abs(random_totals.mean() - NUM_PULLS / 2) < 4 * standard_error(random_totals)


@pytest.mark.parametrize("name", ["ucb1", "thompson", "gittins"])
def test_learning_policies_beat_random_by_ten_points_per_pull(totals, name):
    margin = (totals[name] - totals["random"]) / NUM_PULLS
    assert margin.mean() - 4 * standard_error(margin) > 0.10


def test_gittins_at_least_matches_ucb1(totals):
    assert totals["gittins"].mean() >= 0.97 * totals["ucb1"].mean()


def test_oracle_bounds_every_baseline_instance_by_instance(totals):
    # With the same key every policy sees the same uniform draw at pull t; a draw that pays on
    # any arm pays on the best one, so no instance can beat the oracle.
    for name in BASELINES:
        assert (totals["oracle"] >= totals[name]).all(), name


def test_epsilon_greedy_extremes(random_tasks, totals):
    key = jax.random.key(1)
    fully_random = np.asarray(
        play("epsilon_greedy", random_tasks, NUM_PULLS, key, epsilon=1.0), np.float64
    ).sum(axis=1)
    difference = fully_random - totals["random"]
    assert abs(difference.mean()) < 4 * standard_error(difference)

    never_exploring = rollout("epsilon_greedy", random_tasks, NUM_PULLS, key, epsilon=0.0)
    greedy = rollout("greedy", random_tasks, NUM_PULLS, key)
    np.testing.assert_array_equal(np.asarray(never_exploring[0]), np.asarray(greedy[0]))
    np.testing.assert_array_equal(np.asarray(never_exploring[1]), np.asarray(greedy[1]))
    # The default epsilon does explore: it differs from greedy somewhere.
    default = np.asarray(rollout("epsilon_greedy", random_tasks, NUM_PULLS, key)[0])
    assert (default != np.asarray(greedy[0])).any()


def test_total_reward_table_reports_every_baseline(random_tasks, totals):
    table = total_reward_table(random_tasks, NUM_PULLS, jax.random.key(1))
    assert tuple(table) == BASELINES
    for name, (mean, error) in table.items():
        assert mean == pytest.approx(totals[name].mean(), rel=1e-6)
        assert error == pytest.approx(standard_error(totals[name]), rel=1e-6)


# ----- the Gittins index table ---------------------------------------------------------------


def test_gittins_index_of_the_uniform_prior_has_an_exploration_bonus():
    index = gittins_index_table(0.99, NUM_PULLS)
    assert 0.5 < index[0, 0] < 1.0


def test_gittins_index_is_monotone_in_successes_and_failures():
    depth = NUM_PULLS
    index = gittins_index_table(default_gittins_discount(depth), depth)
    inner = reachable(depth - 1)
    more_successes = index[1:, :-1] - index[:-1, :-1]
    more_failures = index[:-1, 1:] - index[:-1, :-1]
    assert (more_successes[inner] > 0).all()
    assert (more_failures[inner] < 0).all()


def test_gittins_index_exceeds_the_posterior_mean():
    depth = NUM_PULLS
    index = gittins_index_table(0.99, depth)
    assert (index - posterior_means(depth))[reachable(depth)].min() > 0


def test_gittins_index_without_discount_is_the_posterior_mean():
    depth = 30
    np.testing.assert_allclose(
        gittins_index_table(1e-4, depth)[reachable(depth)],
        posterior_means(depth)[reachable(depth)],
        atol=1e-3,
    )


def test_gittins_table_matches_bisection_state_by_state():
    depth, discount = 8, 0.9
    horizon = depth + round(1 / (1 - discount))  # the documented truncation
    index = gittins_index_table(discount, depth)
    for successes in range(depth + 1):
        for failures in range(depth + 1 - successes):
            bisected = bisected_gittins_index(successes, failures, discount, horizon)
            assert index[successes, failures] == pytest.approx(bisected, abs=1e-4)
            assert index[successes, failures] <= bisected + 1e-9


@pytest.mark.parametrize(("discount", "published"), [(0.9, 0.7029), (0.99, 0.8699)])
def test_gittins_index_of_the_uniform_prior_matches_published_tables(discount, published):
    # Gittins, Glazebrook & Weber, Multi-armed Bandit Allocation Indices (2011), Bernoulli tables.
    assert gittins_index_table(discount, 200)[0, 0] == pytest.approx(published, abs=2e-4)


def test_gittins_discount_follows_the_horizon():
    assert default_gittins_discount(100) == pytest.approx(0.99)
    assert default_gittins_discount(5) == pytest.approx(0.9)
    assert default_gittins_discount(10_000) == pytest.approx(0.995)


def test_navigation_scripted_levels_by_hand():
    """Goal (0.3, 0), horizon 5: staying returns 5 x -0.3; the fastest approach passes 0.1, 0.2
    and stops on the goal (rewards -0.2, -0.1, 0, then the episode is done). Goal (0.2, 0.2):
    diagonal steps of 0.1 per axis reach (0.1, 0.1), then the goal: -0.1·√2 — better than
    steps of length 0.1 along the straight line (-0.1828, -0.0828, 0)."""
    env = make_env("navigation", horizon=5)
    tasks = GoalTask(jnp.array([[0.3, 0.0], [0.0, -0.05], [0.2, 0.2]]))
    levels = scripted_returns(env, tasks, jax.random.PRNGKey(0))
    stay = -1.5 - 0.25 - 5 * 0.2 * np.sqrt(2)
    assert levels["stay_at_start"] == pytest.approx(stay / 3, abs=1e-5)
    assert levels["fastest_to_goal"] == pytest.approx((-0.3 + 0.0 - 0.1 * np.sqrt(2)) / 3, abs=1e-5)


def test_bandit_reference_levels_by_hand():
    """Two tasks with one sure arm each among 5: the best arm pays 1 per pull, random play about
    1/5; Bayes-optimal play is the exact prior expectation per pull, the upper level; a value
    halfway between random and Bayes-optimal sits at 0.5."""
    env = make_env("bandit", horizon=1, num_arms=5)
    tasks = BanditTask(jnp.array([[1.0, 0, 0, 0, 0], [0, 0, 0, 0, 1.0]]))
    levels = reference_levels(env, tasks, jax.random.PRNGKey(0), 10)
    values = levels["values"]
    assert levels["metric"] == "reward_per_step" == headline_metric("bandit")
    assert (levels["lower"], levels["upper"]) == ("random", "bayes_optimal")
    assert values["best_arm"] == 1.0
    assert values["bayes_optimal"] == pytest.approx(bayes_optimal_value(5, 10) / 10)
    assert 0.0 < values["random"] < 0.45  # 20 pulls, each paying 1 with probability 1/5
    assert values["random"] < values["thompson"] <= 1.0 and values["gittins"] <= 1.0
    middle = (values["random"] + values["bayes_optimal"]) / 2
    assert position(levels, middle) == pytest.approx(0.5)
    assert position(levels, values["random"]) == pytest.approx(0.0)
    # beyond the exact induction's reach (and the Gittins table's), the best arm is the upper level
    long = reference_levels(env, tasks, jax.random.PRNGKey(0), 1000)
    assert long["upper"] == "best_arm" and "gittins" not in long["values"]
    assert "bayes_optimal" not in long["values"]


def test_navigation_and_locomotion_reference_levels():
    nav = make_env("navigation", horizon=4)
    tasks = GoalTask(jnp.array([[0.3, 0.0], [0.0, -0.2]]))
    levels = reference_levels(nav, tasks, jax.random.PRNGKey(0), 12)
    assert levels["values"] == scripted_returns(nav, tasks, jax.random.PRNGKey(0))
    assert (levels["metric"], levels["lower"], levels["upper"]) == (
        "return", "stay_at_start", "fastest_to_goal"
    )  # fmt: skip
    directions = DirectionTask(jnp.array([-1.0, 1.0]))
    short = reference_levels(make_env("cheetah_dir", physics="native", horizon=5), directions,
                             jax.random.PRNGKey(0), 5)  # fmt: skip
    # Cheetah-Dir: a policy that ignores the direction scores at most 0 averaged over both
    assert list(short["values"]) == ["zero_action", "task_agnostic_bound"]
    assert (short["lower"], short["upper"]) == ("task_agnostic_bound", None)
    assert short["values"]["task_agnostic_bound"] == 0.0
    assert position(short, 100.0) is None
    # at the seed paper's horizon the app adds its reported returns, the best the upper level
    reported = seed_reported_levels("cheetah_dir", 200)
    seed = reference_levels(make_env("cheetah_dir", physics="native"), directions,
                            jax.random.PRNGKey(0), 200, reported)  # fmt: skip
    assert seed["upper"] == "seed_pearl" and seed["values"]["seed_pearl"] == 1900.0
    assert abs(seed["values"]["zero_action"]) < 5.0  # standing still earns about nothing


def test_levels_frame_a_run_only_in_its_headline_metric():
    eval_levels = {
        "metric": "eval/reward_per_step",
        "values": {"random": 0.5, "bayes_optimal": 0.7},
        "lower": "random",
        "upper": "bayes_optimal",
    }
    levels = {"eval": eval_levels}
    assert levels_framing(levels, "eval/reward_per_step") is eval_levels
    assert levels_framing(levels, "eval/return") is None  # computed in another metric
    assert levels_framing(levels, "eval/reward_per_step", prefix="train") is None
    assert level_span(levels_framing(levels, "eval/reward_per_step")) == pytest.approx(0.2)
    assert level_span(levels_framing(levels, "eval/return")) is None
