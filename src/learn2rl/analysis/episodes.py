"""Episodes of a multi-episode trial against the shortest path: does the agent get faster?

Navigation experiments run several episodes of one task (the same hidden goal) per trial and ask
whether an agent that found the goal once goes back faster: Wang et al. 2016 (arXiv 1611.05763,
Sec. 3.2) compare the time to the goal in episode 1 with later episodes, Duan et al. 2016 (arXiv
1611.02779, Table 3) the length of successful episodes 1 and 2 in mazes. ``episode_table`` reads
each episode's steps and success off an ``EvalResult`` and scores them against the shortest path;
``summarize`` gives the means and 95% intervals (normal approximation over trials,
``evaluation.ci95``) per episode, for episode 1 against episodes 2+, and their paired drop.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import EvalResult, ci95


def episode_masks(result: EvalResult, num_episodes: int) -> np.ndarray:
    """bool [trials, num_episodes, steps]: which steps of each trial belong to each episode."""
    if result.episodes is None:
        raise Learn2RLError("the result has no episode indices; evaluate an Agent to get them")
    valid = np.asarray(result.valid, bool)
    index = np.arange(num_episodes)
    masks = valid[:, None, :] & (np.asarray(result.episodes)[:, None, :] == index[None, :, None])
    if not masks.any(axis=2).all():
        raise Learn2RLError("a trial has an empty episode; was num_episodes the evaluated one?")
    return masks


def first_steps(result: EvalResult, num_episodes: int) -> np.ndarray:
    """int [trials, num_episodes]: the index of each episode's first step (where it starts)."""
    return np.argmax(episode_masks(result, num_episodes), axis=2)


def episode_table(
    result: EvalResult, num_episodes: int, shortest: np.ndarray
) -> dict[str, np.ndarray]:
    """Per trial and episode ([trials, num_episodes]): ``steps`` taken (the step limit when the
    goal was not reached), ``success`` (one of its steps paid a positive reward: only the goal
    does, every other step pays 0 or a penalty), ``shortest`` and ``excess`` = steps - shortest.

    ``shortest`` is the optimal number of steps of each episode, [trials, num_episodes], or of
    each trial, [trials] (the same in every episode); given per task (``num_tasks`` rows) it is
    repeated for every evaluation seed (the result's rows are seed-major).
    """
    masks = episode_masks(result, num_episodes)
    steps = masks.sum(axis=2)
    success = (masks & (np.asarray(result.rewards)[:, None, :] > 0)).any(axis=2)
    shortest = np.asarray(shortest)
    if shortest.shape[0] != steps.shape[0]:
        shortest = np.tile(shortest, (result.num_seeds,) + (1,) * (shortest.ndim - 1))
    shortest = np.broadcast_to(shortest.reshape(len(shortest), -1), steps.shape)
    return {"steps": steps, "success": success, "shortest": shortest, "excess": steps - shortest}


def _later_mean(values: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Per trial, the mean of ``values`` over the counted episodes 2+ (NaN where none counts)."""
    count = counted[:, 1:].sum(axis=1)
    total = np.where(counted[:, 1:], values[:, 1:], 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def summarize(table: dict[str, np.ndarray], successful_only: bool = False) -> dict[str, Any]:
    """Means and 95% intervals over trials of an ``episode_table``.

    Per episode (``*_per_episode``); episode 1 (``first_*``) against episodes 2+ (``later_*``,
    each trial's mean over its episodes 2+, so every trial weighs the same); the paired ``drop``
    = episode 1 - episodes 2+ within each trial and ``ratio`` = later / first steps; the overall
    ``success_rate`` and the trial's steps beyond the shortest paths, summed over its episodes
    (``total_excess``). With ``successful_only`` (Duan et al.'s Table 3) steps and excess count
    only episodes that reached the goal, and the drop only trials where every episode did
    (``paired_fraction`` of them), so it is not confounded by which tasks succeed.
    """
    steps, excess = table["steps"].astype(float), table["excess"].astype(float)
    shortest, success = table["shortest"].astype(float), table["success"]
    counted = success if successful_only else np.ones_like(success)
    later, later_excess = _later_mean(steps, counted), _later_mean(excess, counted)
    later_shortest = _later_mean(shortest, counted)
    has_later = ~np.isnan(later)
    paired = counted.all(axis=1)
    drop = steps[paired, 0] - later[paired]
    first = steps[counted[:, 0], 0]
    return {
        "num_trials": int(steps.shape[0]),
        "steps_per_episode": [_mean(steps[counted[:, e], e]) for e in range(steps.shape[1])],
        "steps_per_episode_ci95": [ci95(steps[counted[:, e], e]) for e in range(steps.shape[1])],
        "success_per_episode": success.mean(axis=0).tolist(),
        "shortest_per_episode": shortest.mean(axis=0).tolist(),
        "excess_per_episode": [_mean(excess[counted[:, e], e]) for e in range(steps.shape[1])],
        "first_steps": _mean(first),
        "first_ci95": ci95(first),
        "later_steps": _mean(later[has_later]),
        "later_ci95": ci95(later[has_later]),
        "later_shortest": _mean(later_shortest[has_later]),
        "later_excess": _mean(later_excess[has_later]),
        "later_excess_ci95": ci95(later_excess[has_later]),
        "ratio": _mean(later[has_later]) / _mean(first),
        "drop": _mean(drop),
        "drop_ci95": ci95(drop),
        "paired_fraction": float(paired.mean()),
        "shorter_later": _mean(drop > 0),
        "same_later": _mean(drop == 0),
        "success_rate": float(success.mean()),
        "total_excess": float(excess.sum(axis=1).mean()),
        "total_excess_ci95": ci95(excess.sum(axis=1)),
    }


def drops_after_first(summary: dict[str, Any], ratio: float) -> bool:
    """Episodes 2+ are faster than episode 1: their 95% intervals do not overlap and episodes 2+
    take at most ``ratio`` of episode 1's steps."""
    separated = summary["later_steps"] + summary["later_ci95"] < (
        summary["first_steps"] - summary["first_ci95"]
    )
    return bool(separated and summary["ratio"] <= ratio)
