"""One-shot navigation in an open gridworld: a goal that stays put for a whole trial.

A gridworld analogue of the 3-D maze experiment of Wang et al. 2016 ("Learning to reinforcement
learn", arXiv 1611.05763, Sec. 3.2): within one of the paper's episodes the goal stays where it is
and the agent, teleported to a random place after each time it reaches the goal, gets there faster
once it has found it. Here the paper's episode is a learn2rl *trial* and each goal-reach is one
*episode* of the trial.

- The task is the goal cell of an ``size`` x ``size`` open grid (no inner walls), drawn uniformly
  from all cells by ``sample_params``. The agent never observes it.
- Each episode starts the agent on a cell drawn uniformly from the cells other than the goal, with
  the **reset key** (so a new start for every episode of the trial; the goal stays).
- Actions: 0 up (row - 1), 1 right (column + 1), 2 down (row + 1), 3 left (column - 1). A move
  into the border leaves the agent where it is.
- Reward: +1 for the move that enters the goal, which ends the episode (``terminated``); every
  other step gives ``-step_penalty`` (0 by default: the learner's discount is what makes speed
  pay). After ``episode_length`` steps without the goal the episode is truncated.
- Observation (``observation``): ``"onehot"`` (default), a one-hot vector of the agent's cell
  (row-major, ``size * size`` entries); or ``"xy"``, its (row, column) scaled to [0, 1]. Nothing
  about the goal is observed: the agent learns where it is from the reward it gets on entering it.

Cells are numbered row-major: ``cell = row * size + column``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import TaskFamily

# (row, column) change of each action: up, right, down, left.
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))
OBSERVATIONS = ("onehot", "xy")


@struct.dataclass
class GridParams:
    """One task: the goal cell (row-major index), fixed for every episode of a trial."""

    goal: jax.Array  # int32 scalar in [0, size * size)


@struct.dataclass
class GridState:
    time: jax.Array  # steps taken in this episode
    position: jax.Array  # the agent's cell (row-major index)


def _check_int(name: str, value, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise Learn2RLError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


class OneGoalGridworld(TaskFamily):
    """An open ``size`` x ``size`` grid whose goal cell is the task (Wang et al. 2016, Sec. 3.2)."""

    def __init__(
        self,
        size: int = 5,
        episode_length: int | None = None,
        step_penalty: float = 0.0,
        observation: str = "onehot",
    ):
        super().__init__()
        self.size = _check_int("size", size, 2)
        self.num_cells = size * size
        # size * (size + 1) by default: room for a search of the whole grid with some detours, so
        # a sensible searcher does not run out of steps (the search-return agent of
        # experiments/wang2016_navigation needs at most 27 on 5x5, where the default is 30).
        default_length = size * (size + 1)
        self.episode_length = _check_int(
            "episode_length", default_length if episode_length is None else episode_length, 1
        )
        if not isinstance(step_penalty, (int, float)) or isinstance(step_penalty, bool):
            raise Learn2RLError(f"step_penalty must be a number >= 0, got {step_penalty!r}")
        if not (math.isfinite(step_penalty) and step_penalty >= 0):
            raise Learn2RLError(f"step_penalty must be a finite number >= 0, got {step_penalty!r}")
        self.step_penalty = float(step_penalty)
        if observation not in OBSERVATIONS:
            raise Learn2RLError(
                f"unknown observation {observation!r}; known: {', '.join(OBSERVATIONS)}"
            )
        self.observation = observation
        self.family_id = f"gridworld/onegoal-{size}x{size}"

    @property
    def num_actions(self) -> int:
        return len(MOVES)

    @property
    def observation_size(self) -> int:
        return self.num_cells if self.observation == "onehot" else 2

    # --- the prior over tasks --------------------------------------------------------------
    def sample_params(self, key: jax.Array) -> GridParams:
        return GridParams(goal=jax.random.randint(key, (), 0, self.num_cells, dtype=jnp.int32))

    # --- dynamics ----------------------------------------------------------------------------
    def observe_cell(self, cell: jax.Array) -> jax.Array:
        if self.observation == "onehot":
            return jax.nn.one_hot(cell, self.num_cells, dtype=jnp.float32)
        row, column = jnp.divmod(cell, self.size)
        return jnp.stack([row, column]).astype(jnp.float32) / (self.size - 1)

    def move(self, cell: jax.Array, action: jax.Array) -> jax.Array:
        """The cell one move away; moves into the border stay put."""
        row, column = jnp.divmod(cell, self.size)
        moves = jnp.asarray(MOVES, jnp.int32)
        row = jnp.clip(row + moves[action, 0], 0, self.size - 1)
        column = jnp.clip(column + moves[action, 1], 0, self.size - 1)
        return (row * self.size + column).astype(jnp.int32)

    def reset_env(self, key: jax.Array, params: GridParams):
        # Uniform over the size*size - 1 cells that are not the goal: draw an index among them
        # and skip over the goal.
        draw = jax.random.randint(key, (), 0, self.num_cells - 1, dtype=jnp.int32)
        start = draw + (draw >= params.goal).astype(jnp.int32)
        state = GridState(time=jnp.int32(0), position=start)
        return self.observe_cell(start), state

    def step_env(self, key: jax.Array, state: GridState, action: jax.Array, params: GridParams):
        position = self.move(state.position, action)
        at_goal = position == params.goal
        reward = jnp.where(at_goal, 1.0, 0.0 - self.step_penalty).astype(jnp.float32)
        new_state = GridState(time=state.time + 1, position=position)
        return self.observe_cell(position), new_state, reward, at_goal, {}

    def action_space(self, params=None):
        return spaces.Discrete(len(MOVES))

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (self.observation_size,), jnp.float32)

    # --- helpers for agents and analyses -------------------------------------------------------
    def cell_of(self, obs: jax.Array) -> jax.Array:
        """The cell an observation shows (inverse of ``observe_cell``; works on numpy too)."""
        if self.observation == "onehot":
            return jnp.argmax(obs, axis=-1).astype(jnp.int32)
        rows_columns = jnp.round(obs * (self.size - 1)).astype(jnp.int32)
        return rows_columns[..., 0] * self.size + rows_columns[..., 1]

    def shortest_path(self, cell: jax.Array, goal: jax.Array) -> jax.Array:
        """Fewest moves from ``cell`` to ``goal``: the Manhattan distance (no inner walls)."""
        row, column = jnp.divmod(cell, self.size)
        goal_row, goal_column = jnp.divmod(goal, self.size)
        return jnp.abs(row - goal_row) + jnp.abs(column - goal_column)


TASKS = [
    (
        f"gridworld/onegoal-{n}x{n}",
        OneGoalGridworld,
        f"{n}x{n} open grid, hidden goal fixed per task, random start each episode, +1 at the "
        f"goal, at most {n * (n + 1)} steps per episode (Wang et al. 2016 one-shot navigation)",
        {"size": n},
    )
    for n in (4, 5, 8)
]
