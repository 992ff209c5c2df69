"""Baselines for continuous-control families (``learn2rl.tasks.control``).

- ``random``: a vector uniform in the family's action box at every step (the generic agent of
  ``baselines.generic``); every control family.
- ``oracle`` (2-D point navigation only): privileged; knows the goal and moves each coordinate
  ``min(max_step, |offset|)`` towards it, ``clip(goal - position, -max_step, max_step)``. Each
  coordinate's distance to the goal then shrinks as fast as the clipped actions allow at every
  step, so the distance after every step, and with it every reward, is the best possible: the
  optimal policy, whose exact return ``analysis.adaptation.point_oracle_returns`` computes.

The locomotion families (MJX runner and quadruped) have no computable oracle.
"""

from __future__ import annotations

import jax.numpy as jnp

from learn2rl.baselines.generic import random_agent
from learn2rl.errors import Learn2RLError
from learn2rl.tasks.control.point import PointNavigation, PointParams
from learn2rl.types import Agent, TrialObs


def point_oracle_agent(family) -> Agent:
    """Privileged: the goal-knowing policy of 2-D point navigation (see the module text)."""
    if not isinstance(family, PointNavigation):
        raise Learn2RLError(
            "the point-navigation oracle needs a PointNavigation family, got "
            f"{type(family).__name__}"
        )
    low, high = float(family.action_low), float(family.action_high)

    def init(key, task_params: PointParams):
        return jnp.asarray(task_params.goal, jnp.float32)

    def act(key, goal, trial_obs: TrialObs):
        # The observation is the point's position.
        return jnp.clip(goal - trial_obs.obs, low, high).astype(jnp.float32), goal

    return Agent(name="oracle", init=init, act=act, privileged=True)


# The registry's tables: factory(family, num_episodes, **options).
BASELINES = {"random": lambda family, num_episodes: random_agent(family)}
POINT_BASELINES = {
    "random": lambda family, num_episodes: random_agent(family),
    "oracle": lambda family, num_episodes: point_oracle_agent(family),
}
