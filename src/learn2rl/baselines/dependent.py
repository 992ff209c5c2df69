"""The Bayes-optimal policy for Wang et al.'s dependent two-armed bandits (p_1 = 1 - p_2).

Why it is simple. Let theta = p_2. Pulling arm 2 shows a Bernoulli(theta) reward r; pulling arm 1
shows a Bernoulli(1 - theta) reward, i.e. the "evidence" e = 1 - r is Bernoulli(theta) too. Either
pull therefore yields one Bernoulli(theta) draw: what the agent learns does not depend on which arm
it pulls. The posterior after t pulls is a function of (s, t), s = the number of evidence ones, and
its law does not depend on the policy. So no pull is worth making for its information, and the
policy that maximises each step's expected reward (pull arm 2 iff E[theta | s, t] > 1/2) is
Bayes-optimal for every horizon (the finite-horizon dynamic programme separates into one-step
problems; tests check this against a brute-force DP over full histories).

For every prior of ``tasks.bandits.DEPENDENT_PRIORS`` (uniform, or theta in {x, 1 - x} with equal
probability) the prior is symmetric about 1/2, so E[theta | s, t] > 1/2 exactly when 2 s > t: the
optimal action is the majority vote of the evidence, whatever the prior. Only the expected total
reward depends on the prior; ``dependent_bayes_optimal_value`` computes it exactly.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from learn2rl.baselines.bandits import ArmCounts, _counting_agent, check_num_pulls
from learn2rl.errors import Learn2RLError
from learn2rl.tasks.bandits import DEPENDENT_PRIORS, DependentBandit
from learn2rl.types import Agent


def _check_prior(prior: str) -> float | None:
    if prior not in DEPENDENT_PRIORS:
        raise Learn2RLError(
            f"unknown dependent-bandit prior {prior!r}; known: {', '.join(DEPENDENT_PRIORS)}"
        )
    return DEPENDENT_PRIORS[prior]


def evidence(counts: ArmCounts) -> tuple[jax.Array, jax.Array]:
    """``(s, t)``: evidence ones (successes of arm 2 plus failures of arm 1) and total pulls."""
    successes = jnp.round(counts.reward_sums).astype(jnp.int32)
    s = successes[1] + (counts.pulls[0] - successes[0])
    return s, counts.pulls.sum()


def posterior_mean(prior: str, s: int, t: int) -> float:
    """E[theta | s evidence ones in t pulls] under ``prior`` (theta = p_2), in float64."""
    x = _check_prior(prior)
    if x is None:  # Beta(1, 1)
        return (s + 1.0) / (t + 2.0)
    # theta in {x, 1 - x}, prior 1/2 each; the binomial coefficient cancels.
    log_a = s * math.log(x) + (t - s) * math.log1p(-x)  # theta = x
    log_b = s * math.log1p(-x) + (t - s) * math.log(x)  # theta = 1 - x
    w_b = 1.0 / (1.0 + math.exp(log_a - log_b))
    return x * (1.0 - w_b) + (1.0 - x) * w_b


def dependent_bayes_optimal_value(prior: str, num_pulls: int) -> float:
    """Exact expected total reward of the Bayes-optimal policy over ``num_pulls`` pulls.

    ``sum_t E[max(m_t, 1 - m_t)]`` with m_t the posterior mean of theta after t pulls, the
    expectation over the prior predictive law of the evidence count (policy-independent, see the
    module text).
    """
    x = _check_prior(prior)
    num_pulls = check_num_pulls(num_pulls)
    total = 0.0
    for t in range(num_pulls):
        s = np.arange(t + 1)
        log_binom = np.array(
            [math.lgamma(t + 1) - math.lgamma(k + 1) - math.lgamma(t - k + 1) for k in s]
        )
        if x is None:
            # Beta-binomial with a = b = 1: every s in 0..t has probability 1 / (t + 1).
            m = (s + 1.0) / (t + 2.0)
            total += float(np.mean(np.maximum(m, 1.0 - m)))
            continue
        # E[max(m, 1 - m)] = sum_s max(E[theta; s], E[1 - theta; s]) with joint weights.
        like = {
            theta: np.exp(log_binom + s * math.log(theta) + (t - s) * math.log1p(-theta))
            for theta in (x, 1.0 - x)
        }
        arm2 = 0.5 * (x * like[x] + (1.0 - x) * like[1.0 - x])
        arm1 = 0.5 * ((1.0 - x) * like[x] + x * like[1.0 - x])
        total += float(np.sum(np.maximum(arm1, arm2)))
    return total


def dependent_oracle_value(prior: str, num_pulls: int) -> float:
    """Expected total of the oracle that knows theta: ``num_pulls * E[max(theta, 1 - theta)]``."""
    x = _check_prior(prior)
    num_pulls = check_num_pulls(num_pulls)
    return num_pulls * (0.75 if x is None else 1.0 - x)


def dependent_bayes_optimal_agent(family, num_pulls: int) -> Agent:
    """Bayes-optimal for ``DependentBandit`` (any of its priors): pull arm 2 if 2 s > t, arm 1 if
    2 s < t, either with probability 1/2 on a tie (s, t as in ``evidence``)."""
    if not isinstance(family, DependentBandit):
        raise Learn2RLError(
            f"the dependent-arm Bayes-optimal policy needs a DependentBandit, got "
            f"{type(family).__name__}"
        )
    check_num_pulls(num_pulls)

    def choose(key, counts):
        s, t = evidence(counts)
        coin = jax.random.bernoulli(key).astype(jnp.int32)
        return jnp.where(2 * s > t, 1, jnp.where(2 * s < t, 0, coin)).astype(jnp.int32)

    return _counting_agent("bayes-optimal", 2, choose)
