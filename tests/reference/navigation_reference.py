"""Plain-Python reference of a one-goal gridworld trial (``learn2rl.tasks.navigation``).

Written without JAX or arrays: positions are (row, column) pairs, the start of an episode is picked
from an explicit list of the non-goal cells, and the trial bookkeeping is a loop with counters.
Random draws come in from outside (the integer each reset draws), so the reference and the JAX
version can be compared step by step.
"""

from __future__ import annotations

# action -> (row change, column change): up, right, down, left
MOVES = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}


def start_cell(size: int, goal: int, draw: int) -> int:
    """The ``draw``-th cell (row-major) among the cells that are not the goal."""
    candidates = [cell for cell in range(size * size) if cell != goal]
    return candidates[draw]


def next_cell(size: int, cell: int, action: int) -> int:
    row, column = divmod(cell, size)
    d_row, d_column = MOVES[action]
    new_row, new_column = row + d_row, column + d_column
    if not (0 <= new_row < size and 0 <= new_column < size):
        return cell  # bumped into the border
    return new_row * size + new_column


def gridworld_trial(
    size: int,
    goal: int,
    episode_length: int,
    num_episodes: int,
    step_penalty: float,
    first_draw: int,
    reset_draws: list[int],
    actions: list[int],
) -> list[dict]:
    """What the agent sees before each step and what the step returns.

    ``first_draw`` places the agent at the start of the trial; ``reset_draws[t]`` is the draw used
    to place it again if step ``t`` ends an episode. Steps after the trial's last episode change
    nothing and pay nothing.
    """
    cell = start_cell(size, goal, first_draw)
    time_in_episode = 0
    episodes_done = 0
    trial_over = False
    steps_taken = 0
    prev = {"prev_action": -1, "prev_reward": 0.0, "prev_done": 0.0}
    rows = []
    for t, action in enumerate(actions):
        seen = {"cell": cell, "step": steps_taken, **prev}
        if trial_over:
            rows.append(
                seen
                | {
                    "reward": 0.0,
                    "reached": False,
                    "episode_done": False,
                    "trial_done": False,
                    "active": False,
                }
            )
            continue
        cell = next_cell(size, cell, action)
        time_in_episode += 1
        steps_taken += 1
        reached = cell == goal
        reward = 1.0 if reached else -step_penalty
        episode_done = reached or time_in_episode >= episode_length
        if episode_done:
            episodes_done += 1
            cell = start_cell(size, goal, reset_draws[t])
            time_in_episode = 0
        trial_done = episodes_done >= num_episodes
        rows.append(
            seen
            | {
                "reward": reward,
                "reached": reached,
                "episode_done": episode_done,
                "trial_done": trial_done,
                "active": True,
            }
        )
        prev = {
            "prev_action": action,
            "prev_reward": reward,
            "prev_done": 1.0 if episode_done else 0.0,
        }
        trial_over = trial_done
    return rows
