"""The exact Bayes-optimal value of Bernoulli bandits: published and hand-computed values, a
brute-force induction without the symmetry reduction, exact values of index policies (none may
exceed it), and the Gittins baseline played on random tasks."""

import functools
import itertools
import math
from fractions import Fraction

import jax
import numpy as np
import pytest

from metarl_jax.baselines import (
    BayesOptimalOutOfReach,
    bayes_optimal_state_count,
    bayes_optimal_value,
    default_gittins_discount,
    gittins_index_table,
    oracle_expected_total,
    play,
)
from metarl_jax.tasks import bandit_space, sample_batch


def with_arm(arms: tuple, arm: int, posterior: tuple[int, int]) -> tuple:
    return (*arms[:arm], posterior, *arms[arm + 1 :])


def brute_force_value(num_arms: int, num_pulls: int) -> Fraction:
    """Expectimax over ordered per-arm (successes, failures), in exact fractions."""

    @functools.cache
    def value(arms, pulls_left):
        if pulls_left == 0:
            return Fraction(0)
        best = None
        for arm, (successes, failures) in enumerate(arms):
            mean = Fraction(successes + 1, successes + failures + 2)
            paid = with_arm(arms, arm, (successes + 1, failures))
            unpaid = with_arm(arms, arm, (successes, failures + 1))
            pulled = mean * (1 + value(paid, pulls_left - 1)) + (1 - mean) * value(
                unpaid, pulls_left - 1
            )
            best = pulled if best is None else max(best, pulled)
        return best

    return value(((0, 0),) * num_arms, num_pulls)


def index_policy_value(index, num_arms: int, num_pulls: int) -> float:
    """Exact expected total of the policy that pulls an arm of largest index[s, f], ties broken
    uniformly at random (the Beta(1, 1) prior's expectation, by recursion over sorted states)."""

    @functools.cache
    def value(arms, pulls_left):
        if pulls_left == 0:
            return 0.0
        indices = [index[successes, failures] for successes, failures in arms]
        tied = [arm for arm, x in enumerate(indices) if x == max(indices)]
        total = 0.0
        for arm in tied:
            successes, failures = arms[arm]
            mean = (successes + 1) / (successes + failures + 2)
            paid = tuple(sorted(with_arm(arms, arm, (successes + 1, failures))))
            unpaid = tuple(sorted(with_arm(arms, arm, (successes, failures + 1))))
            total += mean * (1 + value(paid, pulls_left - 1)) + (1 - mean) * value(
                unpaid, pulls_left - 1
            )
        return total / len(tied)

    return value(((0, 0),) * num_arms, num_pulls)


@pytest.mark.parametrize(("num_arms", "published"), [(5, 6.660), (10, 6.714)])
def test_bayes_optimal_value_of_ten_pulls_matches_published_values(num_arms, published):
    assert bayes_optimal_value(num_arms, 10) == pytest.approx(published, abs=5e-4)


@pytest.mark.parametrize("num_pulls", [0, 1, 7, 20])
def test_one_arm_earns_half_per_pull(num_pulls):
    assert bayes_optimal_value(1, num_pulls) == pytest.approx(num_pulls / 2, abs=1e-12)


@pytest.mark.parametrize("num_arms", [1, 2, 5, 50])
def test_one_pull_earns_half(num_arms):
    assert bayes_optimal_value(num_arms, 1) == pytest.approx(0.5, abs=1e-12)


def test_two_arms_two_pulls_by_hand():
    """The first pull pays with probability 1/2. After a success the arm's posterior mean is
    2/3, above a fresh arm's 1/2, so pull it again; after a failure it is 1/3, so pull the fresh
    arm: 1/2 + 1/2 * 2/3 + 1/2 * 1/2 = 13/12 = 1.0833..."""
    assert bayes_optimal_value(2, 2) == pytest.approx(13 / 12, abs=1e-12)


@pytest.mark.parametrize(("num_arms", "num_pulls"), [(2, 4), (3, 3), (2, 6), (4, 3)])
def test_symmetry_reduced_induction_matches_brute_force(num_arms, num_pulls):
    exact = brute_force_value(num_arms, num_pulls)
    assert bayes_optimal_value(num_arms, num_pulls) == pytest.approx(float(exact), abs=1e-12)


def test_arms_beyond_the_number_of_pulls_add_nothing():
    assert bayes_optimal_value(50, 10) == bayes_optimal_value(10, 10)
    # ...but up to n arms each extra arm is worth something, and the oracle stays out of reach.
    values = [bayes_optimal_value(k, 6) for k in range(1, 7)]
    assert all(np.diff(values) > 0)
    assert all(v < oracle_expected_total(k, 6) for k, v in enumerate(values[1:], start=2))


@pytest.mark.parametrize("num_arms", [2, 5])
def test_no_index_policy_beats_the_bayes_optimal_value(num_arms):
    num_pulls = 8
    optimum = bayes_optimal_value(num_arms, num_pulls)
    depth = num_pulls
    successes = np.arange(depth + 1)[:, None]
    failures = np.arange(depth + 1)[None, :]
    policies = {
        "random": np.zeros((depth + 1, depth + 1)),
        "gittins": gittins_index_table(default_gittins_discount(num_pulls), depth),
        "gittins_0.99": gittins_index_table(0.99, depth),
        "posterior_mean": (successes + 1) / (successes + failures + 2.0),
        "fewest_failures": -failures + 0.0 * successes,
    }
    achieved = {
        name: index_policy_value(index, num_arms, num_pulls) for name, index in policies.items()
    }
    for name, value in achieved.items():
        assert value <= optimum + 1e-12, name
    assert achieved["random"] == pytest.approx(num_pulls / 2, abs=1e-12)
    # Gittins (an infinite-horizon index) is within 0.01 of optimal here, yet not optimal.
    assert 1e-3 < optimum - achieved["gittins"] < 0.02


def test_gittins_played_on_random_tasks_stays_below_the_bayes_optimal_value():
    num_arms, num_pulls, num_instances = 5, 10, 20_000
    tasks = sample_batch(bandit_space(num_arms).sample, jax.random.key(0), num_instances)
    rewards = play("gittins", tasks, num_pulls, jax.random.key(1))
    totals = np.asarray(rewards, np.float64).sum(axis=1)
    standard_error = totals.std(ddof=1) / math.sqrt(num_instances)
    optimum = bayes_optimal_value(num_arms, num_pulls)
    assert totals.mean() < optimum + 3 * standard_error
    assert totals.mean() > optimum - 0.1


@pytest.mark.parametrize(("num_arms", "num_pulls"), [(1, 5), (2, 4), (3, 3), (5, 3), (4, 5)])
def test_state_count_matches_enumeration(num_arms, num_pulls):
    posteriors = [
        (successes, pulls - successes)
        for pulls in range(num_pulls + 1)
        for successes in range(pulls + 1)
    ]
    states = [
        arms
        for arms in itertools.combinations_with_replacement(posteriors, num_arms)
        if sum(successes + failures for successes, failures in arms) <= num_pulls
    ]
    count = bayes_optimal_state_count(num_arms, num_pulls)
    assert count == len(states)
    # The induction builds exactly those states: the limit is met with no room to spare.
    bayes_optimal_value(num_arms, num_pulls, max_states=count)
    with pytest.raises(BayesOptimalOutOfReach):
        bayes_optimal_value(num_arms, num_pulls, max_states=count - 1)


def test_out_of_reach_problems_are_refused_quickly():
    with pytest.raises(BayesOptimalOutOfReach, match="states"):
        bayes_optimal_value(5, 100, max_states=20_000)
    with pytest.raises(BayesOptimalOutOfReach, match="overflow"):
        bayes_optimal_value(10, 100)
    with pytest.raises(ValueError, match="num_arms"):
        bayes_optimal_value(0, 10)
