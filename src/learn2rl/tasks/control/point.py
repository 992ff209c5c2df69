"""2-D point navigation to a hidden goal (Finn et al. 2017, "Model-Agnostic Meta-Learning").

- The task is a goal position drawn uniformly from the square ``[-goal_range, goal_range]^2``
  (``goal_range = 0.5`` by default: a unit square centred on the start, as in the paper's code).
- Every episode starts the point at the origin. The state and the observation are its position.
- An action is a velocity: the position moves by the action, each coordinate clipped to
  ``[-max_step, max_step]`` (0.1 by default).
- The reward of a step is minus the distance from the new position to the goal. The episode ends
  (``terminated``) when both coordinates are within ``goal_tolerance`` (0.01) of the goal, and is
  truncated after ``episode_length`` steps (100, the paper's horizon).

The goal is never observed: a policy finds out where it is only from the rewards, which is what
one gradient step of MAML on 20 exploration episodes has to do (Table 4 of the paper's appendix:
-40.41 before adaptation, -11.68 after one step).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from learn2rl.tasks.control.base import ControlFamily, check_positive, check_positive_int


@struct.dataclass
class PointParams:
    goal: jax.Array  # float32 [2]


@struct.dataclass
class PointState:
    time: jax.Array
    position: jax.Array  # float32 [2]


class PointNavigation(ControlFamily):
    """A point in the plane moved by clipped velocity actions towards a hidden goal."""

    action_size = 2
    observation_size = 2

    def __init__(
        self,
        goal_range: float = 0.5,
        max_step: float = 0.1,
        episode_length: int = 100,
        goal_tolerance: float = 0.01,
    ):
        super().__init__()
        self.goal_range = check_positive("goal_range", goal_range)
        self.max_step = check_positive("max_step", max_step)
        self.episode_length = check_positive_int("episode_length", episode_length)
        self.goal_tolerance = check_positive("goal_tolerance", goal_tolerance)
        self.action_low, self.action_high = -self.max_step, self.max_step
        self.family_id = "control/point-goal"

    def sample_params(self, key: jax.Array) -> PointParams:
        goal = jax.random.uniform(key, (2,), jnp.float32, -self.goal_range, self.goal_range)
        return PointParams(goal=goal)

    def reset_env(self, key: jax.Array, params: PointParams):
        state = PointState(time=jnp.int32(0), position=jnp.zeros((2,), jnp.float32))
        return state.position, state

    def step_env(self, key: jax.Array, state: PointState, action: jax.Array, params: PointParams):
        position = state.position + self.clip_action(action)
        offset = position - params.goal
        reward = -jnp.sqrt(jnp.sum(offset**2))
        reached = jnp.all(jnp.abs(offset) < self.goal_tolerance)
        new_state = PointState(time=state.time + 1, position=position)
        return position, new_state, reward.astype(jnp.float32), reached, {}


TASKS = [
    (
        "control/point-goal",
        PointNavigation,
        "2-D point, velocity actions clipped to 0.1, hidden goal uniform in [-0.5, 0.5]^2, reward "
        "minus the distance, 100 steps (Finn et al. 2017 point navigation)",
        {},
    )
]
