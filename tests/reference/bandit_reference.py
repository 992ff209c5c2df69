"""Slow, plain-Python references for the bandit baselines in ``learn2rl.baselines`` (``bandits``,
``gittins``, ``bayes_optimal``).

Written independently of the fast versions: memoized recursion over posterior states instead of
vectorized backward induction, bisection instead of Newton's method, loops over arms instead of
array expressions. Only for small inputs.
"""

from __future__ import annotations

import math
from functools import cache


def _posterior_mean(successes: int, failures: int) -> float:
    return (successes + 1) / (successes + failures + 2)


def _replace(arm_states: tuple, arm: int, new_state: tuple) -> tuple:
    states = list(arm_states)
    states[arm] = new_state
    return tuple(sorted(states))


@cache
def _bayes_value(arm_states: tuple, remaining: int) -> float:
    """Bayes-optimal expected future reward; ``arm_states`` is a sorted tuple of (s, f)."""
    if remaining == 0:
        return 0.0
    return max(bayes_optimal_q_reference(arm_states, remaining))


def bayes_optimal_q_reference(arm_states, remaining: int) -> list[float]:
    """Expected future reward of pulling each arm now, then acting Bayes-optimally.

    ``arm_states`` lists (successes, failures) per arm; priors are Beta(1, 1).
    """
    q_values = []
    for arm, (successes, failures) in enumerate(arm_states):
        p = _posterior_mean(successes, failures)
        after_success = _replace(tuple(arm_states), arm, (successes + 1, failures))
        after_failure = _replace(tuple(arm_states), arm, (successes, failures + 1))
        q_values.append(
            p * (1.0 + _bayes_value(after_success, remaining - 1))
            + (1.0 - p) * _bayes_value(after_failure, remaining - 1)
        )
    return q_values


def bayes_optimal_value_reference(num_arms: int, horizon: int) -> float:
    return _bayes_value(tuple([(0, 0)] * num_arms), horizon)


def _discounted_pull_value(successes, failures, lam, gamma, depth) -> float:
    """Value of pulling the arm now and then stopping optimally (retirement pays lam per step),
    by a plain backward loop over the look-ahead triangle; truncated after ``depth`` pulls."""
    retire = lam / (1.0 - gamma)
    values = {}
    for level in range(depth, -1, -1):
        for extra_successes in range(level + 1):
            s = successes + extra_successes
            f = failures + level - extra_successes
            p = _posterior_mean(s, f)
            if level == depth:
                values[(s, f)] = max(lam, p) / (1.0 - gamma)
                continue
            pull = p + gamma * (p * values[(s + 1, f)] + (1.0 - p) * values[(s, f + 1)])
            values[(s, f)] = pull if level == 0 else max(pull, retire)
    return values[(successes, failures)]


def gittins_index_reference(
    successes: int, failures: int, gamma: float, tolerance: float = 1e-9
) -> float:
    """Discounted Gittins index by bisection on the retirement reward (Whittle's calibration).

    Truncated at the depth where gamma^depth / (1 - gamma) < 1e-8 (a cruder, larger depth than
    the fast version's).
    """
    depth = math.ceil(math.log(1e-8 * (1.0 - gamma)) / math.log(gamma))
    low, high = 0.0, 1.0
    while high - low > tolerance:
        lam = 0.5 * (low + high)
        if _discounted_pull_value(successes, failures, lam, gamma, depth) > lam / (1.0 - gamma):
            low = lam
        else:
            high = lam
    return 0.5 * (low + high)


def finite_horizon_gittins_reference(
    successes: int, failures: int, remaining: int, tolerance: float = 1e-10
) -> float:
    """Finite-horizon Gittins index by bisection: the lam at which pulling now (then stopping
    optimally) for ``remaining`` pulls equals retiring on lam for all of them."""

    def pull_value(lam):
        @cache
        def value(s, f, left, must_pull):
            if left == 0:
                return 0.0
            p = _posterior_mean(s, f)
            pull = p * (1.0 + value(s + 1, f, left - 1, False)) + (1.0 - p) * value(
                s, f + 1, left - 1, False
            )
            return pull if must_pull else max(pull, left * lam)

        return value(successes, failures, remaining, True)

    low, high = 0.0, 1.0
    while high - low > tolerance:
        lam = 0.5 * (low + high)
        if pull_value(lam) > remaining * lam:
            low = lam
        else:
            high = lam
    return 0.5 * (low + high)


def ucb1_reference(
    pulls, reward_sums, prior_pseudo_counts=True, exploration=1.0, gaussian=None
) -> list[float]:
    """UCB1 index of each arm, one arm at a time. ``gaussian`` = (prior_mean, prior_std,
    noise_std) for Gaussian arms, None for 0/1 rewards."""
    t = sum(pulls) + 1
    if gaussian is None:
        extra_pulls, extra_sum, scale = 2.0, 1.0, 1.0
    else:
        prior_mean, prior_std, noise_std = gaussian
        extra_pulls = (noise_std / prior_std) ** 2
        extra_sum, scale = extra_pulls * prior_mean, noise_std
    indices = []
    for n, total in zip(pulls, reward_sums, strict=True):
        if prior_pseudo_counts:
            n, total = n + extra_pulls, total + extra_sum
        elif n == 0:
            indices.append(math.inf)
            continue
        indices.append(total / n + exploration * scale * math.sqrt(2.0 * math.log(t) / n))
    return indices


def greedy_reference(pulls, reward_sums, gaussian=False) -> list[float]:
    values = []
    for n, total in zip(pulls, reward_sums, strict=True):
        if gaussian:
            values.append(total / n if n > 0 else math.inf)
        else:
            values.append((total + 1) / (n + 2))
    return values


def thompson_posterior_reference(pulls, reward_sums, gaussian=None):
    """Per arm: (alpha, beta) of the Beta posterior, or (mean, std) of the Normal posterior."""
    params = []
    for n, total in zip(pulls, reward_sums, strict=True):
        if gaussian is None:
            params.append((total + 1.0, n - total + 1.0))
        else:
            prior_mean, prior_std, noise_std = gaussian
            precision = 1.0 / prior_std**2 + n / noise_std**2
            mean = (prior_mean / prior_std**2 + total / noise_std**2) / precision
            params.append((mean, 1.0 / math.sqrt(precision)))
    return params


def _log_linear_weights(nodes, x):
    """(left node, weight) for linear interpolation in log x, x clipped to the nodes' range."""
    x = min(max(x, nodes[0]), nodes[-1])
    for left in range(len(nodes) - 1):
        if nodes[left] <= x <= nodes[left + 1]:
            low, high = math.log(nodes[left]), math.log(nodes[left + 1])
            return left, (math.log(x) - low) / (high - low)
    raise ValueError("unreachable")


def approximate_fh_gittins_reference(pulls, reward_sums, horizon, grid) -> list[float]:
    """max{q : N kl(mean, q) <= b(N, r)} per arm, N = pulls + 2, mean = (sum + 1) / N, with
    b bilinear in (log N, log r) between the nodes of ``grid`` (a ``BudgetGrid``); bisection."""

    def kl(p, q):
        return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))

    remaining = max(horizon - sum(pulls), 1)
    column, column_weight = _log_linear_weights(list(grid.remaining), remaining)
    indices = []
    for pulls_i, total in zip(pulls, reward_sums, strict=True):
        n = pulls_i + 2
        mean = (total + 1) / n
        row, row_weight = _log_linear_weights(list(grid.pulls_plus_two), n)
        budget = 0.0
        for dr, wr in ((0, 1 - row_weight), (1, row_weight)):
            for dc, wc in ((0, 1 - column_weight), (1, column_weight)):
                budget += wr * wc * float(grid.budget[row + dr, column + dc])
        low, high = mean, 1.0
        for _ in range(60):
            middle = 0.5 * (low + high)
            if n * kl(mean, middle) <= budget:
                low = middle
            else:
                high = middle
        indices.append(low)
    return indices
