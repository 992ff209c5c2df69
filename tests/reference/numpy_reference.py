"""Slow, plain-numpy reference versions of the ops and the trial bookkeeping (for tests only)."""

from __future__ import annotations

import numpy as np


def discounted_returns(rewards, discounts, bootstrap):
    returns = np.zeros(len(rewards))
    running = bootstrap
    for t in reversed(range(len(rewards))):
        running = rewards[t] + discounts[t] * running
        returns[t] = running
    return returns


def gae(rewards, discounts, values, bootstrap, lam):
    advantages = np.zeros(len(rewards))
    next_value, running = bootstrap, 0.0
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + discounts[t] * next_value - values[t]
        running = delta + discounts[t] * lam * running
        advantages[t] = running
        next_value = values[t]
    return advantages


def ppo_clip(log_ratio, advantage, eps):
    out = []
    for lr, a in zip(log_ratio, advantage, strict=True):
        ratio = np.exp(lr)
        out.append(min(ratio * a, min(max(ratio, 1 - eps), 1 + eps) * a))
    return np.array(out)


def bandit_trial(means, uniforms, actions, episode_length, num_episodes):
    """Bernoulli-bandit trial bookkeeping one step at a time.

    ``uniforms[t]`` is the uniform draw the environment compares with the pulled arm's p at step t.
    Returns a list of per-step dicts with what the agent observed before acting and what followed.
    """
    steps, episode, time_in_episode = [], 0, 0
    prev_action, prev_reward, prev_done, trial_done = -1, 0.0, 0.0, False
    for t, action in enumerate(actions):
        record = {
            "step": t,
            "prev_action": prev_action,
            "prev_reward": prev_reward,
            "prev_done": prev_done,
            "valid": not trial_done,
        }
        if trial_done:
            record.update(reward=0.0, episode_done=False, trial_done=False)
            steps.append(record)
            continue
        reward = float(uniforms[t] < means[action])
        time_in_episode += 1
        episode_done = time_in_episode >= episode_length
        if episode_done:
            episode += 1
            time_in_episode = 0
        trial_done = episode >= num_episodes
        record.update(reward=reward, episode_done=episode_done, trial_done=trial_done)
        steps.append(record)
        prev_action, prev_reward, prev_done = action, reward, float(episode_done)
    return steps
