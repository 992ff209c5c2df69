"""Reference agents for the mazes of ``learn2rl.tasks.maze`` (Duan et al. 2016, RL^2 Table 3).

- ``oracle``: privileged; knows the maze, start and goal and walks a shortest path in every episode
  (the distances are ``tasks.maze.action_distances``, value iteration in JAX).
- ``random``: the generic ``baselines.generic`` agent (forward / left / right uniformly).
"""

from __future__ import annotations

import jax.numpy as jnp

from learn2rl.baselines.generic import random_agent
from learn2rl.tasks.maze import MazeParams, action_distances, move, optimal_action
from learn2rl.types import Agent, TrialObs


def oracle_agent() -> Agent:
    """A privileged agent that knows the task and walks a shortest path in every episode.

    The maze is deterministic, so it tracks its own cell and heading from the start of the task
    and the actions it takes, and goes back to the start when an episode has ended
    (``prev_done``). Its episode lengths are ``shortest_path_length`` of the task.
    """

    def init(key, params: MazeParams):
        return {
            "params": params,
            "distances": action_distances(params),
            "cell": jnp.asarray(params.start, jnp.int32),
            "heading": jnp.asarray(params.start_heading, jnp.int32),
        }

    def act(key, state, obs: TrialObs):
        params = state["params"]
        new_episode = obs.prev_done > 0.5
        cell = jnp.where(new_episode, params.start, state["cell"]).astype(jnp.int32)
        heading = jnp.where(new_episode, params.start_heading, state["heading"]).astype(jnp.int32)
        action = optimal_action(params, state["distances"], cell, heading)
        cell, heading, _ = move(params.walls, cell, heading, action)
        return action, {**state, "cell": cell, "heading": heading}

    return Agent(name="oracle", init=init, act=act, privileged=True)


# The registry's table: factory(family, num_episodes, **options).
BASELINES = {
    "random": lambda family, num_episodes: random_agent(family),
    "oracle": lambda family, num_episodes: oracle_agent(),
}
