"""Plain-numpy reference of a maze trial (``learn2rl.tasks.maze``, Duan et al. 2016 Sec. 3.3).

Written with named compass directions and explicit loops instead of the family's index
arithmetic: the agent is a (row, column, facing) triple, the view is built by walking down the
corridor cell by cell, and the trial bookkeeping is a loop with counters. Nothing is random inside
a trial (start and goal are part of the task), so no draws come in from outside.
"""

from __future__ import annotations

import numpy as np

COMPASS = ["north", "east", "south", "west"]
STEP = {"north": (-1, 0), "east": (0, 1), "south": (1, 0), "west": (0, -1)}
GOAL_REWARD, WALL_PENALTY, TIME_PENALTY = 1.0, 0.001, 0.04


def rotate(facing: str, quarter_turns: int) -> str:
    """The direction ``quarter_turns`` right turns (negative: left turns) from ``facing``."""
    return COMPASS[(COMPASS.index(facing) + quarter_turns) % 4]


def closed(walls: np.ndarray, row: int, column: int, side: str) -> bool:
    return bool(walls[row][column][COMPASS.index(side)])


def view(walls: np.ndarray, goal: tuple[int, int], row: int, column: int, facing: str, depth: int):
    """Own walls (front, right, back, left), then per cell ahead: visible, left, right, far,
    goal."""
    seen = [
        closed(walls, row, column, facing),
        closed(walls, row, column, rotate(facing, 1)),
        closed(walls, row, column, rotate(facing, 2)),
        closed(walls, row, column, rotate(facing, -1)),
    ]
    d_row, d_column = STEP[facing]
    r, c = row, column
    line_of_sight = not closed(walls, r, c, facing)
    for _ in range(depth):
        if not line_of_sight:
            seen += [False] * 5
            continue
        r, c = r + d_row, c + d_column
        seen += [
            True,
            closed(walls, r, c, rotate(facing, -1)),
            closed(walls, r, c, rotate(facing, 1)),
            closed(walls, r, c, facing),
            (r, c) == goal,
        ]
        line_of_sight = not closed(walls, r, c, facing)
    return np.asarray(seen, dtype=np.float32)


def maze_trial(
    walls: np.ndarray,
    start: int,
    start_heading: int,
    goal: int,
    episode_length: int,
    num_episodes: int,
    view_depth: int,
    actions: list[int],
) -> list[dict]:
    """What the agent sees before each step and what the step returns (and where it ends up).

    Actions: 0 forward, 1 turn left, 2 turn right. Steps after the trial's last episode change
    nothing and pay nothing.
    """
    size = len(walls)
    goal_rc = divmod(goal, size)
    home = (*divmod(start, size), COMPASS[start_heading])
    row, column, facing = home
    time_in_episode = episodes_done = steps_taken = 0
    trial_over = False
    prev = {"prev_action": -1, "prev_reward": 0.0, "prev_done": 0.0}
    rows = []
    for action in actions:
        seen = {
            "obs": view(walls, goal_rc, row, column, facing, view_depth),
            "step": steps_taken,
            **prev,
        }
        if trial_over:
            rows.append(
                seen
                | {"reward": 0.0, "episode_done": False, "trial_done": False, "active": False}
                | {"cell": row * size + column, "heading": COMPASS.index(facing)}
                | {"reached": False, "bumped": False}
            )
            continue
        reward = -TIME_PENALTY
        bumped = False
        if action == 1:
            facing = rotate(facing, -1)
        elif action == 2:
            facing = rotate(facing, 1)
        elif closed(walls, row, column, facing):
            bumped = True
            reward -= WALL_PENALTY
        else:
            row, column = row + STEP[facing][0], column + STEP[facing][1]
        reached = (row, column) == goal_rc
        if reached:
            reward += GOAL_REWARD
        time_in_episode += 1
        steps_taken += 1
        episode_done = reached or time_in_episode >= episode_length
        if episode_done:
            episodes_done += 1
            row, column, facing = home
            time_in_episode = 0
        trial_done = episodes_done >= num_episodes
        rows.append(
            seen
            | {
                "reward": reward,
                "episode_done": episode_done,
                "trial_done": trial_done,
                "active": True,
                "cell": row * size + column,
                "heading": COMPASS.index(facing),
                "reached": reached,
                "bumped": bumped,
            }
        )
        prev = {
            "prev_action": action,
            "prev_reward": reward,
            "prev_done": 1.0 if episode_done else 0.0,
        }
        trial_over = trial_done
    return rows
