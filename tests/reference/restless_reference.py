"""Slow plain-Python references for restless bandits (``learn2rl.tasks.restless``) and the
restless reference agents (``learn2rl.baselines.restless``).

- ``probability_path``: the arm probabilities at each pull from the change draws, by a loop.
- ``restless_rewards``: rewards of a fixed action sequence from the uniform draws.
- ``rescorla_wagner_path``: the delta rule written out step by step.
- ``posterior_mean_by_enumeration``: the posterior mean of the current p given observations, by
  summing over *every* pattern of change points (2^t of them) and every hazard level, with the
  Beta-Bernoulli marginal likelihood of each segment; nothing shared with the run-length filter.
"""

from __future__ import annotations

import itertools
import math


def probability_path(change_uniforms, value_draws, hazard, arms="dependent"):
    """``change_uniforms[t] < hazard`` means a change before pull t (t >= 1; pull 0 always draws);
    ``value_draws[t]`` is the fresh p (dependent) or pair (independent) drawn at pull t."""
    path, current = [], None
    for t, u in enumerate(change_uniforms):
        if t == 0 or u < hazard:
            if arms == "dependent":
                current = (float(value_draws[t]), 1.0 - float(value_draws[t]))
            else:
                current = (float(value_draws[t][0]), float(value_draws[t][1]))
        path.append(current)
    return path


def restless_rewards(path, reward_uniforms, actions):
    return [
        float(u < path[t][a]) for t, (u, a) in enumerate(zip(reward_uniforms, actions, strict=True))
    ]


def rescorla_wagner_path(actions, rewards, alpha, coupled):
    """Values before each choice, as a list of [q0, q1]."""
    q = [0.5, 0.5]
    out = []
    for a, r in zip(actions, rewards, strict=True):
        out.append(list(q))
        if coupled:
            y = r if a == 0 else 1.0 - r
            p = q[0] + alpha * (y - q[0])
            q = [p, 1.0 - p]
        else:
            q[a] = q[a] + alpha * (r - q[a])
    return out


def _log_beta_marginal(successes: int, failures: int) -> float:
    """log of the integral of p^s (1-p)^f over U[0, 1]: s! f! / (s + f + 1)!."""
    return (
        math.lgamma(successes + 1)
        + math.lgamma(failures + 1)
        - math.lgamma(successes + failures + 2)
    )


def posterior_mean_by_enumeration(observations, hazards) -> float:
    """E[p at the next pull | observations] for the dependent restless bandit, where the level is
    uniform over ``hazards`` and a change may happen before every pull after the first."""
    t = len(observations)
    numerator = denominator = 0.0
    for hazard in hazards:
        # changes[i] for i = 1..t: a change before pull i (pull t is the next, unobserved pull).
        for changes in itertools.product([0, 1], repeat=t):
            prior = 1.0
            for c in changes:
                prior *= hazard if c else 1.0 - hazard
            if prior == 0.0:
                continue
            starts = [0] + [i for i in range(1, t + 1) if changes[i - 1]]
            ends = starts[1:] + [t + 1]
            log_like = 0.0
            for start, end in zip(starts, ends, strict=True):
                segment = observations[start : min(end, t)]
                log_like += _log_beta_marginal(sum(segment), len(segment) - sum(segment))
            weight = prior * math.exp(log_like)
            last = observations[starts[-1] : t]  # observations of the p in force at pull t
            mean = (sum(last) + 1.0) / (len(last) + 2.0)
            numerator += weight * mean
            denominator += weight
    return numerator / denominator
