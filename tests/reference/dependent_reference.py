"""Brute-force Bayes-optimal dynamic programme for dependent two-armed bandits (p_1 = 1 - p_2).

Slow and general on purpose: the state is the full count table (s1, f1, s2, f2) and the recursion
maximises over both arms at every step, without using the fact that the information a pull gives
does not depend on the arm (which the fast implementation relies on).
"""

from __future__ import annotations

from functools import cache

from learn2rl.tasks.bandits import DEPENDENT_PRIORS


def _p2_posterior_mean(prior: str, s1: int, f1: int, s2: int, f2: int) -> float:
    """E[p_2 | counts]: arm 2 successes and arm 1 failures are the evidence for a high p_2."""
    x = DEPENDENT_PRIORS[prior]
    ones, zeros = s2 + f1, f2 + s1
    if x is None:  # p_2 ~ Beta(1, 1)
        return (ones + 1) / (ones + zeros + 2)
    w_low = x**ones * (1 - x) ** zeros
    w_high = (1 - x) ** ones * x**zeros
    return (x * w_low + (1 - x) * w_high) / (w_low + w_high)


def q_values(prior: str, counts: tuple[int, int, int, int], remaining: int) -> tuple[float, float]:
    """Expected total reward of pulling arm 1 / arm 2 now and acting optimally afterwards."""
    return _q(prior, *counts, remaining)


@cache
def _q(prior, s1, f1, s2, f2, remaining):
    p2 = _p2_posterior_mean(prior, s1, f1, s2, f2)
    p1 = 1 - p2
    rest = remaining - 1
    q1 = p1 * (1 + _v(prior, s1 + 1, f1, s2, f2, rest)) + (1 - p1) * _v(
        prior, s1, f1 + 1, s2, f2, rest
    )
    q2 = p2 * (1 + _v(prior, s1, f1, s2 + 1, f2, rest)) + (1 - p2) * _v(
        prior, s1, f1, s2, f2 + 1, rest
    )
    return q1, q2


@cache
def _v(prior, s1, f1, s2, f2, remaining):
    if remaining == 0:
        return 0.0
    return max(_q(prior, s1, f1, s2, f2, remaining))


def bayes_optimal_value(prior: str, num_pulls: int) -> float:
    return _v(prior, 0, 0, 0, 0, num_pulls)
