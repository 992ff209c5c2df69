"""Reference agents for one-shot navigation in a gridworld (``learn2rl.tasks.navigation``; Wang
et al. 2016, Sec. 3.2).

- ``random``: uniform random moves, no memory; the generic
  ``baselines.generic`` agent.
- ``oracle``: knows the goal (privileged) and walks a shortest path, so its steps are exactly the
  Manhattan distance from each episode's start; the optimum of episodes 2+ (and a lower bound for
  episode 1, which no agent without the goal can reach).
- ``search-return``: the hand-designed answer. It remembers the cells it has stood on (none is the
  goal: entering the goal ends the episode), walks to the nearest cell it has not visited until a
  reward says it entered the goal, works out the goal cell from its last position and move, and
  from then on walks shortest paths to it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from learn2rl.baselines.generic import random_agent
from learn2rl.tasks.navigation import OneGoalGridworld
from learn2rl.types import Agent

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


def _step_toward(family: OneGoalGridworld, cell: jax.Array, target: jax.Array) -> jax.Array:
    """A move that shortens the Manhattan distance to ``target`` (rows first, then columns)."""
    row, column = jnp.divmod(cell, family.size)
    target_row, target_column = jnp.divmod(target, family.size)
    column_move = jnp.where(target_column > column, RIGHT, LEFT)
    row_move = jnp.where(target_row > row, DOWN, UP)
    return jnp.where(target_row != row, row_move, column_move).astype(jnp.int32)


def oracle(family: OneGoalGridworld) -> Agent:
    """Knows the goal and walks a shortest path to it: Manhattan-distance steps per episode."""

    def init(key, task_params):
        return task_params.goal

    def act(key, goal, obs):
        return _step_toward(family, family.cell_of(obs.obs), goal), goal

    return Agent(name="oracle", init=init, act=act, privileged=True)


def search_then_return(family: OneGoalGridworld) -> Agent:
    """Visit the nearest unvisited cell until the goal is found, then walk shortest paths to it.

    State: ``(visited [cells] bool, goal or -1, last cell, last action)``. A reward above 0.5 on
    the previous step means that step entered the goal, i.e. the goal is the cell one move (the
    previous action) away from the previous cell.
    """
    size = family.size
    rows, columns = jnp.divmod(jnp.arange(family.num_cells), size)

    def init(key, task_params):
        visited = jnp.zeros((family.num_cells,), bool)
        return visited, jnp.int32(-1), jnp.int32(0), jnp.int32(0)

    def act(key, state, obs):
        visited, goal, last_cell, last_action = state
        found = jnp.logical_and(obs.prev_reward > 0.5, goal < 0)
        goal = jnp.where(found, family.move(last_cell, last_action), goal)
        cell = family.cell_of(obs.obs)
        visited = visited.at[cell].set(True)
        row, column = jnp.divmod(cell, size)
        distance = jnp.abs(rows - row) + jnp.abs(columns - column)
        # Nearest unvisited cell; ties go to the lowest index (argmin's first hit).
        nearest = jnp.argmin(jnp.where(visited, 10 * family.num_cells, distance)).astype(jnp.int32)
        target = jnp.where(goal >= 0, goal, nearest)
        action = _step_toward(family, cell, target)
        return action, (visited, goal, cell, action)

    return Agent(name="search-return", init=init, act=act)


# The registry's table: factory(family, num_episodes, **options).
BASELINES = {
    "random": lambda family, num_episodes: random_agent(family),
    "oracle": lambda family, num_episodes: oracle(family),
    "search-return": lambda family, num_episodes: search_then_return(family),
}
