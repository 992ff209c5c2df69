"""Choice analyses of the two-step task: did an agent behave model-based or model-free?

Daw et al. 2011 (Neuron 69:1204) read the answer off the probability of repeating ("staying
with") the previous first-stage choice after a rewarded or unrewarded, common or rare two-step
trial: a model-free learner stays after reward whatever the transition (a *reward* main effect), a
model-based one stays after rewarded-common and unrewarded-rare trials (a reward x transition
*interaction*). Wang et al. 2016 (arXiv 1611.05763) showed the interaction in a meta-trained RL^2
agent. With reversals of the good state, though, a model-free learner shows a spurious
interaction too; Akam, Costa & Dayan 2015 (PLoS Comput. Biol. 11:e1004648) remove it with a
logistic regression that also controls for whether the previous choice was correct
(``stay_regression``).

Everything here is a pure function of an ``EvalResult`` recorded with ``record_obs=True`` (the
second-stage state is read from the observations) and the tasks' good-state schedule. Intervals
are 95% percentile-bootstrap intervals over test episodes (``scipy.stats.bootstrap``): an episode
is one run of 100 two-step trials on one task, the independent unit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import stats

from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import EvalResult, ci95
from learn2rl.tasks.two_step import STATE_A

CELLS = ("rewarded, common", "rewarded, rare", "unrewarded, common", "unrewarded, rare")
EFFECTS = ("reward", "transition", "interaction")
REGRESSORS = ("intercept", "reward", "transition", "reward x transition", "correct")
RIDGE = 1.0  # L2 penalty on the logistic coefficients (not the intercept): keeps a deterministic
# agent's fit finite; negligible next to the ~10^4-10^5 stay decisions of a test set
NUM_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0
# The regressors take 8 patterns (reward, transition, correct: each yes/no), so the regression
# runs on per-episode counts of stays and decisions per pattern, not one row per decision.
PATTERNS = np.array([[r, c, k] for r in (0, 1) for c in (0, 1) for k in (0, 1)], bool)


def two_step_trials(result: EvalResult, good: np.ndarray) -> dict[str, np.ndarray]:
    """Per-two-step-trial arrays ``[episodes, num_trials]`` from an evaluation with
    ``record_obs``: the first-stage action, the second-stage state (0 = A, 1 = B), whether it was
    rewarded, whether the transition was common, and whether the first-stage choice was *correct*
    (its common state was the good one in that two-step trial).

    ``good`` is the tasks' schedule ``[num_tasks, num_trials]`` (``tasks.good``); the rows of
    ``result`` are seed-major (seed s, task i -> row s * num_tasks + i), and every episode of a row
    replays its task's schedule from the start.
    """
    if result.observations is None:
        raise Learn2RLError("the two-step analysis needs evaluate(..., record_obs=True)")
    good = np.asarray(good)
    num_tasks, num_trials = good.shape
    rows, steps = result.actions.shape
    per_episode = 2 * num_trials
    if steps % per_episode or rows != num_tasks * result.num_seeds:
        raise Learn2RLError(
            f"results of shape {result.actions.shape} do not match {num_tasks} tasks of "
            f"{num_trials} two-step trials x {result.num_seeds} seed(s)"
        )
    episodes_per_row = steps // per_episode
    episodes = rows * episodes_per_row
    actions = result.actions.reshape(episodes, num_trials, 2)
    rewards = result.rewards.reshape(episodes, num_trials, 2)
    locations = result.observations.reshape(episodes, num_trials, 2, -1).argmax(axis=-1)
    good = np.repeat(np.tile(good, (result.num_seeds, 1)), episodes_per_row, axis=0)
    first = actions[:, :, 0]
    second_state = locations[:, :, 1] - STATE_A
    return {
        "first_action": first,
        "second_state": second_state,
        "rewarded": rewards[:, :, 1] > 0,
        "common": second_state == first,
        "correct": first == good,
    }


def _stays_after(trials: dict[str, np.ndarray], index: np.ndarray, size: int):
    """Per episode: stays and decisions after each value 0..size-1 of ``index`` (the class of
    the previous two-step trial), arrays ``[episodes, size]``."""
    first = trials["first_action"]
    stay = first[:, 1:] == first[:, :-1]
    stays = np.stack([(stay & (index == k)).sum(axis=1) for k in range(size)], axis=1)
    counts = np.stack([(index == k).sum(axis=1) for k in range(size)], axis=1)
    return stays, counts


def stay_counts(trials: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per episode: stays and decisions after each of the four ``CELLS``, ``[episodes, 4]``."""
    unrewarded, rare = ~trials["rewarded"][:, :-1], ~trials["common"][:, :-1]
    return _stays_after(trials, 2 * unrewarded + rare, 4)


def pattern_counts(trials: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per episode: stays and decisions after each of the 8 ``PATTERNS`` (reward, common,
    correct) of the previous two-step trial, arrays ``[episodes, 8]``."""
    index = (
        4 * trials["rewarded"][:, :-1] + 2 * trials["common"][:, :-1] + trials["correct"][:, :-1]
    )
    return _stays_after(trials, index, 8)


def effects(p: np.ndarray) -> dict[str, np.ndarray]:
    """Reward and transition main effects and their interaction from P(stay) per ``CELLS`` entry
    (last axis): reward = mean over transitions of P(stay | rewarded) - P(stay | unrewarded),
    interaction = [P(rc) - P(rr)] - [P(uc) - P(ur)], positive for a model-based agent."""
    rc, rr, uc, ur = (p[..., i] for i in range(4))
    return {
        "reward": 0.5 * ((rc + rr) - (uc + ur)),
        "transition": 0.5 * ((rc + uc) - (rr + ur)),
        "interaction": (rc - rr) - (uc - ur),
    }


def pattern_design() -> np.ndarray:
    """The regression's design matrix, one row per ``PATTERNS`` entry: intercept, reward,
    transition (common), reward x transition and correct, each coded +-1."""
    reward, common, correct = (2.0 * PATTERNS[:, i] - 1.0 for i in range(3))
    return np.stack([np.ones(8), reward, common, reward * common, correct], axis=1)


def logistic_fit(x, stays, counts, ridge: float = RIDGE, start=None, iterations: int = 50):
    """Binomial logistic regression (``stays`` of ``counts`` per design row of ``x``) with an L2
    penalty ``ridge`` on every coefficient but the first (the intercept), by Newton's method.

    ``stays`` and ``counts`` may carry leading batch axes (``[..., rows]``); the coefficients
    come back as ``[..., columns]`` (one fit per batch entry, solved together)."""
    stays, counts = np.asarray(stays, np.float64), np.asarray(counts, np.float64)
    beta = np.zeros(stays.shape[:-1] + (x.shape[1],))
    if start is not None:
        beta = beta + start
    penalty = ridge * np.diag([0.0] + [1.0] * (x.shape[1] - 1))
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(beta @ x.T)))
        hessian = np.einsum("...r,ri,rj->...ij", counts * p * (1 - p), x, x) + penalty
        gradient = (stays - counts * p) @ x - beta @ penalty
        step = np.linalg.solve(hessian, gradient[..., None])[..., 0]
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def episode_bootstrap(
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
    stays: np.ndarray,
    counts: np.ndarray,
    num_bootstrap: int = NUM_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> np.ndarray:
    """95% percentile-bootstrap intervals, ``[outputs, 2]``, of ``statistic(stays, counts)``
    (summed counts ``[..., k]`` -> outputs ``[..., m]``) over resampled episodes (rows of the
    per-episode arrays ``stays`` and ``counts``, resampled together)."""

    def pooled(s, c, axis=-1):  # scipy passes [k, batch, episodes]; the statistic sees [batch, k]
        return np.moveaxis(statistic(s.sum(axis).T, c.sum(axis).T), -1, 0)

    found = stats.bootstrap(
        (stays, counts),
        pooled,
        paired=True,
        vectorized=True,
        n_resamples=num_bootstrap,
        batch=max(1, min(num_bootstrap, 10**7 // max(stays.size, 1))),  # bound the memory
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return np.stack([found.confidence_interval.low, found.confidence_interval.high], axis=-1)


def stay_regression(
    trials: dict[str, np.ndarray], num_bootstrap: int = NUM_BOOTSTRAP, seed: int = BOOTSTRAP_SEED
) -> dict[str, dict[str, Any]]:
    """Logistic regression of stay on reward, transition, their interaction and whether the
    previous choice was correct (Akam et al. 2015), all coded +-1: ``{regressor: {"coef",
    "ci95"}}``.

    Why the "correct" regressor: with reversals a model-free learner's values track the good
    action, and whether its last choice was the good one is correlated with the reward x
    transition cells (rewarded-common and unrewarded-rare happen mostly after correct choices),
    so the raw stay plot credits it with a spurious interaction. Controlling for correctness leaves
    a model-free learner with only the reward effect and a model-based one with the interaction.
    """
    stays, counts = pattern_counts(trials)
    x = pattern_design()
    beta = logistic_fit(x, stays.sum(0), counts.sum(0))
    ci = episode_bootstrap(
        lambda s, n: logistic_fit(x, s, n, start=beta), stays, counts, num_bootstrap, seed
    )
    return {
        name: {"coef": float(beta[i]), "ci95": ci[i].tolist()} for i, name in enumerate(REGRESSORS)
    }


def _stay_statistic(stays: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """P(stay) per cell, then the three ``EFFECTS``, along the last axis."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = stays / counts
    found = effects(p)
    return np.concatenate([p, np.stack([found[k] for k in EFFECTS], axis=-1)], axis=-1)


def stay_analysis(
    result: EvalResult,
    good: np.ndarray,
    num_bootstrap: int = NUM_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """The classic analysis (Daw et al. 2011; Wang et al. 2016's bar plot): stay probabilities
    after each ``CELLS`` entry pooled over test episodes, the reward and transition main effects
    and the reward x transition interaction, each with its 95% bootstrap interval over episodes;
    plus ``stay_regression``."""
    trials = two_step_trials(result, good)
    stays, counts = stay_counts(trials)
    value = _stay_statistic(stays.sum(0), counts.sum(0))
    ci = episode_bootstrap(_stay_statistic, stays, counts, num_bootstrap, seed)
    return {
        "agent": result.agent,
        "cells": list(CELLS),
        "stay_probability": value[:4].tolist(),
        "stay_ci95": ci[:4].tolist(),
        "counts": counts.sum(0).tolist(),
        "effects": {k: float(value[4 + i]) for i, k in enumerate(EFFECTS)},
        "effects_ci95": {k: ci[4 + i].tolist() for i, k in enumerate(EFFECTS)},
        "regression": stay_regression(trials, num_bootstrap, seed),
        "episodes": int(stays.shape[0]),
    }


def reward_per_trial(result: EvalResult) -> tuple[float, float]:
    """Mean reward per two-step trial and its 95% CI half-width (over test tasks x seeds)."""
    per_task = result.total_rewards / (result.rewards.shape[1] // 2)
    return float(per_task.mean()), ci95(per_task)
