"""Accuracy by presentation on the Harlow task (Harlow 1949; Wang et al. 2016, arXiv 1611.05763).

A Harlow task is a pair of novel objects shown several times (each presentation one episode of
one step); the learning-set effect is that presentation 1 is a guess and the later ones are right.
``accuracy_by_presentation`` measures exactly that from evaluation results: the fraction of
correct choices at each presentation, on presentation 1 and on presentations 2.., with normal 95%
intervals over trials (tasks x seeds, each trial one independent pair).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import EvalResult, ci95


def correct_choices(result: EvalResult, correct_reward: float) -> np.ndarray:
    """``[trials, presentations]``: 1.0 where the choice at that presentation was the rewarded
    object (its reward reached ``correct_reward``), else 0.0."""
    if result.episodes is None:
        raise Learn2RLError("accuracy by presentation needs EvalResult.episodes")
    presentations = int(result.episodes.max()) + 1
    # One step per episode, so step k is presentation k + 1.
    correct = (result.rewards >= correct_reward) & result.valid
    return correct[:, :presentations].astype(np.float64)


def accuracy_by_presentation(
    results: EvalResult | Sequence[EvalResult], correct_reward: float
) -> dict:
    """Fraction correct at each presentation (``accuracy``, ``ci95``), on presentation 1
    (``first``) and on the mean of presentations 2.. (``rest``), pooled over the trials of every
    result given (e.g. one per training seed); ``num_trials`` counts them."""
    results = [results] if isinstance(results, EvalResult) else list(results)
    correct = np.concatenate([correct_choices(r, correct_reward) for r in results])
    rest = correct[:, 1:].mean(axis=1)
    return {
        "agent": results[0].agent,
        "accuracy": correct.mean(axis=0).tolist(),
        "ci95": [ci95(correct[:, k]) for k in range(correct.shape[1])],
        "first": float(correct[:, 0].mean()),
        "first_ci95": ci95(correct[:, 0]),
        "rest": float(rest.mean()),
        "rest_ci95": ci95(rest),
        "num_trials": int(correct.shape[0]),
    }
