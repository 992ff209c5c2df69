"""Plain numpy reference of random tabular MDPs (``learn2rl.tasks.tabular_mdp``).

The random numbers a step uses come in from outside (the standard normal noise of its reward and the
uniform that picks the next state), so a trial here and one in JAX can be compared step by step.
The next state is found by walking the transition row and adding up probabilities until the sum
passes the uniform. Values come from backward induction with explicit loops over states and actions.
"""

from __future__ import annotations

import numpy as np


def pick_next_state(probabilities: np.ndarray, uniform: float) -> int:
    """The first state whose running probability sum exceeds ``uniform`` (the last if none does)."""
    total = np.float32(0.0)
    for state, p in enumerate(probabilities):
        total = np.float32(total + np.float32(p))
        if uniform < total:
            return state
    return len(probabilities) - 1


def tabular_trial(
    mean_rewards: np.ndarray,
    transitions: np.ndarray,
    episode_length: int,
    num_episodes: int,
    actions: list[int],
    noises: list[float],
    uniforms: list[float],
) -> list[dict]:
    """What the agent sees before each step and what the step returns.

    Step ``t`` uses ``noises[t]`` for its reward and ``uniforms[t]`` for its next state; an episode
    ends after ``episode_length`` steps and the next one starts in state 0. Steps after the last
    episode of the trial change nothing and pay nothing.
    """
    state, time_in_episode, episodes_done, steps_taken = 0, 0, 0, 0
    trial_over = False
    prev = {"prev_action": -1, "prev_reward": 0.0, "prev_done": 0.0}
    rows = []
    for t, action in enumerate(actions):
        seen = {"state": state, "step": steps_taken, **prev}
        if trial_over:
            rows.append(
                seen | {"reward": 0.0, "episode_done": False, "trial_done": False, "active": False}
            )
            continue
        reward = float(mean_rewards[state, action]) + float(noises[t])
        state = pick_next_state(transitions[state, action], uniforms[t])
        time_in_episode += 1
        steps_taken += 1
        episode_done = time_in_episode >= episode_length
        if episode_done:
            episodes_done += 1
            state, time_in_episode = 0, 0
        trial_done = episodes_done >= num_episodes
        rows.append(
            seen
            | {
                "reward": reward,
                "episode_done": episode_done,
                "trial_done": trial_done,
                "active": True,
            }
        )
        prev = {
            "prev_action": action,
            "prev_reward": reward,
            "prev_done": 1.0 if episode_done else 0.0,
        }
        trial_over = trial_done
    return rows


def optimal_start_value(mean_rewards: np.ndarray, transitions: np.ndarray, horizon: int) -> float:
    """Backward induction: the best expected return of ``horizon`` steps from state 0."""
    num_states, num_actions = mean_rewards.shape
    values = [0.0] * num_states
    for _ in range(horizon):
        new_values = []
        for s in range(num_states):
            best = -np.inf
            for a in range(num_actions):
                future = sum(float(transitions[s, a, n]) * values[n] for n in range(num_states))
                best = max(best, float(mean_rewards[s, a]) + future)
            new_values.append(best)
        values = new_values
    return values[0]


def random_policy_start_value(
    mean_rewards: np.ndarray, transitions: np.ndarray, horizon: int
) -> float:
    """Expected return of ``horizon`` steps from state 0 under uniformly random actions."""
    num_states, num_actions = mean_rewards.shape
    values = np.zeros(num_states)
    for _ in range(horizon):
        values = np.array(
            [
                np.mean(
                    [mean_rewards[s, a] + transitions[s, a] @ values for a in range(num_actions)]
                )
                for s in range(num_states)
            ]
        )
    return float(values[0])
