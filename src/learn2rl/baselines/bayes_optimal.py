"""The Bayes-optimal policy for independent Beta(1,1) Bernoulli arms, and its fallbacks.

Exact finite-horizon dynamic programming over posterior counts (Bellman 1956; Berry & Fristedt
1985): a packed decision table over (t, m, s1, s2) for two arms, a DP over multisets of per-arm
posterior states (arms are exchangeable) for more. When the exact table would be too large,
``bayes_optimal_method`` picks the finite-horizon Gittins index policy, or its interpolated form
(``baselines.gittins``). Tables are computed once in numpy float64 when the agent is built.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from learn2rl.baselines.bandits import (
    ArmCounts,
    _counting_agent,
    _successes,
    argmax_random_ties,
    beta_posterior_means,
    check_num_pulls,
    initial_counts,
    uniform_among,
    update_counts,
)
from learn2rl.baselines.gittins import (
    _finite_horizon_gittins_table,
    _ranks,
    _states_up_to,
    approximate_fh_gittins_indices,
    fh_gittins_budget_grid,
    state_id,
)
from learn2rl.errors import Learn2RLError
from learn2rl.types import Agent

logger = logging.getLogger(__name__)


@struct.dataclass
class DPState:
    """Arm statistics plus the index of the current posterior state in the exact k-arm DP table."""

    counts: ArmCounts
    dp_state: jax.Array  # int32 scalar


# --------------------------------------------------------------------------------------------
# Bayes-optimal policy: exact dynamic programming, with fallbacks for large tables
# --------------------------------------------------------------------------------------------

EXACT_TWO_ARM_MAX_ENTRIES = 12_000_000  # decision-table entries of the 2-arm DP (int8)
EXACT_MULTISET_MAX_STATES = 200_000  # posterior states of the k-arm DP
FH_GITTINS_MAX_PULLS = 150  # largest horizon with a finite-horizon Gittins table
_Q_TIE_TOL = 1e-9  # actions whose values differ by less are ties (values are O(num_pulls))


def _two_arm_entries(num_pulls: int) -> int:
    return math.comb(num_pulls + 3, 4)  # sum over t < num_pulls of C(t + 3, 3)


def multiset_state_count(num_arms: int, num_pulls: int, cap: int = 10**12) -> int:
    """Number of posterior states (multisets of per-arm (s, f), t < num_pulls pulls made) of the
    exchangeable k-arm DP, from the generating function prod_m (1 - y x^m)^-(m + 1); counting
    stops early, returning a number > ``cap``, once the count is known to exceed ``cap``."""
    max_used = min(num_arms, num_pulls)
    # ways[u, t]: multisets of u pulled-arm states with t pulls in total (t < num_pulls)
    ways = np.zeros((max_used + 1, num_pulls), np.int64)
    ways[0, 0] = 1
    for pulls_per_arm in range(1, num_pulls):
        for _ in range(pulls_per_arm + 1):  # pulls_per_arm + 1 states (s, f) with that many pulls
            for used in range(1, max_used + 1):  # ascending: a state may occur several times
                ways[used, pulls_per_arm:] += ways[used - 1, : num_pulls - pulls_per_arm]
            np.minimum(ways, cap + 1, out=ways)
        if ways.sum() > cap:  # the count only grows as more states are allowed
            return cap + 1
    return int(ways.sum())


def bayes_optimal_method(num_arms: int, num_pulls: int) -> str:
    """Which policy ``get("bayes-optimal", ...)`` builds for this many arms and pulls.

    - "exact-dp": the exact Bayes-optimal policy. For 2 arms when the decision table (C(n+3, 4)
      entries) has at most ``EXACT_TWO_ARM_MAX_ENTRIES`` (n <= 128); for other k when the number of
      posterior states (``multiset_state_count``) is at most ``EXACT_MULTISET_MAX_STATES``
      (e.g. k = 5, 10, 50 with n = 10; k = 3 with n <= 28).
    - "fh-gittins": otherwise, for n <= ``FH_GITTINS_MAX_PULLS`` (150), the finite-horizon Gittins
      index policy, near-optimal in this setting (Nino-Mora 2011; Kaufmann 2018).
    - "approx-fh-gittins": otherwise (e.g. n = 500, where the finite-horizon Gittins table would
      have 2e7 entries and take hours), the finite-horizon Gittins index interpolated from exact
      values at a few hundred (pulls, pulls left) pairs; see ``approximate_fh_gittins_indices``.
    """
    if num_arms == 2 and _two_arm_entries(num_pulls) <= EXACT_TWO_ARM_MAX_ENTRIES:
        return "exact-dp"
    if (
        num_arms != 2
        and multiset_state_count(num_arms, num_pulls, cap=EXACT_MULTISET_MAX_STATES)
        <= EXACT_MULTISET_MAX_STATES
    ):
        return "exact-dp"
    if num_pulls <= FH_GITTINS_MAX_PULLS:
        return "fh-gittins"
    return "approx-fh-gittins"


@functools.lru_cache(maxsize=4)
def _two_arm_dp(num_pulls: int) -> tuple[float, np.ndarray]:
    """Exact 2-arm DP over (t, m, s1, s2): t pulls made, m of them on arm 0, s1 and s2 successes.

    Returns the Bayes-optimal expected total reward and the packed decision table (int8: 0 or 1
    = the strictly better arm, 2 = tie), laid out as ``_two_arm_entry`` describes.
    """
    value = np.zeros((num_pulls + 1,) * 3)
    decisions = []
    for t in range(num_pulls - 1, -1, -1):
        m = np.arange(t + 1)[:, None, None]
        s1 = np.arange(t + 1)[None, :, None]
        s2 = np.arange(t + 1)[None, None, :]
        mean1, mean2 = (s1 + 1.0) / (m + 2.0), (s2 + 1.0) / (t - m + 2.0)
        nxt = value[: t + 2, : t + 2, : t + 2]
        q1 = mean1 * (1.0 + nxt[1:, 1:, : t + 1]) + (1.0 - mean1) * nxt[1:, : t + 1, : t + 1]
        stay = nxt[: t + 1, : t + 1, : t + 1]
        q2 = mean2 * (1.0 + nxt[: t + 1, : t + 1, 1:]) + (1.0 - mean2) * stay
        decision = np.where(q2 > q1, 1, 0).astype(np.int8)
        decision[np.abs(q1 - q2) <= _Q_TIE_TOL] = 2
        valid = (s1 <= m) & (s2 <= t - m)
        decisions.append(decision[valid])  # row-major (m, s1, s2) order
        value = np.maximum(q1, q2)
    table = np.concatenate(decisions[::-1])
    table.setflags(write=False)
    return float(value[0, 0, 0]), table


def _two_arm_offsets(num_pulls: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets into the packed 2-arm table: per t, and per (t, m) within t."""
    t = np.arange(num_pulls)
    by_t = np.array([math.comb(u + 3, 4) for u in t], np.int64)
    m = np.arange(num_pulls + 1)
    block = (m[None, :] + 1) * (t[:, None] - m[None, :] + 1)  # entries of block m at time t
    by_m = np.concatenate([np.zeros((num_pulls, 1), np.int64), np.cumsum(block, axis=1)[:, :-1]], 1)
    return by_t, by_m


def _two_arm_entry(by_t, by_m, t, m, s1, s2):
    """Position of state (t, m, s1, s2) in the packed table."""
    return by_t[t] + by_m[t, m] + s1 * (t - m + 1) + s2


@dataclass(frozen=True)
class MultisetTables:
    """The exact k-arm DP over exchangeable posterior states (read-only numpy arrays).

    A state is the multiset of per-arm (s, f), stored as ``slot_ids`` [states, slots]: the
    ``state_id`` of the pulled-or-not arms, sorted descending, with 0 for fresh arms (slots =
    min(k, n): at most n arms are ever pulled). Pulling an arm of the class in slot j moves to
    ``next_state[state, j, reward]``. ``optimal[state, j]`` marks the Bayes-optimal slots.
    States are numbered level by level (all pulls-made = 0 states, then 1, ...).
    """

    value: float
    slot_ids: np.ndarray
    next_state: np.ndarray
    optimal: np.ndarray
    level_start: np.ndarray


@functools.lru_cache(maxsize=4)
def _multiset_dp(num_arms: int, num_pulls: int) -> MultisetTables:
    """Exact Bayes-optimal DP for k independent Beta(1,1) Bernoulli arms over multisets of per-arm
    posterior states (arms are exchangeable, so permutations of a state share one value)."""
    slots = min(num_arms, num_pulls)
    successes, failures = _states_up_to(num_pulls)
    mean = (successes + 1.0) / (successes + failures + 2.0)
    can_grow = successes + failures < num_pulls
    success_id = np.where(can_grow, state_id(successes + 1, failures), 0)
    failure_id = np.where(can_grow, state_id(successes, failures + 1), 0)
    id_dtype = np.int16 if len(successes) < 2**15 else np.int32
    levels = [np.zeros((1, slots), id_dtype)]
    transitions = []
    for _ in range(num_pulls):
        states = levels[-1]
        # the first slot of each class is the one to pull (same class = same outcome)
        first_of_class = np.ones(states.shape, bool)
        first_of_class[:, 1:] = states[:, 1:] != states[:, :-1]
        successors = np.repeat(states[:, None, None, :], 2, axis=2).repeat(slots, axis=1)
        columns = np.arange(slots)
        successors[:, columns, 0, columns] = failure_id[states]  # indexed by the reward
        successors[:, columns, 1, columns] = success_id[states]
        successors = -np.sort(-successors, axis=-1)
        chosen = successors[first_of_class]  # [pairs, 2, slots]
        unique, inverse = np.unique(chosen.reshape(-1, slots), axis=0, return_inverse=True)
        next_local = np.full((*states.shape, 2), -1, np.int64)
        next_local[first_of_class] = inverse.reshape(-1, 2)
        levels.append(unique.astype(id_dtype))
        transitions.append(next_local)
    # backward induction
    values = np.zeros(len(levels[-1]))
    optimal_by_level = [np.zeros(levels[-1].shape, bool)]
    for level in range(num_pulls - 1, -1, -1):
        states, nxt = levels[level], transitions[level]
        p = mean[states]
        after_success, after_failure = np.maximum(nxt[..., 1], 0), np.maximum(nxt[..., 0], 0)
        q = p * (1.0 + values[after_success]) + (1.0 - p) * values[after_failure]
        q = np.where(nxt[..., 0] >= 0, q, -np.inf)
        values = q.max(axis=1)
        optimal_by_level.append(q >= values[:, None] - _Q_TIE_TOL)
    level_start = np.cumsum([0] + [len(states) for states in levels])
    next_state = np.concatenate(
        [np.where(nxt >= 0, nxt + level_start[i + 1], -1) for i, nxt in enumerate(transitions)]
        + [np.full((*levels[-1].shape, 2), -1)]
    )
    # after the last pull, stay put (the agent plays greedy beyond the horizon)
    last = np.arange(level_start[-2], level_start[-1])
    next_state[last] = last[:, None, None]
    next_state = np.where(next_state >= 0, next_state, 0).astype(np.int32)
    tables = MultisetTables(
        value=float(values[0]),
        slot_ids=np.concatenate(levels).astype(np.int32),
        next_state=next_state,
        optimal=np.concatenate(optimal_by_level[::-1]),
        level_start=level_start,
    )
    for array in (tables.slot_ids, tables.next_state, tables.optimal, tables.level_start):
        array.setflags(write=False)
    return tables


def bayes_optimal_value(num_arms: int, num_pulls: int) -> float:
    """Expected total reward of the Bayes-optimal policy for ``num_arms`` independent Bernoulli
    arms with uniform priors and ``num_pulls`` pulls (64.9184 for 2 arms and 100 pulls).

    Raises ``Learn2RLError`` when the exact DP is too large (``bayes_optimal_method`` is not
    "exact-dp").
    """
    num_arms, num_pulls = check_num_pulls(num_arms, "num_arms"), check_num_pulls(num_pulls)
    method = bayes_optimal_method(num_arms, num_pulls)
    if method != "exact-dp":
        raise Learn2RLError(
            f"the exact Bayes-optimal DP for {num_arms} arms and {num_pulls} pulls is too large "
            f"(get('bayes-optimal') would use {method!r})"
        )
    if num_arms == 2:
        return _two_arm_dp(num_pulls)[0]
    return _multiset_dp(num_arms, num_pulls).value


BAYES_OPTIMAL_METHODS = ("exact-dp", "fh-gittins", "approx-fh-gittins")


def bayes_optimal_agent(family, num_pulls: int, method: str | None = None) -> Agent:
    """The Bayes-optimal policy for independent Beta(1,1) Bernoulli arms over ``num_pulls`` pulls,
    or its fallback (see ``bayes_optimal_method``). Among optimal arms (values within 1e-9) the
    agent picks uniformly at random; beyond ``num_pulls`` pulls it plays greedy.

    ``method`` forces one of ``BAYES_OPTIMAL_METHODS`` (for comparisons); a method more expensive
    than the automatic choice raises ``Learn2RLError``, as its table would be too large.
    """
    num_arms, num_pulls = family.num_arms, check_num_pulls(num_pulls)
    automatic = bayes_optimal_method(num_arms, num_pulls)
    if method is None:
        method = automatic
    elif method not in BAYES_OPTIMAL_METHODS:
        raise Learn2RLError(
            f"unknown bayes-optimal method {method!r}; known: {', '.join(BAYES_OPTIMAL_METHODS)}"
        )
    elif BAYES_OPTIMAL_METHODS.index(method) < BAYES_OPTIMAL_METHODS.index(automatic):
        raise Learn2RLError(
            f"method {method!r} is too expensive for {num_arms} arms and "
            f"{num_pulls} pulls; the most exact feasible one is {automatic!r}"
        )
    if method != "exact-dp":
        logger.info("bayes-optimal, %d arms, %d pulls: using %s", num_arms, num_pulls, method)

    def greedy(key, counts):
        return argmax_random_ties(key, beta_posterior_means(counts))

    if method == "exact-dp" and num_arms == 2:
        _, table = _two_arm_dp(num_pulls)
        decisions = jnp.asarray(table)
        by_t, by_m = (jnp.asarray(a, jnp.int32) for a in _two_arm_offsets(num_pulls))

        def choose(key, counts):
            t = jnp.sum(counts.pulls)
            within = t < num_pulls
            safe_t = jnp.minimum(t, num_pulls - 1)
            m = jnp.minimum(counts.pulls[0], safe_t)
            s1, s2 = jnp.minimum(_successes(counts), jnp.stack([m, safe_t - m]))
            decision = decisions[_two_arm_entry(by_t, by_m, safe_t, m, s1, s2)]
            key_tie, key_greedy = jax.random.split(key)
            coin = jax.random.randint(key_tie, (), 0, 2)
            by_dp = jnp.where(decision == 2, coin, decision).astype(jnp.int32)
            return jnp.where(within, by_dp, greedy(key_greedy, counts))

        return _counting_agent("bayes-optimal", num_arms, choose)

    if method == "exact-dp":
        tables = _multiset_dp(num_arms, num_pulls)
        slot_ids, next_state = jnp.asarray(tables.slot_ids), jnp.asarray(tables.next_state)
        optimal = jnp.asarray(tables.optimal)

        def init(key, task_params=None):
            return DPState(counts=initial_counts(num_arms), dp_state=jnp.int32(0))

        def act(key, state, trial_obs):
            counts = state.counts
            # move the DP state along the class of the arm pulled last (its state before the pull)
            pulled = jnp.maximum(trial_obs.prev_action, 0)
            pulled_id = state_id(
                _successes(counts)[pulled], counts.pulls[pulled] - _successes(counts)[pulled]
            )
            slot = jnp.argmax(slot_ids[state.dp_state] == pulled_id)
            reward = (trial_obs.prev_reward > 0.5).astype(jnp.int32)
            moved = next_state[state.dp_state, slot, reward]
            dp_state = jnp.where(trial_obs.prev_action >= 0, moved, state.dp_state)
            counts = update_counts(counts, trial_obs)
            successes = _successes(counts)
            arm_ids = state_id(successes, counts.pulls - successes)
            best_ids = jnp.where(optimal[dp_state], slot_ids[dp_state], -1)
            eligible = jnp.any(arm_ids[:, None] == best_ids[None, :], axis=1)
            key_tie, key_greedy = jax.random.split(key)
            within = jnp.sum(counts.pulls) < num_pulls
            action = jnp.where(within, uniform_among(key_tie, eligible), greedy(key_greedy, counts))
            return action, DPState(counts=counts, dp_state=dp_state)

        return Agent(name="bayes-optimal", init=init, act=act)

    if method == "fh-gittins":
        table = _finite_horizon_gittins_table(num_pulls)
        rank_table = jnp.asarray(_ranks(table))  # [remaining, state id]; NaN entries unreachable

        def choose(key, counts):
            t = jnp.sum(counts.pulls)
            remaining = jnp.clip(num_pulls - t, 1, num_pulls)
            successes = _successes(counts)
            ids = jnp.minimum(
                state_id(successes, counts.pulls - successes), rank_table.shape[1] - 1
            )
            key_index, key_greedy = jax.random.split(key)
            by_index = argmax_random_ties(key_index, rank_table[remaining, ids])
            return jnp.where(t < num_pulls, by_index, greedy(key_greedy, counts))

        return _counting_agent("bayes-optimal", num_arms, choose)

    grid = fh_gittins_budget_grid(num_pulls)
    return _counting_agent(
        "bayes-optimal",
        num_arms,
        lambda key, counts: argmax_random_ties(
            key, approximate_fh_gittins_indices(counts, num_pulls, grid)
        ),
    )
