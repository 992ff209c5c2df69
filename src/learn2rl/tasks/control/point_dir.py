"""2-D point mass rewarded for moving in a hidden direction: a CPU-scale stand-in for the
direction tasks of Houthooft et al. 2018, "Evolved Policy Gradients" (NeurIPS 2018, arXiv
1802.04821; DirHopper in Sec. 4, out-of-distribution directions in Sec. 4.2).

- The task is a unit vector ``direction = (cos angle, sin angle)``. With ``split="random"`` the
  angle is uniform on the whole circle in both task splits (disjoint index ranges of
  ``tasks.base.SPLITS``, as every family). With ``split="half"`` (the paper's
  out-of-distribution test) training tasks point to the right (angle in (-pi/2, pi/2), x > 0)
  and test tasks to the left (x < 0): a learner meta-trained on the "train" split never saw a
  direction of the "test" split.
- Every episode starts the point at the origin; the observation is its position.
- An action is a velocity, each coordinate clipped to ``[-1, 1]``; the point moves by
  ``dt * action`` (``dt = 0.1``).
- The family is symmetric under the reflections and the swap of the two coordinates (acting
  alike on position, action and direction): ``symmetries()`` lists the eight with the whole
  circle, and the two that keep the right half (the identity and ``y -> -y``) with
  ``split="half"``.
- The reward of a step is the velocity along the direction minus a control cost,
  ``clip(a) . direction - ctrl_cost |clip(a)|^2``, as the paper's direction tasks reward forward
  velocity times the direction. The episode is truncated after ``episode_length`` steps (20).

The direction is never observed: a policy learns it from rewards only. The best policy moves
``clip(direction / (2 ctrl_cost))`` every step.

The public DirHopper (openai/EPG, ``epg/envs/mujoco/hopper.py``) draws its direction with
``[-1, 1][np.random.randint(0, 1)]``, which is always -1; here each side has probability 1/2
(tested in ``tests/test_control_point_dir.py``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import _ROOT_SEED, SPLITS
from learn2rl.tasks.control.base import ControlFamily, check_positive, check_positive_int

SPLIT_MODES = ("random", "half")


@struct.dataclass
class DirectionParams:
    direction: jax.Array  # float32 [2], a unit vector


@struct.dataclass
class DirectionState:
    time: jax.Array
    position: jax.Array  # float32 [2]


class PointDirection(ControlFamily):
    """A point in the plane moved by clipped velocity actions, rewarded for its velocity along a
    hidden direction."""

    action_size = 2
    observation_size = 2
    action_low, action_high = -1.0, 1.0

    def __init__(
        self,
        episode_length: int = 20,
        dt: float = 0.1,
        ctrl_cost: float = 0.05,
        split: str = "random",
    ):
        super().__init__()
        self.episode_length = check_positive_int("episode_length", episode_length)
        self.dt = check_positive("dt", dt)
        if not isinstance(ctrl_cost, (int, float)) or isinstance(ctrl_cost, bool) or ctrl_cost < 0:
            raise Learn2RLError(f"ctrl_cost must be a number >= 0, got {ctrl_cost!r}")
        self.ctrl_cost = float(ctrl_cost)
        if split not in SPLIT_MODES:
            raise Learn2RLError(
                f"split must be one of {', '.join(map(repr, SPLIT_MODES))}, got {split!r}"
            )
        self.split = split
        self.family_id = "control/point-dir"

    # --- the prior over tasks --------------------------------------------------------------
    def _direction(self, key: jax.Array, is_test: jax.Array) -> DirectionParams:
        if self.split == "random":
            angle = jax.random.uniform(key, (), jnp.float32, -math.pi, math.pi)
        else:  # right half for training, left half for testing
            angle = jax.random.uniform(key, (), jnp.float32, -math.pi / 2, math.pi / 2)
            angle = jnp.where(is_test, angle + math.pi, angle)
        return DirectionParams(direction=jnp.stack([jnp.cos(angle), jnp.sin(angle)]))

    def sample_params(self, key: jax.Array) -> DirectionParams:
        """A direction of the training prior."""
        return self._direction(key, jnp.asarray(False))

    def task(self, index: jax.Array | int) -> DirectionParams:
        """Task ``index``: with ``split="half"``, test indices give left-pointing directions."""
        index = jnp.asarray(index, jnp.int32)
        key = jax.random.fold_in(jax.random.PRNGKey(_ROOT_SEED), index.astype(jnp.uint32))
        return self._direction(key, index < SPLITS["test"][1])

    def symmetries(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Signed permutations ``g`` of the plane with ``(g a) . (g d) = a . d``, ``|g a| = |a|``
        and clipping commuting with ``g``, which keep the training prior: the eight of the
        square's symmetry group for ``split="random"``, the identity and the reflection of ``y``
        for ``split="half"`` (training directions have ``x > 0``)."""
        if self.split == "half":
            maps = [np.eye(2), np.diag([1.0, -1.0])]
        else:
            swap = np.array([[0.0, 1.0], [1.0, 0.0]])
            signs = [np.diag([sx, sy]) for sx in (1.0, -1.0) for sy in (1.0, -1.0)]
            maps = signs + [s @ swap for s in signs]
        return [(g.astype(np.float32), g.astype(np.float32)) for g in maps]

    # --- dynamics ----------------------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: DirectionParams):
        state = DirectionState(time=jnp.int32(0), position=jnp.zeros((2,), jnp.float32))
        return state.position, state

    def step_env(
        self, key: jax.Array, state: DirectionState, action: jax.Array, params: DirectionParams
    ):
        velocity = self.clip_action(action)
        position = state.position + self.dt * velocity
        reward = jnp.dot(velocity, params.direction) - self.ctrl_cost * jnp.sum(velocity**2)
        new_state = DirectionState(time=state.time + 1, position=position)
        return position, new_state, reward.astype(jnp.float32), jnp.asarray(False), {}

    def best_return(self, params: DirectionParams) -> jax.Array:
        """The return of the optimal policy, ``clip(direction / (2 ctrl_cost))`` every step."""
        if self.ctrl_cost == 0:
            best = jnp.sign(params.direction)
        else:
            best = jnp.clip(params.direction / (2 * self.ctrl_cost), -1.0, 1.0)
        per_step = jnp.dot(best, params.direction) - self.ctrl_cost * jnp.sum(best**2)
        return self.episode_length * per_step


TASKS = [
    (
        "control/point-dir",
        PointDirection,
        "2-D point, velocity actions clipped to [-1, 1], reward the velocity along a hidden unit "
        "direction minus 0.05 |a|^2, 20 steps; [split=half]: train right, test left (Houthooft "
        "et al. 2018 direction tasks)",
        {},
    )
]
