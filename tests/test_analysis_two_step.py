"""``learn2rl.analysis.two_step``: trial extraction, stay counts, effects, the ridge logistic fit,
the episode bootstrap and the stay regression, on hand-written and synthetic choices."""

import dataclasses

import numpy as np
import pytest

from learn2rl.analysis import two_step
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import EvalResult
from learn2rl.tasks.two_step import TwoStepTask


def _hand_result(actions, rewards, locations, num_seeds=1) -> EvalResult:
    actions = np.asarray(actions)
    return EvalResult(
        agent="hand",
        task=TwoStepTask(num_trials=2).family_id,
        rewards=np.asarray(rewards, float),
        regrets=np.zeros(actions.shape),
        valid=np.ones(actions.shape, bool),
        actions=actions,
        num_tasks=actions.shape[0] // num_seeds,
        num_seeds=num_seeds,
        episodes=np.zeros_like(actions),
        observations=np.eye(3)[np.asarray(locations)],
    )


def test_two_step_trials_reads_a_hand_written_episode():
    """Two two-step trials by hand: choose 0, rare -> B, rewarded; choose 1 (switch), common."""
    result = _hand_result([[0, 1, 1, 0]], [[0.0, 1.0, 0.0, 0.0]], [[0, 2, 0, 2]])
    trials = two_step.two_step_trials(result, np.array([[1, 1]]))
    np.testing.assert_array_equal(trials["first_action"], [[0, 1]])
    np.testing.assert_array_equal(trials["second_state"], [[1, 1]])
    np.testing.assert_array_equal(trials["rewarded"], [[True, False]])
    np.testing.assert_array_equal(trials["common"], [[False, True]])
    np.testing.assert_array_equal(trials["correct"], [[False, True]])
    stays, counts = two_step.stay_counts(trials)
    np.testing.assert_array_equal(counts, [[0, 1, 0, 0]])  # one decision, after rewarded-rare
    np.testing.assert_array_equal(stays, [[0, 0, 0, 0]])  # ... and it switched
    stays, counts = two_step.pattern_counts(trials)
    # rewarded (4) + rare (0) + incorrect (0): pattern 4.
    np.testing.assert_array_equal(counts, [[0, 0, 0, 0, 1, 0, 0, 0]])
    np.testing.assert_array_equal(two_step.PATTERNS[4], [True, False, False])
    with pytest.raises(Learn2RLError, match="do not match"):
        two_step.two_step_trials(result, np.array([[1, 1, 1]]))


def test_two_step_trials_repeats_the_schedule_for_every_seed():
    # Two seeds of one task: rows seed-major; the same schedule applies to both rows.
    result = _hand_result(
        [[0, 0, 0, 0], [1, 0, 1, 0]], np.zeros((2, 4)), [[0, 1, 0, 1], [0, 2, 0, 2]], num_seeds=2
    )
    trials = two_step.two_step_trials(result, np.array([[0, 1]]))
    np.testing.assert_array_equal(trials["correct"], [[True, False], [False, True]])
    np.testing.assert_array_equal(trials["common"], [[True, True], [True, True]])
    without = dataclasses.replace(result, observations=None)
    with pytest.raises(Learn2RLError, match="record_obs"):
        two_step.two_step_trials(without, np.array([[0, 1]]))


def test_effects_of_pure_model_based_and_model_free_patterns():
    model_based = two_step.effects(np.array([1.0, 0.0, 0.0, 1.0]))  # rc, rr, uc, ur
    assert model_based == {"reward": 0.0, "transition": 0.0, "interaction": 2.0}
    model_free = two_step.effects(np.array([1.0, 1.0, 0.0, 0.0]))
    assert model_free == {"reward": 1.0, "transition": 0.0, "interaction": 0.0}
    batched = two_step.effects(np.array([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5]]))
    np.testing.assert_array_equal(batched["interaction"], [2.0, 0.0])


def test_logistic_fit_recovers_the_coefficients_of_expected_counts():
    """Without a penalty, stays equal to their expectation under beta make beta the exact
    maximum-likelihood solution (the score equations vanish there)."""
    x = two_step.pattern_design()
    beta = np.array([0.3, 1.2, -0.4, 0.8, 0.5])
    counts = np.full(8, 1000.0)
    stays = counts / (1 + np.exp(-(x @ beta)))
    np.testing.assert_allclose(two_step.logistic_fit(x, stays, counts, ridge=0.0), beta, atol=1e-8)
    # Only the intercept: the fit is the logit of the pooled stay rate.
    ones = np.ones((8, 1))
    rate = stays.sum() / counts.sum()
    fit = two_step.logistic_fit(ones, stays, counts)
    assert fit[0] == pytest.approx(np.log(rate / (1 - rate)))
    # The ridge shrinks every coefficient but the intercept; batches are fitted one by one.
    shrunk = two_step.logistic_fit(x, stays / 100, counts / 100, ridge=1.0)
    assert np.all(np.abs(shrunk[1:]) < np.abs(beta[1:]))
    batch = two_step.logistic_fit(
        x, np.stack([stays, stays / 100]), np.stack([counts, counts / 100])
    )
    np.testing.assert_allclose(batch[1], shrunk, atol=1e-8)
    np.testing.assert_allclose(batch[0], two_step.logistic_fit(x, stays, counts), atol=1e-8)


def test_episode_bootstrap_matches_the_normal_interval_of_a_proportion():
    rng = np.random.default_rng(0)
    counts = np.full((400, 1), 50)
    stays = rng.binomial(counts, 0.3)

    def rate(s, n):
        return s / n

    low, high = two_step.episode_bootstrap(rate, stays, counts, num_bootstrap=2000)[0]
    p = stays.sum() / counts.sum()
    half = 1.96 * np.sqrt(p * (1 - p) / counts.sum())
    assert low < p < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.15)
    # Identical episodes leave nothing to resample: the interval is the point.
    same = two_step.episode_bootstrap(rate, np.full((50, 1), 3), np.full((50, 1), 4), 200)
    np.testing.assert_allclose(same, [[0.75, 0.75]])


def _synthetic_trials(stay_after, episodes=300, num_trials=100, seed=1):
    """Choices whose stay probability after each two-step trial is ``stay_after(rewarded,
    common)``; outcomes and correctness are independent coin flips."""
    rng = np.random.default_rng(seed)
    rewarded = rng.random((episodes, num_trials)) < 0.5
    common = rng.random((episodes, num_trials)) < 0.7
    first = np.zeros((episodes, num_trials), int)
    for t in range(1, num_trials):
        stay = rng.random(episodes) < stay_after(rewarded[:, t - 1], common[:, t - 1])
        first[:, t] = np.where(stay, first[:, t - 1], 1 - first[:, t - 1])
    good = rng.integers(0, 2, (episodes, num_trials))
    second = np.where(common, first, 1 - first)
    return {"first_action": first, "second_state": second, "rewarded": rewarded,
            "common": common, "correct": first == good}  # fmt: skip


def test_stay_regression_tells_reward_from_interaction():
    model_free = _synthetic_trials(lambda r, c: np.where(r, 0.9, 0.3))
    found = two_step.stay_regression(model_free, num_bootstrap=300)
    # Half the logit difference, since reward is coded +-1.
    expected = 0.5 * (np.log(0.9 / 0.1) - np.log(0.3 / 0.7))
    assert found["reward"]["coef"] == pytest.approx(expected, abs=0.08)
    assert found["reward"]["ci95"][0] > 1.0
    assert abs(found["reward x transition"]["coef"]) < 0.08
    model_based = _synthetic_trials(lambda r, c: np.where(r == c, 0.9, 0.3))
    found = two_step.stay_regression(model_based, num_bootstrap=300)
    assert found["reward x transition"]["coef"] == pytest.approx(expected, abs=0.08)
    assert found["reward x transition"]["ci95"][0] > 1.0
    assert abs(found["reward"]["coef"]) < 0.08


def test_reward_per_trial_counts_two_steps_per_trial():
    result = _hand_result(
        [[0, 0, 0, 0], [0, 0, 0, 0]], [[0, 1, 0, 1], [0, 0, 0, 1]], np.zeros((2, 4), int)
    )
    mean, half = two_step.reward_per_trial(result)
    assert mean == pytest.approx(0.75)  # totals 2 and 1 over 2 two-step trials each
    assert half == pytest.approx(1.96 * np.std([1.0, 0.5], ddof=1) / np.sqrt(2))
