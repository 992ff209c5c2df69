"""Plain-Python reference of the Harlow task (``learn2rl.tasks.harlow``), for tests only.

One presentation per episode: the caller gives, per episode, the uniform draw that places the
objects (object 1 goes on the left iff u < 0.5) and the action (0 = left, 1 = right).
"""

from __future__ import annotations


def presentation(objects, u: float) -> tuple[list[float], int]:
    """The observation [left features, right features] and which object is on the left."""
    left = 1 if u < 0.5 else 0
    return list(objects[left]) + list(objects[1 - left]), left


def harlow_trial(objects, placement_uniforms, actions, correct=1.0, incorrect=0.0):
    """Per presentation: what the agent saw, the reward of its choice, and whether it was right.

    Object 0 is the rewarded one. ``placement_uniforms[k]`` places the objects of presentation k.
    """
    records = []
    for u, action in zip(placement_uniforms, actions, strict=True):
        obs, left = presentation(objects, u)
        chosen = left if action == 0 else 1 - left
        right_choice = chosen == 0
        records.append(
            {"obs": obs, "reward": correct if right_choice else incorrect, "correct": right_choice}
        )
    return records
