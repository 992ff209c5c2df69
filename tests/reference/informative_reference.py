"""Slow plain-Python references for the informative-arm bandit (``learn2rl.tasks.informative``) and
its Bayes-optimal value (``learn2rl.experiments.wang2016_informative``).

The value here is an expectimax in which the targets still possible are found by filtering the
candidates against each observed reward (generic in the reward function), not by the bit-mask
belief update the fast code uses.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache


def arm_reward(target: int, action: int, num_arms: int, high=5.0, low=1.0) -> float:
    """Reward of ``action`` (``num_arms`` is the informative arm) when ``target`` is the target."""
    if action == num_arms:
        return (target + 1) / num_arms
    return high if action == target else low


def informative_trial(target, actions, num_arms, episode_length, num_episodes):
    """Per-step records of one trial (what the agent saw before acting, and what followed)."""
    steps, episode, time_in_episode = [], 0, 0
    prev_action, prev_reward, prev_done, done = -1, 0.0, 0.0, False
    for action in actions:
        record = {"prev_action": prev_action, "prev_reward": prev_reward, "prev_done": prev_done}
        if done:
            record.update(reward=0.0, episode_done=False, trial_done=False)
            steps.append(record)
            continue
        reward = arm_reward(target, int(action), num_arms)
        time_in_episode += 1
        episode_done = time_in_episode == episode_length
        if episode_done:
            episode, time_in_episode = episode + 1, 0
        done = episode == num_episodes
        record.update(reward=reward, episode_done=episode_done, trial_done=done)
        steps.append(record)
        prev_action, prev_reward, prev_done = int(action), reward, float(episode_done)
    return steps


def expectimax_value(num_arms: int, num_pulls: int, use_informative: bool = True) -> Fraction:
    """Bayes-optimal expected total reward, uniform prior on the target, exact fractions."""

    def reward(target, action):
        if action == num_arms:
            return Fraction(target + 1, num_arms)
        return Fraction(5) if action == target else Fraction(1)

    actions = list(range(num_arms + (1 if use_informative else 0)))

    @cache
    def value(possible: tuple, remaining: int) -> Fraction:
        # ``possible``: the targets that would have produced every reward seen so far.
        if remaining == 0:
            return Fraction(0)
        best = None
        for action in actions:
            total = Fraction(0)
            for target in possible:
                r = reward(target, action)
                still = tuple(t for t in possible if reward(t, action) == r)
                total += r + value(still, remaining - 1)
            q = total / len(possible)
            best = q if best is None or q > best else best
        return best

    return value(tuple(range(num_arms)), num_pulls)
