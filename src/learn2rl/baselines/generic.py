"""Baselines that serve every task family: the uniformly random agent.

``random_agent(family)`` reads the family's action space: a discrete family (``num_actions``) gets
a uniform index in ``[0, num_actions)`` at every step, ``jax.random.randint(key, (), 0,
num_actions, int32)`` with the step's key (the draw every family-specific random agent of
learn2rl made before this module replaced them, so their numbers are unchanged); a
continuous-control family (``continuous = True``) gets a vector of ``action_size`` entries uniform
in the box ``[action_low, action_high]``, ``jax.random.uniform(key, (action_size,), float32, low,
high)``. The agent has no memory; its state is a constant.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from learn2rl.errors import Learn2RLError
from learn2rl.types import Agent


def action_space_of(family) -> tuple[str, int, float, float]:
    """``("discrete", num_actions, 0, num_actions)`` or ``("continuous", action_size, low, high)``;
    ``Learn2RLError`` for an object that is neither kind of task family."""
    if getattr(family, "continuous", False):
        size = getattr(family, "action_size", 0)
        low, high = float(family.action_low), float(family.action_high)
        if not isinstance(size, int) or size < 1 or not low <= high:
            raise Learn2RLError(
                f"{type(family).__name__} has no valid action box (action_size {size!r}, "
                f"[{low}, {high}])"
            )
        return "continuous", size, low, high
    try:
        num_actions = family.num_actions
    except (AttributeError, NotImplementedError, Learn2RLError):
        num_actions = None
    if not isinstance(num_actions, int) or num_actions < 1:
        raise Learn2RLError(
            f"the baselines need a task family with discrete actions (num_actions) or a "
            f"continuous action box, got {type(family).__name__}"
        )
    return "discrete", num_actions, 0.0, float(num_actions)


def random_agent(family, num_episodes: int | None = None, name: str = "random") -> Agent:
    """A uniformly random action at every step (see the module text); ``num_episodes`` is
    accepted for the registry's ``get(name, family, num_episodes)`` and not used."""
    kind, size, low, high = action_space_of(family)

    def init(key, task_params=None):
        return jnp.int32(0)

    if kind == "discrete":

        def act(key, state, trial_obs):
            return jax.random.randint(key, (), 0, size, jnp.int32), state

    else:

        def act(key, state, trial_obs):
            return jax.random.uniform(key, (size,), jnp.float32, low, high), state

    return Agent(name=name, init=init, act=act)
