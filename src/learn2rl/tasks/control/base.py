"""Continuous-control task families: float action vectors, box observations.

A ``ControlFamily`` is a ``TaskFamily`` with ``continuous = True``: actions are float32 vectors of
``action_size`` entries, which the family clips to ``[action_low, action_high]`` itself (so a
Gaussian policy may emit any real vector), and observations are float32 vectors of
``observation_size`` entries. The policies of ``nets/mlp.py`` and the gradient-based learners
(MAML, Reptile, MAESN) read these attributes; nothing else about the family is special.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import TaskFamily


class ControlFamily(TaskFamily):
    """Base class of continuous-control families; subclasses set the sizes and bounds."""

    continuous = True
    action_size: int = 1
    observation_size: int = 1
    action_low: float = -1.0
    action_high: float = 1.0

    @property
    def num_actions(self) -> int:
        raise Learn2RLError(
            f"{self.family_id} has continuous actions (vectors of {self.action_size}); "
            "it has no num_actions. Use a continuous-action learner (maml, reptile, maesn, or "
            "rl2 with its Gaussian head)."
        )

    def clip_action(self, action):
        return jnp.clip(jnp.asarray(action, jnp.float32), self.action_low, self.action_high)

    def action_space(self, params=None):
        return spaces.Box(self.action_low, self.action_high, (self.action_size,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (self.observation_size,), jnp.float32)

    def symmetries(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The family's mirror symmetries: pairs ``(O, P)`` of signed permutation matrices (the
        identity among them) such that mapping every observation ``o -> O o`` and action
        ``a -> P a`` of a trajectory gives a trajectory of equal rewards in another task, and the
        training prior gives that task the same probability. A learner may average a learned
        function over them (EPG's ``loss_symmetry``). None by default (an empty list)."""
        return []


def check_positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise Learn2RLError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_positive(name: str, value) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise Learn2RLError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise Learn2RLError(f"{name} must be a finite positive number, got {value!r}")
    return float(value)


def check_range(name: str, value, low_bound: float = -math.inf, positive: bool = False):
    """A ``(low, high)`` pair of finite floats with ``low <= high`` (and ``low > 0`` if asked)."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise Learn2RLError(
            f"{name} must be a (low, high) pair of numbers, got {value!r}"
        ) from None
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise Learn2RLError(f"{name} must be finite with low <= high, got {value!r}")
    if positive and low <= 0:
        raise Learn2RLError(f"{name} must be positive (low > 0), got {value!r}")
    if low < low_bound:
        raise Learn2RLError(f"{name} must be >= {low_bound}, got {value!r}")
    return low, high
