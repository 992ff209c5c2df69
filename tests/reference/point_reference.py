"""Plain-numpy 2-D point navigation (Finn et al. 2017), for checking tasks/control/point.py."""

from __future__ import annotations

import numpy as np


def run_episode(goal, actions, max_step=0.1, tolerance=0.01):
    """Positions, rewards and termination flags of one episode under a fixed action sequence;
    steps after termination are not taken (the lists stop there)."""
    position = np.zeros(2)
    positions, rewards, dones = [], [], []
    for action in actions:
        position = position + np.clip(np.asarray(action, np.float64), -max_step, max_step)
        offset = position - np.asarray(goal, np.float64)
        positions.append(position.copy())
        rewards.append(-float(np.sqrt(np.sum(offset**2))))
        done = bool(np.all(np.abs(offset) < tolerance))
        dones.append(done)
        if done:
            break
    return positions, rewards, dones
