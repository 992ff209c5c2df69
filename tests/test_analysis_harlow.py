"""``learn2rl.analysis.harlow``: accuracy by presentation on hand-written results."""

import dataclasses

import numpy as np
import pytest

from learn2rl.analysis.harlow import accuracy_by_presentation, correct_choices
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import EvalResult


def _result(rewards, agent="hand") -> EvalResult:
    rewards = np.asarray(rewards, float)
    trials, steps = rewards.shape
    return EvalResult(
        agent=agent,
        task="harlow/vectors",
        rewards=rewards,
        regrets=np.zeros_like(rewards),
        valid=np.ones_like(rewards, bool),
        actions=np.zeros(rewards.shape, int),
        num_tasks=trials,
        num_seeds=1,
        episodes=np.tile(np.arange(steps), (trials, 1)),
    )


def test_accuracy_by_presentation_of_hand_written_trials():
    # Four pairs, three presentations; -1 marks a wrong choice (incorrect_reward=-1).
    result = _result([[1, 1, 1], [-1, 1, 1], [-1, 1, -1], [1, -1, 1]])
    found = accuracy_by_presentation(result, correct_reward=1.0)
    assert found["accuracy"] == [0.5, 0.75, 0.75]
    assert found["first"] == 0.5 and found["num_trials"] == 4
    # Presentations 2-3 per pair: 1, 1, 0.5, 0.5.
    assert found["rest"] == 0.75
    assert found["rest_ci95"] == pytest.approx(1.96 * np.std([1, 1, 0.5, 0.5], ddof=1) / 2)
    assert found["ci95"][0] == pytest.approx(1.96 * np.std([1, 0, 0, 1], ddof=1) / 2)


def test_results_of_several_seeds_are_pooled_and_invalid_steps_are_wrong():
    a, b = _result([[1, 1], [0, 1]]), _result([[0, 0], [1, 1]])
    pooled = accuracy_by_presentation([a, b], correct_reward=1.0)
    assert pooled["accuracy"] == [0.5, 0.75] and pooled["num_trials"] == 4
    a.valid[0, 1] = False
    np.testing.assert_array_equal(correct_choices(a, 1.0), [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(Learn2RLError, match="episodes"):
        accuracy_by_presentation(dataclasses.replace(a, episodes=None), 1.0)
