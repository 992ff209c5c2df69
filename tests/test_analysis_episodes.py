"""analysis/episodes.py on hand-written results whose per-episode numbers are worked out below."""

import dataclasses

import numpy as np
import pytest

from learn2rl.analysis import episodes
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import EvalResult


def _result(rewards, episode_index, valid, num_seeds=1):
    rewards = np.asarray(rewards, np.float32)
    return EvalResult(
        agent="hand",
        task="t",
        rewards=rewards,
        regrets=np.full_like(rewards, np.nan),
        valid=np.asarray(valid, bool),
        actions=np.zeros(rewards.shape, np.int32),
        num_tasks=rewards.shape[0] // num_seeds,
        num_seeds=num_seeds,
        episodes=np.asarray(episode_index, np.int32),
    )


# Trial 0: episode 1 takes 4 steps, episode 2 takes 2 (both reach the goal: the positive reward).
# Trial 1: episode 1 takes 3 steps, episode 2 runs out after 3 steps (a truncated episode).
STEP, GOAL = -0.04, 0.96
TWO_TRIALS = _result(
    [[STEP, STEP, STEP, GOAL, STEP, GOAL, 0.0], [STEP, STEP, GOAL, STEP, STEP, STEP, 0.0]],
    [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1]],
    [[1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 0]],
)


def test_episode_table_counts_steps_success_and_excess():
    table = episodes.episode_table(TWO_TRIALS, 2, np.array([2, 3]))
    np.testing.assert_array_equal(table["steps"], [[4, 2], [3, 3]])
    np.testing.assert_array_equal(table["success"], [[True, True], [True, False]])
    np.testing.assert_array_equal(table["shortest"], [[2, 2], [3, 3]])
    np.testing.assert_array_equal(table["excess"], [[2, 0], [0, 0]])
    np.testing.assert_array_equal(episodes.first_steps(TWO_TRIALS, 2), [[0, 4], [0, 3]])
    # A shortest path per episode is used as given.
    table = episodes.episode_table(TWO_TRIALS, 2, np.array([[1, 2], [3, 1]]))
    np.testing.assert_array_equal(table["excess"], [[3, 0], [0, 2]])


def test_shortest_paths_per_task_repeat_over_evaluation_seeds():
    # The same task under two seeds (rows seed-major): the task's shortest path serves both rows.
    two_seeds = _result(TWO_TRIALS.rewards, TWO_TRIALS.episodes, TWO_TRIALS.valid, num_seeds=2)
    table = episodes.episode_table(two_seeds, 2, np.array([2]))
    np.testing.assert_array_equal(table["shortest"], [[2, 2], [2, 2]])


def test_summarize_all_episodes():
    summary = episodes.summarize(episodes.episode_table(TWO_TRIALS, 2, np.array([2, 3])))
    assert summary["num_trials"] == 2
    assert summary["steps_per_episode"] == [3.5, 2.5]
    assert summary["success_per_episode"] == [1.0, 0.5]
    assert summary["first_steps"] == 3.5 and summary["later_steps"] == 2.5
    # Two trials, values 4 and 3: 1.96 * std(ddof=1) / sqrt(2) = 1.96 * 0.5.
    assert summary["first_ci95"] == pytest.approx(0.98)
    assert summary["drop"] == pytest.approx(1.0)  # drops 2 and 0
    assert summary["drop_ci95"] == pytest.approx(1.96)
    assert summary["ratio"] == pytest.approx(2.5 / 3.5)
    assert summary["paired_fraction"] == 1.0
    assert summary["shorter_later"] == 0.5 and summary["same_later"] == 0.5
    assert summary["success_rate"] == 0.75
    assert summary["total_excess"] == pytest.approx(1.0)  # 2 + 0 and 0 + 0
    assert summary["later_excess"] == 0.0 and summary["later_shortest"] == 2.5


def test_summarize_successful_episodes_only():
    table = episodes.episode_table(TWO_TRIALS, 2, np.array([2, 3]))
    summary = episodes.summarize(table, successful_only=True)
    assert summary["steps_per_episode"] == [3.5, 2.0]  # episode 2: only trial 0 succeeded
    assert summary["excess_per_episode"] == [1.0, 0.0]
    assert np.isnan(summary["steps_per_episode_ci95"][1])  # one episode: no interval
    # Only trial 0 succeeded twice: the paired drop is its 4 -> 2.
    assert summary["paired_fraction"] == 0.5
    assert summary["drop"] == 2.0 and summary["shorter_later"] == 1.0
    assert summary["later_steps"] == 2.0 and summary["ratio"] == pytest.approx(2.0 / 3.5)
    # Failed episodes still count in the success rate and in the total excess.
    assert summary["success_rate"] == 0.75 and summary["total_excess"] == pytest.approx(1.0)


def test_later_episodes_are_averaged_within_each_trial():
    # Three episodes: 6 steps, then 2 and 4 (trial 0); 4 steps, then 1 and 1 (trial 1).
    e = [[0] * 6 + [1] * 2 + [2] * 4, [0] * 4 + [1] + [2] + [2] * 6]
    valid = [[1] * 12, [1] * 6 + [0] * 6]
    goal = [[0] * 5 + [1] + [0, 1] + [0] * 3 + [1], [0] * 3 + [1, 1, 1] + [0] * 6]
    table = episodes.episode_table(_result(goal, e, valid), 3, np.zeros(2))
    summary = episodes.summarize(table)
    assert summary["later_steps"] == pytest.approx((3 + 1) / 2)
    assert summary["drop"] == pytest.approx(((6 - 3) + (4 - 1)) / 2)
    assert summary["later_ci95"] == pytest.approx(1.96 * np.std([3, 1], ddof=1) / np.sqrt(2))


def test_drops_after_first_needs_separate_intervals_and_a_small_ratio():
    summary = {"first_steps": 10.0, "first_ci95": 1.0, "later_steps": 4.0, "later_ci95": 1.0}
    assert episodes.drops_after_first(summary | {"ratio": 0.4}, 0.6)
    assert not episodes.drops_after_first(summary | {"ratio": 0.4}, 0.3)
    overlapping = summary | {"later_steps": 8.5, "ratio": 0.85}
    assert not episodes.drops_after_first(overlapping, 0.9)


def test_errors_name_the_problem():
    no_index = dataclasses.replace(TWO_TRIALS, episodes=None)
    with pytest.raises(Learn2RLError, match="no episode indices"):
        episodes.episode_table(no_index, 2, np.zeros(2))
    with pytest.raises(Learn2RLError, match="empty episode"):
        episodes.episode_table(TWO_TRIALS, 3, np.zeros(2))
