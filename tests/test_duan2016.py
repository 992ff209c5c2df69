"""The RL^2 Table 2 / Table 3 reproductions (experiments/duan2016_mdps.py, duan2016_mazes.py):
tiny runs that check the outputs and the analyses, not the numbers (those are in
docs/results/duan2016.md)."""

import json

import numpy as np
import pytest

from learn2rl.evaluation import EvalResult
from learn2rl.experiments import duan2016_mazes as mazes


def _maze_result(rewards, episodes, valid, num_seeds=1):
    rewards = np.asarray(rewards, np.float32)
    return EvalResult(
        agent="hand",
        task="maze/5x5",
        rewards=rewards,
        regrets=np.full_like(rewards, np.nan),
        valid=np.asarray(valid, bool),
        actions=np.zeros(rewards.shape, np.int32),
        num_tasks=rewards.shape[0] // num_seeds,
        num_seeds=num_seeds,
        episodes=np.asarray(episodes, np.int32),
    )


def test_episode_summary_on_a_hand_written_result():
    step, goal = -0.04, 0.96
    # Trial 0: episode 1 takes 4 steps, episode 2 takes 2 (both reach the target).
    # Trial 1: episode 1 takes 3 steps, episode 2 runs out after 3 steps (a truncated episode).
    rewards = [
        [step, step, step, goal, step, goal, 0.0],
        [step, step, goal, step, step, step, 0.0],
    ]
    episodes = [[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1]]
    valid = [[1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 0]]
    summary = mazes.episode_summary(_maze_result(rewards, episodes, valid), np.array([2, 3]))
    ep1, ep2 = summary["episodes"]
    assert ep1["success"] == 1.0 and ep2["success"] == 0.5
    assert ep1["length"] == pytest.approx(3.5) and ep2["length"] == pytest.approx(2.0)
    assert ep1["excess"] == pytest.approx(((4 - 2) + (3 - 3)) / 2)
    assert ep2["excess"] == pytest.approx(0.0)
    # Only trial 0 succeeded twice: the paired drop is its 4 -> 2.
    assert summary["both_succeeded"] == 0.5
    assert summary["drop"] == pytest.approx(2.0) and summary["shorter_second"] == 1.0
    assert summary["same_second"] == 0.0
    assert summary["shortest"] == pytest.approx(2.5)


def test_maze_findings_pass_and_fail_on_their_criteria():
    def summary(success, lengths, drop, half):
        return {
            "episodes": [
                {"success": s, "length": n, "length_ci95": 1.0, "excess": 0.0}
                for s, n in zip(success, lengths, strict=True)
            ],
            "both_succeeded": min(success),
            "drop": drop,
            "drop_ci95": half,
            "shorter_second": 0.5,
            "same_second": 0.5,
            "shortest": 10.0,
        }

    walk = summary((0.35, 0.35), (80.0, 80.0), 0.0, 5.0)
    good = mazes.findings({"rl2": summary((0.99, 0.99), (30.0, 20.0), 10.0, 2.0), "random": walk})
    assert [f["passed"] for f in good] == [True, True, True]
    bad = mazes.findings({"rl2": summary((0.5, 0.95), (30.0, 29.0), 1.0, 2.0), "random": walk})
    assert [f["passed"] for f in bad] == [False, False, False]


@pytest.mark.slow
def test_maze_run_writes_report_results_and_plots(tmp_path, tiny_config):
    config = tiny_config.replace(task="maze/5x5", num_episodes=2, num_updates=2)
    outcome = mazes.run(tmp_path, progress=False, config=config, num_test_tasks=16)
    assert {"rl2", "oracle", "random"} == set(outcome["summaries"])
    oracle = outcome["summaries"]["oracle"]
    # The oracle walks the shortest path in both episodes: no excess, no drop.
    assert [e["success"] for e in oracle["episodes"]] == [1.0, 1.0]
    assert [e["excess"] for e in oracle["episodes"]] == [0.0, 0.0]
    assert oracle["drop"] == 0.0
    report = (tmp_path / "report.md").read_text()
    assert "52.4" in report and "Findings (tested)" in report
    assert (tmp_path / "lengths.png").stat().st_size > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["findings"]) == 3


@pytest.mark.slow
def test_mdp_cell_evaluates_both_priors_reports_and_caches(tmp_path, tiny_config, monkeypatch):
    from learn2rl.baselines import mdp
    from learn2rl.experiments import duan2016_mdps as mdps

    monkeypatch.setattr(mdps, "FAMILY_PRIOR", ("greedy",))  # one family-prior column is enough

    config = tiny_config.replace(task=mdps.TASK, num_episodes=10, num_updates=2)
    outcome = mdps.run(
        tmp_path, progress=False, num_test_tasks=16, cells=[10], configs={10: config}
    )
    (entry,) = outcome["table"]
    fp = {f"{name}-fp" for name in mdps.FAMILY_PRIOR}
    assert set(entry["ours"]) == set(mdps.COLUMNS) | fp
    assert entry["options"]["family"] == mdp.tuned_options(10)
    # No agent can beat the optimal policy of the true MDP in expectation; 16 tasks leave noise.
    assert entry["optimal"] > max(entry["ours"].values()) - 10
    assert len(outcome["findings"]) == 4
    report = (tmp_path / "report.md").read_text()
    assert "156.2" in report and "Findings (tested)" in report
    assert (tmp_path / "table2.png").stat().st_size > 0
    # A second run with the same settings reuses the cell instead of training again.
    again = mdps.run(tmp_path, progress=False, num_test_tasks=16, cells=[10], configs={10: config})
    assert again["table"][0]["seconds"] == entry["seconds"]
