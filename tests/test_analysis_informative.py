"""``learn2rl.analysis.informative`` on hand-made trials: action categories, the behaviour summary,
the category shares per step and the decoding matrix, for one and for two training seeds."""

import numpy as np
import pytest

from learn2rl.analysis import informative as analysis
from learn2rl.evaluation import EvalResult

INFORMATIVE = 3  # three ordinary arms (0, 1, 2) and the informative arm


def _result(actions, valid=None, num_seeds=1) -> EvalResult:
    actions = np.asarray(actions)
    valid = np.ones(actions.shape, bool) if valid is None else np.asarray(valid)
    zeros = np.zeros(actions.shape)
    num_tasks = len(actions) // num_seeds
    return EvalResult("agent", "task", zeros, zeros, valid, actions, num_tasks, num_seeds)


def test_categories_summary_and_shares_by_hand():
    targets = [0, 2, 1]
    result = _result(
        [[3, 0, 0, 0], [3, 1, 2, 2], [0, 2, 1, 3]],
        valid=[[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]],
    )
    categories = analysis.action_categories(result, targets, INFORMATIVE)
    np.testing.assert_array_equal(categories, [[0, 1, 1, 1], [0, 2, 1, 1], [2, 2, 1, -1]])
    summary = analysis.behaviour_summary(categories, episode_length=4)
    assert summary["informative_first"] == pytest.approx(2 / 3)
    assert summary["target_later"] == pytest.approx((1 + 2 / 3 + 1 / 3) / 3)
    first = np.array([1.0, 1.0, 0.0])
    assert summary["informative_first_ci95"] == pytest.approx(1.96 * first.std(ddof=1) / np.sqrt(3))
    assert summary["num_trials"] == 3
    shares = analysis.step_distribution(categories)
    np.testing.assert_allclose(shares[0], [2 / 3, 0, 1 / 3])
    np.testing.assert_allclose(shares[2], [0, 1, 0])
    np.testing.assert_allclose(shares[3], [0, 1, 0])  # the ended trial is left out


def test_decoding_matrix_by_hand():
    targets = [0, 2, 2, 1]
    result = _result([[3, 0], [3, 2], [3, 1], [0, 3]])  # the last never pulled the cue first
    matrix = analysis.decoding_matrix(result, targets, num_arms=3)
    assert matrix.shape == (3, 4)
    np.testing.assert_allclose(matrix[0], [1, 0, 0, 0])
    np.testing.assert_allclose(matrix[2], [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(matrix[1], 0)  # target 1 never followed an informative pull


def test_several_seeds_repeat_the_targets():
    targets = [0, 2]
    one = _result([[3, 0], [3, 2]])
    two = _result([[3, 0], [3, 2], [0, 0], [3, 1]], num_seeds=2)
    categories = analysis.action_categories(two, targets, INFORMATIVE)
    np.testing.assert_array_equal(categories, [[0, 1], [0, 1], [1, 1], [0, 2]])
    np.testing.assert_allclose(analysis.decoding_matrix(one, targets, 3)[2], [0, 0, 1, 0])
    np.testing.assert_allclose(analysis.decoding_matrix(two, targets, 3)[2], [0, 0.5, 0.5, 0])
