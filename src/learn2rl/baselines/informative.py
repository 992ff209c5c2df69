"""Reference agents for the informative-arm bandit (``learn2rl.tasks.informative``; Wang et al.
2016, Sec. 3.1.2).

Everything here is exact where it can be: ``bayes_optimal_table`` is backward induction over belief
states (the set of targets consistent with what was seen, as a bit mask) and ``exact_value`` the
same recursion in rational arithmetic.

- ``bayes-optimal``: the exact Bayes-optimal policy for a trial of ``num_pulls`` pulls (with 10
  arms and 5 pulls: the informative arm first, then the target, 20.55 per episode).
- ``best-without-informative``: the best policy that never pulls the informative arm (what
  ignoring the cue is worth: 11 per episode).
- ``oracle``: privileged; pulls the target every time.
- ``random``: the generic ``baselines.generic`` agent (uniform over all ``num_arms + 1`` actions).
"""

from __future__ import annotations

import functools
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np

from learn2rl.baselines.generic import random_agent
from learn2rl.errors import Learn2RLError
from learn2rl.tasks.informative import InformativeBandit, InformativeParams
from learn2rl.types import Agent, TrialObs

MAX_ARMS_FOR_DP = 16  # the table has 2^num_arms belief states


# --------------------------------------------------------------------------------------------
# Exact Bayes-optimal policy: dynamic programming over belief states
# --------------------------------------------------------------------------------------------


def _check_dp_size(family: InformativeBandit, num_pulls: int) -> None:
    if family.num_arms > MAX_ARMS_FOR_DP:
        raise Learn2RLError(
            f"the exact Bayes-optimal table has 2^num_arms belief states; num_arms must be <= "
            f"{MAX_ARMS_FOR_DP}, got {family.num_arms}"
        )
    if not isinstance(num_pulls, int) or isinstance(num_pulls, bool) or num_pulls < 1:
        raise Learn2RLError(f"num_pulls must be a positive integer, got {num_pulls!r}")


def bayes_optimal_table(
    family: InformativeBandit, num_pulls: int, use_informative: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Backward induction over belief states; returns ``(values, best)``.

    A belief state is the set of targets still consistent with the pulls seen (bit i set: arm i
    may be the target; the prior is uniform, so the posterior is uniform on the set).
    ``values[mask, r]`` is the expected reward of the remaining ``r`` pulls under the optimal
    policy; ``best[mask, r, a]`` marks the optimal actions (ties within 1e-9). With
    ``use_informative=False`` the informative arm is never pulled.
    """
    _check_dp_size(family, num_pulls)
    n, high, low = family.num_arms, family.target_reward, family.other_reward
    masks = np.arange(1 << n)
    members = (masks[:, None] >> np.arange(n)) & 1  # [masks, n]
    sizes = members.sum(axis=1)
    safe_sizes = np.maximum(sizes, 1)
    cue = (np.arange(n) + 1) / n  # the informative arm's reward for each target
    values = np.zeros((1 << n, num_pulls + 1))
    best = np.zeros((1 << n, num_pulls + 1, n + 1), bool)
    for remaining in range(1, num_pulls + 1):
        later = values[:, remaining - 1]
        q = np.empty((1 << n, n + 1))
        for arm in range(n):
            hit = 1.0 / safe_sizes
            found = high + later[1 << arm]  # it was the target: only arm remains possible
            missed = low + later[masks & ~(1 << arm)]  # it was not: drop it from the set
            q[:, arm] = np.where(
                members[:, arm] == 1, hit * found + (1 - hit) * missed, low + later
            )
        singletons = later[1 << np.arange(n)]
        q[:, n] = (members * (cue + singletons)[None, :]).sum(axis=1) / safe_sizes
        if not use_informative:
            q[:, n] = -np.inf
        q[sizes == 0] = 0.0  # unreachable: no target consistent with the observations
        values[:, remaining] = q.max(axis=1)
        best[:, remaining] = q >= values[:, remaining][:, None] - 1e-9
    return values, best


def exact_value(
    family: InformativeBandit, num_pulls: int, use_informative: bool = True
) -> Fraction:
    """The Bayes-optimal expected total reward of a trial, in exact rational arithmetic."""
    _check_dp_size(family, num_pulls)
    n = family.num_arms
    high, low = Fraction(family.target_reward), Fraction(family.other_reward)

    @functools.cache
    def value(consistent: frozenset, remaining: int) -> Fraction:
        size = len(consistent)
        if remaining == 0 or size == 0:  # size 0: unreachable (reached with probability 0)
            return Fraction(0)
        options = []
        for arm in range(n):
            if arm in consistent:
                options.append(
                    Fraction(1, size) * (high + value(frozenset([arm]), remaining - 1))
                    + Fraction(size - 1, size) * (low + value(consistent - {arm}, remaining - 1))
                )
            else:
                options.append(low + value(consistent, remaining - 1))
        if use_informative:
            options.append(
                sum(Fraction(i + 1, n) + value(frozenset([i]), remaining - 1) for i in consistent)
                / size
            )
        return max(options)

    return value(frozenset(range(n)), num_pulls)


# --------------------------------------------------------------------------------------------
# Agents
# --------------------------------------------------------------------------------------------


def _check_family(family) -> InformativeBandit:
    if not isinstance(family, InformativeBandit):
        raise Learn2RLError(
            f"informative-arm agents need an InformativeBandit family, got {type(family).__name__}"
        )
    return family


def belief_update(family: InformativeBandit, mask: jax.Array, obs: TrialObs) -> jax.Array:
    """The set of consistent targets (bit mask) after the previous pull and its reward."""
    n = family.num_arms
    action = obs.prev_action
    arm_bit = jnp.left_shift(jnp.int32(1), jnp.clip(action, 0, n - 1))
    decoded = jnp.clip(jnp.round(obs.prev_reward * n).astype(jnp.int32) - 1, 0, n - 1)
    found = obs.prev_reward > 0.5 * (family.target_reward + family.other_reward)
    after_ordinary = jnp.where(found, arm_bit, jnp.bitwise_and(mask, jnp.bitwise_not(arm_bit)))
    after_informative = jnp.left_shift(jnp.int32(1), decoded)
    new_mask = jnp.where(action == family.informative_arm, after_informative, after_ordinary)
    return jnp.where(action >= 0, new_mask, mask)


def bayes_optimal_agent(
    family, num_pulls: int, use_informative: bool = True, name: str | None = None
) -> Agent:
    """The exact Bayes-optimal policy for trials of ``num_pulls`` pulls (random among ties).

    The belief persists across episode ends inside a trial (the task does not change), and the
    table is indexed by the pulls left in the trial, so it is optimal for any number of episodes.
    """
    family = _check_family(family)
    _, best = bayes_optimal_table(family, num_pulls, use_informative)
    best = jnp.asarray(best)
    full = (1 << family.num_arms) - 1
    if name is None:
        name = "bayes-optimal" if use_informative else "best-without-informative"

    def init(key, task_params=None):
        return jnp.int32(full)

    def act(key, mask, obs: TrialObs):
        mask = belief_update(family, mask, obs)
        remaining = jnp.clip(num_pulls - obs.step, 1, num_pulls)
        eligible = best[mask, remaining]
        noise = jax.random.uniform(key, eligible.shape)
        action = jnp.argmax(jnp.where(eligible, noise, -1.0)).astype(jnp.int32)
        return action, mask

    return Agent(name=name, init=init, act=act, horizon=num_pulls)


def oracle_agent(family) -> Agent:
    """Privileged: knows the target and pulls it every time."""
    _check_family(family)

    def init(key, task_params: InformativeParams):
        return task_params.target.astype(jnp.int32)

    def act(key, target, obs):
        return target, target

    return Agent(name="oracle", init=init, act=act, privileged=True)


# --------------------------------------------------------------------------------------------
# The registry's table: factory(family, num_episodes, **options)
# --------------------------------------------------------------------------------------------


def _trial_pulls(family, num_episodes: int) -> int:
    return num_episodes * _check_family(family).episode_length


def _bayes_optimal(family, num_episodes: int) -> Agent:
    return bayes_optimal_agent(family, _trial_pulls(family, num_episodes))


def _best_without_informative(family, num_episodes: int) -> Agent:
    return bayes_optimal_agent(family, _trial_pulls(family, num_episodes), use_informative=False)


BASELINES = {
    "random": lambda family, num_episodes: random_agent(_check_family(family)),
    "oracle": lambda family, num_episodes: oracle_agent(family),
    "bayes-optimal": _bayes_optimal,
    "best-without-informative": _best_without_informative,
}
