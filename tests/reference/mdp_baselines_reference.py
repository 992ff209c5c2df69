"""Plain numpy references for the tabular-MDP baselines (``learn2rl.baselines.mdp``).

Written independently of the JAX versions: statistics are kept per transition in Python
dictionaries-turned-arrays with explicit loops, value iteration loops over steps, states and
actions, and UCRL2's optimistic transition is built the sequential way (Jaksch et al. 2010,
Fig. 2: give the best next state up to radius / 2 more, then take it back from the worst states
one at a time). Random numbers (posterior draws, tie-breaking noise, exploration coins) come in
from outside, so a step here and one in JAX can be compared exactly.
"""

from __future__ import annotations

import math

import numpy as np


class Counts:
    """Visits, reward sums and successor counts of one trial, updated one step at a time."""

    def __init__(self, num_states: int, num_actions: int):
        self.visits = np.zeros((num_states, num_actions))
        self.reward_sums = np.zeros((num_states, num_actions))
        self.successors = np.zeros((num_states, num_actions, num_states))

    def add(self, prev_state: int, prev_action: int, prev_reward: float, state: int, new_episode):
        if prev_action < 0:
            return
        self.visits[prev_state, prev_action] += 1
        self.reward_sums[prev_state, prev_action] += prev_reward
        if not new_episode:
            self.successors[prev_state, prev_action, state] += 1


def posterior(counts: Counts, reward_mean: float, reward_std: float, transition: float):
    """Normal-Normal posterior of every mean reward (noise std 1) and Dirichlet parameters."""
    num_states, num_actions = counts.visits.shape
    means = np.zeros((num_states, num_actions))
    stds = np.zeros((num_states, num_actions))
    for s in range(num_states):
        for a in range(num_actions):
            precision = 1.0 / reward_std**2 + counts.visits[s, a]
            means[s, a] = (reward_mean / reward_std**2 + counts.reward_sums[s, a]) / precision
            stds[s, a] = 1.0 / math.sqrt(precision)
    alpha = counts.successors + transition
    return means, stds, alpha


def value_iteration(rewards: np.ndarray, transitions: np.ndarray, horizon: int) -> np.ndarray:
    """Q[h, s, a] of finite-horizon backward induction with explicit loops."""
    num_states, num_actions = rewards.shape
    q = np.zeros((horizon, num_states, num_actions))
    next_values = np.zeros(num_states)
    for h in reversed(range(horizon)):
        for s in range(num_states):
            for a in range(num_actions):
                q[h, s, a] = rewards[s, a] + sum(
                    transitions[s, a, n] * next_values[n] for n in range(num_states)
                )
        next_values = q[h].max(axis=1)
    return q


def optimistic_row(row: np.ndarray, values: np.ndarray, radius: float) -> np.ndarray:
    """The distribution within L1 distance ``radius`` of ``row`` maximising ``row . values``."""
    p = np.array(row, dtype=np.float64)
    ranking = sorted(range(len(p)), key=lambda n: (-values[n], n))  # best first
    best = ranking[0]
    p[best] = min(1.0, p[best] + radius / 2.0)
    for worst in reversed(ranking[1:]):
        surplus = p.sum() - 1.0
        if surplus <= 0.0:
            break
        p[worst] = max(0.0, p[worst] - surplus)
    return p


def extended_value_iteration(rewards, transitions, radius, horizon: int) -> np.ndarray:
    num_states, num_actions = rewards.shape
    q = np.zeros((horizon, num_states, num_actions))
    next_values = np.zeros(num_states)
    for h in reversed(range(horizon)):
        for s in range(num_states):
            for a in range(num_actions):
                p = optimistic_row(transitions[s, a], next_values, radius[s, a])
                q[h, s, a] = rewards[s, a] + float(p @ next_values)
        next_values = q[h].max(axis=1)
    return q


def ucrl2_radii(counts: Counts, steps: int, scale: float, delta: float):
    """Jaksch et al. (2010) confidence radii for rewards and (L1) transitions, times ``scale``."""
    num_states, num_actions = counts.visits.shape
    t = max(steps, 1)
    reward_radius = np.zeros((num_states, num_actions))
    transition_radius = np.zeros((num_states, num_actions))
    for s in range(num_states):
        for a in range(num_actions):
            n_r = max(counts.visits[s, a], 1.0)
            n_p = max(counts.successors[s, a].sum(), 1.0)
            log_r = math.log(2 * num_states * num_actions * t / delta)
            log_p = math.log(2 * num_actions * t / delta)
            reward_radius[s, a] = scale * math.sqrt(7 * log_r / (2 * n_r))
            transition_radius[s, a] = scale * math.sqrt(14 * num_states * log_p / n_p)
    return reward_radius, transition_radius


def plan(name: str, counts: Counts, options: dict, horizon: int, steps: int, draws=None):
    """The Q table an agent computes at the start of an episode.

    ``draws``: for psrl / opsrl, a list of (normals [S, A], log-gamma draws [S, A, S]), one per
    posterior sample (the JAX agent's own random numbers).
    """
    prior = (
        options.get("reward_prior_mean", 1.0),
        options.get("reward_prior_std", 1.0),
        options.get("transition_prior", 1.0),
    )
    means, stds, alpha = posterior(counts, *prior)
    mean_transitions = alpha / alpha.sum(axis=-1, keepdims=True)
    if name in ("greedy", "eps-greedy"):
        return value_iteration(means, mean_transitions, horizon)
    if name == "beb":
        bonus = options.get("beta", 1.0) / (1.0 + alpha.sum(axis=-1))
        return value_iteration(means + bonus, mean_transitions, horizon)
    if name == "ucrl2":
        reward_radius, transition_radius = ucrl2_radii(
            counts, steps, options.get("confidence_scale", 1.0), options.get("delta", 0.05)
        )
        return extended_value_iteration(
            means + reward_radius, mean_transitions, transition_radius, horizon
        )
    if name in ("psrl", "opsrl"):
        tables = []
        for normals, log_gammas in draws:
            rewards = means + stds * normals
            weights = np.exp(log_gammas - log_gammas.max(axis=-1, keepdims=True))
            tables.append(
                value_iteration(rewards, weights / weights.sum(-1, keepdims=True), horizon)
            )
        return np.max(tables, axis=0)
    raise ValueError(name)


def choose(q_row: np.ndarray, tie_noise: np.ndarray, epsilon: float, coin: float, random_action):
    """Greedy action with uniform tie-breaking noise; with ``coin < epsilon`` ``random_action``."""
    best = q_row.max()
    action = max(range(len(q_row)), key=lambda a: tie_noise[a] if q_row[a] == best else -1.0)
    return random_action if coin < epsilon else action
