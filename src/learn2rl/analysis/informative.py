"""The informative-arm bandit (Wang et al. 2016, arXiv 1611.05763, Sec. 3.1.2): what an agent pulls.

Each pull of a trial falls in one of three categories, the informative arm, the target, or another
ordinary arm (``action_categories``). The paper's finding is a pattern of categories: the
informative arm first, then the target. ``behaviour_summary`` gives the share of trials that start
with the informative arm and the share of later pulls on the target (95% intervals over trials,
``evaluation.ci95``), ``step_distribution`` the share of each category at each pull, and
``decoding_matrix`` how the second pull depends on the target after an informative first pull
(the identity for an agent that reads the cue perfectly).

Results of several training seeds come seed after seed (``EvalResult.num_seeds``); the per-task
``targets`` are repeated to match.
"""

from __future__ import annotations

import numpy as np

from learn2rl.evaluation import EvalResult, ci95

CATEGORIES = ("informative", "target", "other arm")


def action_categories(result: EvalResult, targets, informative_arm: int) -> np.ndarray:
    """Per trial and step: 0 informative arm, 1 target, 2 another ordinary arm; -1 after the end."""
    actions = result.actions
    targets = np.tile(np.asarray(targets), result.num_seeds)[:, None]
    category = np.where(actions == informative_arm, 0, np.where(actions == targets, 1, 2))
    return np.where(result.valid, category, -1)


def behaviour_summary(categories: np.ndarray, episode_length: int) -> dict:
    """Share of trials whose first pull is the informative arm, and share of pulls 2..L (of the
    first episode) that hit the target, each with a 95% interval over trials."""
    first = (categories[:, 0] == 0).astype(float)
    later = (categories[:, 1:episode_length] == 1).mean(axis=1)
    return {
        "informative_first": float(first.mean()),
        "informative_first_ci95": ci95(first),
        "target_later": float(later.mean()),
        "target_later_ci95": ci95(later),
        "num_trials": int(categories.shape[0]),
    }


def step_distribution(categories: np.ndarray) -> np.ndarray:
    """[steps, 3]: share of valid trials choosing each category at each step."""
    valid = categories >= 0
    counts = np.stack([(categories == c).sum(axis=0) for c in range(len(CATEGORIES))], axis=1)
    return counts / np.maximum(valid.sum(axis=0), 1)[:, None]


def decoding_matrix(result: EvalResult, targets, num_arms: int) -> np.ndarray:
    """[target, action]: distribution of the 2nd pull in trials whose 1st pull was the
    informative arm (index ``num_arms``); a row of zeros for a target never seen there."""
    targets = np.tile(np.asarray(targets), result.num_seeds)
    first_informative = result.actions[:, 0] == num_arms
    matrix = np.zeros((num_arms, num_arms + 1))
    np.add.at(matrix, (targets[first_informative], result.actions[first_informative, 1]), 1)
    return matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
