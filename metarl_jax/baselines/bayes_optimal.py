"""The Bayes-optimal value of k-armed Bernoulli bandits with n undiscounted pulls.

Every arm's p is U[0, 1] = Beta(1, 1) a priori, so after s successes and f failures its posterior
is Beta(1 + s, 1 + f) and its next pull pays with probability μ = (s + 1) / (s + f + 2). The
Bayes-optimal value is the expected total reward of the best policy over the n pulls (averaged
over the prior), by backward induction over the posteriors:

    V(state) = max over arms of μ (1 + V(state after a success)) + (1 - μ) V(state after a failure),

with V = 0 once the n pulls are spent. Arms are exchangeable, so a state is the multiset of the k
arms' (s, f), unpulled arms being (0, 0); the pulls left are n minus the pulls in the state. With
more arms than pulls, at least as many arms stay unpulled as pulls remain, so the extra arms can
never be used: V(k, n) = V(min(k, n), n).

The induction runs in numpy, one layer of states per number of pulls made. An arm's (s, f) is
numbered in order of s + f, then s; a state is its k arm numbers sorted, and its int64 key reads
them as the digits of a mixed-radix number, so the successors of a layer are found in the next
layer by binary search. The i-th smallest of k arms (from 0) has been pulled at most n / (k - i)
times, since the k - i arms from it on have each been pulled at least as often; that keeps the
radices small (keys below 10^17 for k = n = 20). The forward pass builds the layers from the
start state, the backward pass takes the values from the last layer back to the start.

The state count sets time and memory and grows like n^(2k) / ((2k)! k!): 2.3 million states for
k = 2, n = 100 (about 2 s on one core), 0.35 million for k = 5, n = 20 (under 1 s), 1.3 million
for k = 10, n = 20 (about 4 s), 8.4 million for k = 5, n = 30 (about 25 s, 1 GiB), 6.8 * 10^8
for k = 5, n = 50 and 4 * 10^11 for k = 5, n = 100: out of reach.
"""

import math

import numpy as np

BAYES_OPTIMAL_MAX_STATES = 2_500_000  # a few seconds on one CPU core and well under 1 GiB


class BayesOptimalOutOfReach(ValueError):
    """The exact induction would hold more states than allowed, or than int64 keys can number."""


def bayes_optimal_value(
    num_arms: int, num_pulls: int, max_states: int | None = BAYES_OPTIMAL_MAX_STATES
) -> float:
    """Expected total reward of the Bayes-optimal policy: `num_arms` Bernoulli arms with
    Beta(1, 1) priors, `num_pulls` undiscounted pulls. Exact up to float64 rounding.

    Raises BayesOptimalOutOfReach as soon as the states built exceed `max_states` (None: no
    limit), or when the state keys would overflow int64.
    """
    _check_sizes(num_arms, num_pulls)
    num_arms = min(num_arms, max(num_pulls, 1))
    arms = _ArmPosteriors(num_pulls)
    state_keys = _StateKeys(num_arms, num_pulls)
    layers, layer_keys = _layers_of_states(arms, state_keys, num_arms, num_pulls, max_states)
    values = np.zeros(len(layers[-1]))
    for states, next_keys in zip(reversed(layers[:-1]), reversed(layer_keys[1:]), strict=True):
        best = np.full(len(states), -np.inf)
        for rows, mean, after_success, after_failure in _pulls(arms, states):
            success_value, failure_value = (
                values[np.searchsorted(next_keys, state_keys(after))]
                for after in (after_success, after_failure)
            )
            pull_value = mean * (1.0 + success_value) + (1.0 - mean) * failure_value
            best[rows] = np.maximum(best[rows], pull_value)
        values = best
    return float(values[0])


def bayes_optimal_state_count(num_arms: int, num_pulls: int) -> int:
    """The number of states `bayes_optimal_value` builds: multisets of min(num_arms, num_pulls)
    arm posteriors with at most `num_pulls` pulls between them. Takes O(n^2 k^2) steps.

    An arm pulled j times has j + 1 possible posteriors, and c arms among those j + 1 form
    C(j + c, c) multisets; the count convolves these over j = 0..num_pulls.
    """
    _check_sizes(num_arms, num_pulls)
    num_arms = min(num_arms, max(num_pulls, 1))
    # multisets[c][w]: multisets of c arms pulled w times in all; to begin with, only unpulled arms
    multisets = [[1] + [0] * num_pulls for _ in range(num_arms + 1)]
    for pulls_per_arm in range(1, num_pulls + 1):
        grown = [row[:] for row in multisets]
        for arms in range(1, num_arms + 1):
            for arms_pulled_this_often in range(1, arms + 1):
                pulls_used = arms_pulled_this_often * pulls_per_arm
                if pulls_used > num_pulls:
                    break
                ways = math.comb(pulls_per_arm + arms_pulled_this_often, arms_pulled_this_often)
                rest = multisets[arms - arms_pulled_this_often]
                for total in range(pulls_used, num_pulls + 1):
                    grown[arms][total] += ways * rest[total - pulls_used]
        multisets = grown
    return sum(multisets[num_arms])


def _check_sizes(num_arms: int, num_pulls: int) -> None:
    if num_arms < 1:
        raise ValueError(f"num_arms must be >= 1, got {num_arms}")
    if num_pulls < 0:
        raise ValueError(f"num_pulls must be >= 0, got {num_pulls}")


def _layers_of_states(arms, state_keys, num_arms, num_pulls, max_states):
    """Every state, one layer per number of pulls made (0..num_pulls): the layers as [states, k]
    arm numbers and their keys, both in ascending order of key."""
    layers = [np.zeros((1, num_arms), arms.dtype)]
    layer_keys = [state_keys(layers[0])]
    num_states = 1
    for pulls_made in range(num_pulls):
        successors = np.concatenate([
            after for _, _, *afters in _pulls(arms, layers[-1]) for after in afters
        ])  # fmt: skip
        keys, first = np.unique(state_keys(successors), return_index=True)
        layers.append(successors[first])
        layer_keys.append(keys)
        num_states += len(keys)
        if max_states is not None and num_states > max_states:
            raise BayesOptimalOutOfReach(
                f"k={num_arms}, n={num_pulls}: over {max_states:,} states after "
                f"{pulls_made + 1} of {num_pulls} pulls"
            )
    return layers, layer_keys


def _pulls(arms, states):
    """Every distinct pull from every state: per arm position, yields the rows of `states` whose
    arm there differs from the next position's (pulling either of two equal arms leads to the
    same state), the pulled arm's posterior mean, and the sorted states after it pays and after
    it fails."""
    num_arms = states.shape[1]
    for position in range(num_arms):
        if position == num_arms - 1:
            rows = np.arange(len(states))
        else:
            rows = np.flatnonzero(states[:, position] != states[:, position + 1])
        pulled_arm = states[rows, position]
        outcomes = []
        for next_posterior in (arms.after_success, arms.after_failure):
            after = states[rows]
            after[:, position] = next_posterior[pulled_arm]
            outcomes.append(np.sort(after, axis=1))
        yield rows, arms.mean[pulled_arm], *outcomes


class _ArmPosteriors:
    """One arm's posteriors after at most `max_pulls` pulls, numbered by pulls, then successes:
    (s, f) is number (s + f)(s + f + 1) / 2 + s. Lookup tables over those numbers."""

    def __init__(self, max_pulls: int):
        pulls = np.repeat(np.arange(max_pulls + 1), np.arange(1, max_pulls + 2))
        successes = np.arange(len(pulls)) - pulls * (pulls + 1) // 2
        # Past the last pull count these point beyond the table; no reachable state pulls there.
        after_success = (pulls + 1) * (pulls + 2) // 2 + successes + 1
        self.dtype = np.int16 if after_success[-1] <= np.iinfo(np.int16).max else np.int32
        self.mean = (successes + 1) / (pulls + 2.0)
        self.after_success = after_success.astype(self.dtype)
        self.after_failure = (after_success - 1).astype(self.dtype)


class _StateKeys:
    """Distinct int64 keys of sorted states of `num_arms` arms with at most `num_pulls` pulls in
    all. The arm number at position i is below the count of posteriors with at most
    num_pulls // (num_arms - i) pulls, which is that digit's radix."""

    def __init__(self, num_arms: int, num_pulls: int):
        radices = []
        for position in range(num_arms):
            most_pulls = num_pulls // (num_arms - position)
            radices.append((most_pulls + 1) * (most_pulls + 2) // 2)
        if math.prod(radices) > np.iinfo(np.int64).max:
            raise BayesOptimalOutOfReach(
                f"k={num_arms}, n={num_pulls}: the state keys would overflow int64"
            )
        self.place_values = [math.prod(radices[:position]) for position in range(num_arms)]

    def __call__(self, states: np.ndarray) -> np.ndarray:
        keys = np.zeros(len(states), np.int64)
        for position, place_value in enumerate(self.place_values):
            keys += place_value * states[:, position].astype(np.int64)
        return keys
