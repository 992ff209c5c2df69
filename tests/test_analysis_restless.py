"""``learn2rl.analysis.restless``: the delta-rule likelihood against a plain loop, the refined
argmax on a known quadratic, the fit recovering learning rates from choices simulated with them,
the rising-learning-rate test, per-group means, and the grid of delta-rule rewards against
``evaluate``."""

import math

import jax
import numpy as np
import pytest

from learn2rl.analysis import restless as rw
from learn2rl.baselines import restless as agents
from learn2rl.evaluation import evaluate
from learn2rl.tasks import make
from tests.reference import restless_reference as ref


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


@pytest.mark.parametrize("coupled", [True, False])
def test_trial_log_likelihoods_match_a_plain_loop(coupled):
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 2, size=(3, 12))
    rewards = rng.integers(0, 2, size=(3, 12)).astype(float)
    valid = np.ones((3, 12), bool)
    valid[2, 9:] = False  # a trial that ended early: its last steps count nothing
    alphas, betas = np.array([0.1, 0.6]), np.array([0.5, 4.0, 9.0])
    got = rw.trial_log_likelihoods(actions, rewards, valid, coupled, alphas, betas, chunk=2)
    assert got.shape == (3, 2, 3)
    for n in range(3):
        for i, alpha in enumerate(alphas):
            path = ref.rescorla_wagner_path(actions[n], rewards[n], alpha, coupled)
            for j, beta in enumerate(betas):
                want = sum(
                    _log_sigmoid(beta * (q[a] - q[1 - a]))
                    for q, a, v in zip(path, actions[n], valid[n], strict=True)
                    if v
                )
                assert got[n, i, j] == pytest.approx(want, abs=1e-4)


def test_refined_argmax_finds_the_peak_of_a_quadratic():
    x, y = np.meshgrid(np.arange(9.0), np.arange(7.0), indexing="ij")
    peak = (3.3, 4.6)
    surface = -((x - peak[0]) ** 2) - 2 * (y - peak[1]) ** 2 + 0.5 * (x - peak[0]) * (y - peak[1])
    i, j, on_edge = rw.refined_argmax(surface)
    assert (i, j) == pytest.approx(peak, abs=1e-9) and not on_edge
    # A peak beyond the grid: the grid maximum on the edge, flagged.
    i, j, on_edge = rw.refined_argmax(-((x - 12.0) ** 2) - (y - 3.0) ** 2)
    assert i == 8 and j == pytest.approx(3.0, abs=1e-9) and on_edge


def _simulate(alpha, beta, num_trials, num_pulls, hazard, rng):
    """Choices of a coupled softmax delta rule on a restless two-armed bandit (p and 1 - p)."""
    p = rng.uniform(size=num_trials)
    q = np.full(num_trials, 0.5)  # the estimate of P(arm 0 pays)
    actions = np.zeros((num_trials, num_pulls), int)
    rewards = np.zeros((num_trials, num_pulls))
    for t in range(num_pulls):
        p = np.where(rng.uniform(size=num_trials) < hazard, rng.uniform(size=num_trials), p)
        arm0 = rng.uniform(size=num_trials) < 1 / (1 + np.exp(-beta * (2 * q - 1)))
        actions[:, t] = np.where(arm0, 0, 1)
        pays = rng.uniform(size=num_trials) < np.where(arm0, p, 1 - p)
        rewards[:, t] = pays
        q += alpha * (np.where(arm0, pays, 1.0 - pays) - q)
    return actions, rewards


@pytest.mark.slow
def test_fit_recovers_known_learning_rates_per_group():
    rng = np.random.default_rng(1)
    truth = [(0.1, 8.0), (0.45, 4.0)]
    runs = [_simulate(alpha, beta, 150, 100, 0.05, rng) for alpha, beta in truth]
    actions = np.concatenate([a for a, _ in runs])
    rewards = np.concatenate([r for _, r in runs])
    groups = np.repeat([0, 1], 150)
    fits = rw.fit_rescorla_wagner(actions, rewards, np.ones_like(rewards), groups, True, 50)
    for fit, (alpha, beta), group in zip(fits, truth, [0, 1], strict=True):
        assert fit["group"] == group and fit["num_trials"] == 150
        assert abs(fit["alpha"] - alpha) < 0.15 * alpha, fit
        assert abs(fit["beta"] - beta) < 0.15 * beta, fit
        low, high = fit["alpha_ci"]
        assert low < fit["alpha"] < high and high - low < 0.3 * alpha, fit
    assert rw.learning_rate_rises(fits)["rises"]


def _fit(alpha, low, high):
    return {"alpha": alpha, "alpha_ci": [low, high]}


def test_learning_rate_rises_needs_disjoint_intervals_and_a_rising_order():
    rising = [_fit(0.1, 0.08, 0.12), _fit(0.2, 0.18, 0.22), _fit(0.3, 0.28, 0.32)]
    verdict = rw.learning_rate_rises(rising)
    assert verdict["rises"] and verdict["separated"] and verdict["spearman"] == pytest.approx(1.0)
    overlapping = [_fit(0.1, 0.05, 0.3), _fit(0.2, 0.1, 0.3), _fit(0.25, 0.2, 0.3)]
    assert not rw.learning_rate_rises(overlapping)["rises"]
    falling = [_fit(0.3, 0.28, 0.32), _fit(0.2, 0.18, 0.22), _fit(0.1, 0.08, 0.12)]
    verdict = rw.learning_rate_rises(falling)
    assert not verdict["rises"] and verdict["spearman"] == pytest.approx(-1.0)
    assert np.isnan(rw.learning_rate_rises([_fit(0.2, 0.1, 0.3)] * 3)["spearman"])


def test_group_means_by_hand():
    rows = rw.group_means([1.0, 3.0, 10.0, 2.0, 4.0], [1, 1, 0, 1, 2])
    assert [r["group"] for r in rows] == [0, 1, 2]
    assert [r["mean"] for r in rows] == [10.0, 2.0, 4.0]
    assert [r["count"] for r in rows] == [1, 3, 1]
    assert rows[1]["ci95"] == pytest.approx(1.96 * 1.0 / math.sqrt(3))
    assert np.isnan(rows[0]["ci95"])


@pytest.mark.slow  # compiles a 100-pull trial of the delta rule twice (grid, evaluate)
@pytest.mark.long
def test_grid_rewards_agree_with_evaluate_and_tuning_picks_their_best():
    family = make("bandit/restless-2arm")
    tasks = family.tasks(200, "train")
    key = jax.random.PRNGKey(7)
    alphas, betas = (0.1, 0.5), (None, 10.0)
    grid = rw.rescorla_wagner_grid_rewards(family, tasks, key, alphas, betas)
    assert grid.shape == (2, 2, 200)
    result = evaluate(agents.rescorla_wagner_agent(family, 0.5, 10.0), family, tasks, 1, key)
    np.testing.assert_allclose(grid[1, 1], result.total_rewards)
    tuned = rw.tune_rescorla_wagner(family, 200, key, alphas, betas)
    assert tuned["score"] == pytest.approx(grid.mean(axis=2).max(), rel=1e-6)
    i, j = np.unravel_index(np.argmax(grid.mean(axis=2)), (2, 2))
    assert (tuned["alpha"], tuned["beta"]) == (alphas[i], betas[j])
    levels = np.asarray(tasks.level)
    for level, alpha in enumerate(tuned["per_level_alphas"]):
        assert alpha == alphas[int(np.argmax(grid[:, 0, levels == level].mean(axis=1)))]
