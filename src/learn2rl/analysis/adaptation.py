"""Return after k steps of adaptation: the measure of Finn et al. 2017 (MAML, arXiv 1703.03400),
appendix Tables 4-5.

On a held-out task an agent runs batches of episodes; a gradient-based learner (MAML, Reptile,
MAESN) takes one policy-gradient step after each batch, so the mean episode return of batch k is
its return "after k gradient steps". A memory-based learner (RL^2) is read the same way with
batches of one episode: its column k is episode k + 1, after k episodes of experience.

``episode_returns`` and ``batch_returns`` read that table from an ``EvalResult``;
``adaptation_row`` summarises it with intervals (over tasks for one training seed, Student's t over
seeds for several, as ``analysis.seeds``); ``point_oracle_returns`` is the exact return of the
goal-knowing policy of 2-D point navigation; ``select_step_decay`` chooses the meta-test step-size
decay on training tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from learn2rl.analysis.seeds import mean_and_interval
from learn2rl.evaluation import EvalResult, ci95, evaluate


def episode_returns(result: EvalResult, num_episodes: int) -> np.ndarray:
    """Return of each of the first ``num_episodes`` episodes of every trial, ``[trials,
    num_episodes]``: the valid rewards summed by ``result.episodes``, the episode each step
    belongs to. This holds for either layout of ``evaluate``: a gradient agent's fixed
    ``episode_length`` slots and a step-by-step agent's episodes that follow each other at once."""
    if result.episodes is None:
        raise ValueError("the result has no episode index (evaluate records it)")
    trials = np.arange(result.rewards.shape[0])[:, None]
    keep = result.valid & (result.episodes < num_episodes)
    slot = (trials * num_episodes + result.episodes)[keep]
    weights = np.asarray(result.rewards, np.float64)[keep]
    sums = np.bincount(slot, weights, minlength=trials.size * num_episodes)
    return sums.reshape(trials.size, num_episodes)


def batch_returns(result: EvalResult, per_batch: int, num_batches: int) -> np.ndarray:
    """Mean episode return of each of the first ``num_batches`` batches of ``per_batch``
    episodes, ``[trials, num_batches]``: column k is the return after k adaptation steps."""
    episodes = episode_returns(result, per_batch * num_batches)
    return episodes.reshape(episodes.shape[0], num_batches, per_batch).mean(axis=-1)


def adaptation_row(name: str, returns: Sequence[np.ndarray], note: str = "") -> dict[str, Any]:
    """One row of the adaptation table from ``returns``, one ``[tasks, steps]`` array per training
    seed: the mean return after 0, 1, ... steps and its 95% interval, and the gain of the first
    step (paired over tasks) with its interval. One seed: normal intervals over tasks; several:
    the mean over seeds with Student's t interval over the seeds' means."""
    returns = [np.asarray(r, np.float64) for r in returns]
    gains = [r[:, 1] - r[:, 0] if r.shape[1] > 1 else np.zeros(r.shape[0]) for r in returns]
    if len(returns) == 1:
        means = returns[0].mean(axis=0)
        halves = [ci95(returns[0][:, k]) for k in range(means.size)]
        gain, gain_half = float(gains[0].mean()), ci95(gains[0])
        interval = "normal interval over held-out tasks"
    else:
        per_seed = np.stack([r.mean(axis=0) for r in returns])  # [seeds, steps]
        means, halves = zip(*(mean_and_interval(column) for column in per_seed.T), strict=True)
        gain, gain_half = mean_and_interval([g.mean() for g in gains])
        interval = "t interval over training seeds"
    return {
        "agent": name,
        "returns": [float(m) for m in means],
        "ci95": [float(h) for h in halves],
        "step1_gain": float(gain),
        "step1_gain_ci95": float(gain_half),
        "num_tasks": int(returns[0].shape[0]),
        "num_seeds": len(returns),
        "interval": interval,
        "note": note,
    }


def point_oracle_returns(family, tasks) -> np.ndarray:
    """Exact return of the goal-knowing policy on 2-D point navigation (``tasks.control.point``),
    one per task: each coordinate moves ``min(max_step, |d|)`` towards the goal, so the point lands
    on the goal exactly and the episode ends there (``baselines.control.point_oracle_agent``)."""
    goals = np.asarray(tasks.goal, np.float64)
    returns = np.zeros(goals.shape[0])
    position = np.zeros_like(goals)
    alive = np.ones(goals.shape[0], bool)
    for _ in range(family.episode_length):
        position = position + np.clip(goals - position, -family.max_step, family.max_step)
        returns -= np.where(alive, np.linalg.norm(goals - position, axis=1), 0.0)
        alive &= ~np.all(np.abs(goals - position) < family.goal_tolerance, axis=1)
    return returns


def select_step_decay(
    agent_with: Callable[[float], Any],
    family,
    tasks,
    num_batches: int,
    key: jax.Array,
    decays: Sequence[float],
) -> tuple[float, dict[float, float]]:
    """The meta-test step decay (steps after the first use ``alpha * decay``) of the gradient
    agent ``agent_with(decay)`` with the best mean return after steps 2 to ``num_batches - 1``
    (the only ones the decay changes) on ``tasks``, which should be training tasks, never test
    tasks. Returns the choice and every candidate's score."""
    scores = {}
    for decay in decays:
        agent = agent_with(decay)
        per_batch = agent.episodes_per_adapt
        result = evaluate(agent, family, tasks, per_batch * num_batches, key)
        scores[decay] = float(batch_returns(result, per_batch, num_batches)[:, 2:].mean())
    return max(scores, key=scores.get), scores
