"""Classic Bernoulli-bandit baselines, vectorised over task instances in JAX.

Every policy plays `num_pulls` pulls on each instance of a batch of `BanditTask`s: one
`lax.scan` over pulls, `vmap`ped over instances, with per-arm success and failure counts as
state. A pull's reward is 1 when a uniform draw falls below the pulled arm's probability, so arms
with p = 0 or p = 1 are deterministic. Pull t of instance i draws its keys from
`fold_in(split(key, n)[i], t)` whatever the policy, so policies played with the same key see the
same random numbers (common random numbers sharpen the comparisons).

Policies ("unpulled arms first" means: while some arm has never been pulled, pull the
lowest-numbered such arm, so the first k pulls visit arms 0..k-1 in order):

- random: a uniformly random arm each pull.
- greedy: unpulled arms first, then the highest empirical mean, ties broken uniformly at random.
- epsilon_greedy: unpulled arms first, then with probability `epsilon` (default 0.1) a uniformly
  random arm, otherwise the greedy arm. Its greedy choice uses the same key as `greedy`, so with
  epsilon = 0 it pulls exactly what greedy pulls.
- ucb1 (Auer, Cesa-Bianchi & Fischer 2002): unpulled arms first, then
  argmax_i mean_i + sqrt(2 ln t / n_i), t the number of pulls made so far, n_i arm i's pulls.
- thompson: a draw from each arm's Beta(1 + successes, 1 + failures) posterior, argmax.
- gittins: argmax of the Gittins index of each arm's Beta(1 + successes, 1 + failures) posterior,
  looked up in a table computed on the host (below).
- oracle: always the arm with the largest p (it reads the task); its expected total reward is
  num_pulls * E[max_i p_i] = num_pulls * k / (k + 1) for k arms with p_i ~ U[0, 1].

Gittins index. For discount γ and a Beta(a, b) arm with mean p = a / (a + b), the index is the
retirement reward λ per pull at which pulling once more and then acting optimally is exactly as
good as retiring for λ per pull forever. In per-pull units (value times 1 - γ),

    V(a, b; λ) = max(λ, C(a, b; λ)),
    C(a, b; λ) = (1 - γ) p + γ [p V(a+1, b; λ) + (1 - p) V(a, b+1; λ)],

and the index is the root of C(a, b; λ) - λ, which is convex and strictly decreasing in λ.
Instead of one bisection per state, a single backward induction over the anti-diagonals
a + b = const, vectorised over a grid of `GITTINS_LAMBDA_GRID` values of λ in [0, 1], gives
C - λ and its slope in λ for every state at every grid λ. The grid brackets each state's root;
the supporting lines at the two ends of the bracket each reach zero at or below the root, and so
the larger of their zeros (and of p, a known lower bound) is used: exact when at most one kink
of C lies in the bracket, and measured within 1e-4 of a per-state bisection (largest for indices
near 1), never above it. The induction stops 1/(1 - γ) anti-diagonals beyond the table,
where each posterior is taken as final: a truncated state is worth max(λ, p), i.e. its index is
its posterior mean. That truncation moves the indices of states with few pulls by under 1e-5
and those of the deepest tabulated states by about 1e-4. n = 500 takes about a second.

Approximation for the n-pull problem. The Gittins index is optimal for the infinite-horizon
discounted problem, not for n undiscounted pulls. We take γ = 1 - 1/n, clipped to [0.9, 0.995],
so that the effective horizon 1/(1 - γ) matches n: on k = 5, U[0, 1] arms (4000 instances) it
was within noise of the best γ we tried (0.95 to 0.998) at n = 100 and n = 500, while a fixed
γ = 0.99 lost 0.8 ± 0.2 total reward at n = 500. The clip keeps the table cheap for long plays
(the induction grows with (n + 1/(1 - γ))^2) and keeps some exploration for tiny n. The table
covers every state reachable in n pulls, a + b <= n + 2.
"""

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from metarl_jax.tasks import BanditTask

BASELINES = ("random", "greedy", "epsilon_greedy", "ucb1", "thompson", "gittins", "oracle")

DEFAULT_EPSILON = 0.1
GITTINS_LAMBDA_GRID = 512
GITTINS_TRUNCATION_MARGIN = 1.0  # extra anti-diagonals beyond the table, times 1 / (1 - γ)
GITTINS_MIN_DISCOUNT = 0.9
GITTINS_MAX_DISCOUNT = 0.995

# choose(key, successes, failures, pulls_so_far, arm_probs, params) -> arm; counts are (num_arms,)
ArmChoice = Callable[..., jax.Array]


def oracle_expected_total(num_arms: int, num_pulls: int) -> float:
    """The oracle's expected total reward when every arm's p is U[0, 1]: n * k / (k + 1)."""
    return num_pulls * num_arms / (num_arms + 1)


def default_gittins_discount(num_pulls: int) -> float:
    """γ = 1 - 1/num_pulls, clipped to [GITTINS_MIN_DISCOUNT, GITTINS_MAX_DISCOUNT]."""
    return min(max(1.0 - 1.0 / max(num_pulls, 1), GITTINS_MIN_DISCOUNT), GITTINS_MAX_DISCOUNT)


@functools.lru_cache(maxsize=16)
def gittins_index_table(discount: float, depth: int) -> np.ndarray:
    """Gittins indices of Beta(1 + s, 1 + f) Bernoulli arms, as table[s, f] for s + f <= depth.

    Entries with s + f > depth hold the posterior mean (s + 1) / (s + f + 2). The returned array
    is cached and read-only.
    """
    if not 0.0 <= discount < 1.0:
        raise ValueError(f"discount must lie in [0, 1), got {discount}")
    if depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    lambdas = np.linspace(0.0, 1.0, GITTINS_LAMBDA_GRID)[:, None]
    horizon = depth + math.ceil(round(GITTINS_TRUNCATION_MARGIN / (1.0 - discount), 6))

    successes = np.arange(depth + 1)[:, None]
    failures = np.arange(depth + 1)[None, :]
    table = (successes + 1) / (successes + failures + 2.0)

    # Column s of `value` and `slope` is the state with s successes on the anti-diagonal
    # s + f = total; rows are the grid λ. `slope` is dV/dλ of the policy that is optimal at λ.
    total = horizon
    value = np.maximum(lambdas, (np.arange(total + 1) + 1) / (total + 2.0))
    slope = (value == lambdas).astype(np.float64)
    for total in range(horizon - 1, -1, -1):
        state_successes = np.arange(total + 1)
        mean = (state_successes + 1) / (total + 2.0)
        success_weight = discount * mean
        failure_weight = discount * (1.0 - mean)
        continuing = (
            (1.0 - discount) * mean + success_weight * value[:, 1:] + failure_weight * value[:, :-1]
        )
        continuing_slope = success_weight * slope[:, 1:] + failure_weight * slope[:, :-1]
        if total <= depth:
            table[state_successes, total - state_successes] = _bracketed_root(
                lambdas[:, 0], continuing - lambdas, continuing_slope, mean
            )
        retires = lambdas >= continuing
        value = np.where(retires, lambdas, continuing)
        slope = np.where(retires, 1.0, continuing_slope)
    table.setflags(write=False)
    return table


def _bracketed_root(lambdas, advantage, continuing_slope, mean):
    """Per column, a lower bound on the root of the convex, decreasing advantage C(λ) - λ.

    The grid brackets each root. The supporting lines at both ends of the bracket (value and
    slope of the policy optimal there) reach zero at or below the root, and the posterior mean
    is a known lower bound; the largest of the three is exact when at most one kink of the
    advantage lies in the bracket.
    """
    columns = np.arange(advantage.shape[1])
    above = np.argmax(advantage <= 0.0, axis=0)  # advantage > 0 at λ = 0 and < 0 at λ = 1
    below = above - 1
    roots = [mean]
    for row in (below, above):
        roots.append(
            lambdas[row] + advantage[row, columns] / (1.0 - continuing_slope[row, columns])
        )
    return np.max(roots, axis=0)


def _argmax_random_tiebreak(key: jax.Array, values: jax.Array) -> jax.Array:
    is_max = values == jnp.max(values)
    return jnp.argmax(jnp.where(is_max, jax.random.uniform(key, values.shape), -1.0))


def _unpulled_first(pulls: jax.Array, arm: jax.Array) -> jax.Array:
    unpulled = pulls == 0
    return jnp.where(jnp.any(unpulled), jnp.argmax(unpulled), arm)


def _empirical_means(successes: jax.Array, failures: jax.Array) -> jax.Array:
    return successes / jnp.maximum(successes + failures, 1)


def _random_arm(key, successes, failures, pulls_so_far, arm_probs, params):
    return jax.random.randint(key, (), 0, successes.shape[0])


def _greedy_arm(key, successes, failures, pulls_so_far, arm_probs, params):
    greedy = _argmax_random_tiebreak(key, _empirical_means(successes, failures))
    return _unpulled_first(successes + failures, greedy)


def _epsilon_greedy_arm(key, successes, failures, pulls_so_far, arm_probs, params):
    greedy = _greedy_arm(key, successes, failures, pulls_so_far, arm_probs, params)
    explores = jax.random.bernoulli(jax.random.fold_in(key, 1), params["epsilon"])
    random_arm = jax.random.randint(jax.random.fold_in(key, 2), (), 0, successes.shape[0])
    return _unpulled_first(successes + failures, jnp.where(explores, random_arm, greedy))


def _ucb1_arm(key, successes, failures, pulls_so_far, arm_probs, params):
    pulls = successes + failures
    bonus = jnp.sqrt(2.0 * jnp.log(jnp.maximum(pulls_so_far, 1)) / jnp.maximum(pulls, 1))
    upper_bounds = _empirical_means(successes, failures) + bonus
    return _unpulled_first(pulls, _argmax_random_tiebreak(key, upper_bounds))


def _thompson_arm(key, successes, failures, pulls_so_far, arm_probs, params):
    draw_key, tiebreak_key = jax.random.split(key)
    draws = jax.random.beta(draw_key, 1.0 + successes, 1.0 + failures)
    return _argmax_random_tiebreak(tiebreak_key, draws)


def _gittins_arm(key, successes, failures, pulls_so_far, arm_probs, params):
    return _argmax_random_tiebreak(key, params["gittins_index"][successes, failures])


def _oracle_arm(key, successes, failures, pulls_so_far, arm_probs, params):
    return jnp.argmax(arm_probs)


_ARM_CHOICES: dict[str, ArmChoice] = {
    "random": _random_arm,
    "greedy": _greedy_arm,
    "epsilon_greedy": _epsilon_greedy_arm,
    "ucb1": _ucb1_arm,
    "thompson": _thompson_arm,
    "gittins": _gittins_arm,
    "oracle": _oracle_arm,
}
_PARAMETERS = {"epsilon_greedy": ("epsilon",), "gittins": ("gamma",)}


@functools.partial(jax.jit, static_argnames=("policy_name", "num_pulls"))
def _rollout(policy_name, arm_probs, num_pulls, key, params):
    choose = _ARM_CHOICES[policy_name]
    num_instances, num_arms = arm_probs.shape

    def play_instance(probs, instance_key):
        def pull(counts, pulls_so_far):
            successes, failures = counts
            policy_key, reward_key = jax.random.split(
                jax.random.fold_in(instance_key, pulls_so_far)
            )
            arm = choose(policy_key, successes, failures, pulls_so_far, probs, params)
            success = jax.random.uniform(reward_key) < probs[arm]
            pulled = jax.nn.one_hot(arm, num_arms, dtype=jnp.int32)
            counts = (successes + pulled * success, failures + pulled * (1 - success))
            return counts, (arm, success.astype(jnp.float32))

        no_pulls = jnp.zeros(num_arms, jnp.int32)
        _, arms_and_rewards = jax.lax.scan(pull, (no_pulls, no_pulls), jnp.arange(num_pulls))
        return arms_and_rewards

    return jax.vmap(play_instance)(arm_probs, jax.random.split(key, num_instances))


def rollout(
    policy_name: str, tasks: BanditTask, num_pulls: int, key: jax.Array, **params
) -> tuple[jax.Array, jax.Array]:
    """Play `num_pulls` pulls on every instance: (arms int32, rewards float32), each [n, pulls].

    `tasks.arm_probs` is [num_instances, num_arms]. Parameters: `epsilon` for epsilon_greedy
    (default 0.1), `gamma` for gittins (default `default_gittins_discount(num_pulls)`).
    """
    if policy_name not in _ARM_CHOICES:
        raise ValueError(f"unknown policy {policy_name!r}; expected one of {BASELINES}")
    unexpected = set(params) - set(_PARAMETERS.get(policy_name, ()))
    if unexpected:
        raise TypeError(f"policy {policy_name!r} takes no parameters {sorted(unexpected)}")
    arm_probs = jnp.asarray(tasks.arm_probs, jnp.float32)
    if arm_probs.ndim != 2:
        raise ValueError(
            f"tasks.arm_probs must be [num_instances, num_arms], got {arm_probs.shape}"
        )
    policy_params = {}
    if policy_name == "epsilon_greedy":
        policy_params["epsilon"] = jnp.float32(params.get("epsilon", DEFAULT_EPSILON))
    if policy_name == "gittins":
        gamma = params.get("gamma", default_gittins_discount(num_pulls))
        policy_params["gittins_index"] = jnp.asarray(
            gittins_index_table(float(gamma), num_pulls), jnp.float32
        )
    return _rollout(policy_name, arm_probs, num_pulls, key, policy_params)


def play(
    policy_name: str, tasks: BanditTask, num_pulls: int, key: jax.Array, **params
) -> jax.Array:
    """Rewards [num_instances, num_pulls] of `policy_name` on every task instance."""
    return rollout(policy_name, tasks, num_pulls, key, **params)[1]


def total_reward_table(
    tasks: BanditTask, num_pulls: int, key: jax.Array
) -> dict[str, tuple[float, float]]:
    """{baseline: (mean total reward, its standard error over instances)}, default parameters.

    Every baseline plays the same task instances with the same key.
    """
    table = {}
    for name in BASELINES:
        totals = np.asarray(play(name, tasks, num_pulls, key), np.float64).sum(axis=1)
        standard_error = totals.std(ddof=1) / math.sqrt(len(totals)) if len(totals) > 1 else 0.0
        table[name] = (float(totals.mean()), float(standard_error))
    return table
