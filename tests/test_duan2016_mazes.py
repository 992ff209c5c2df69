"""RL^2 Table 3 (experiments/duan2016_mazes.py): the findings on hand-written summaries and a tiny
run that checks the outputs, not the numbers (those are in docs/results/duan2016.md). The
per-episode analysis itself is tested in test_analysis_episodes.py."""

import json

import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.experiments import duan2016_mazes as mazes
from learn2rl.experiments import pipeline
from learn2rl.experiments.pipeline import Outcome
from learn2rl.tasks import make


def _summary(success, lengths, drop, half):
    return {
        "success_per_episode": list(success),
        "first_steps": lengths[0],
        "later_steps": lengths[1],
        "drop": drop,
        "drop_ci95": half,
        "paired_fraction": min(success),
    }


def _passed(rl2, walk):
    outcome = Outcome({}, 1)
    outcome.analyses["episodes"] = {"rl2": rl2, "random": walk}
    return [f.holds(f.measure(outcome)[0]) for f in mazes.SPEC.findings]


def test_maze_findings_pass_and_fail_on_their_criteria():
    walk = _summary((0.35, 0.35), (80.0, 80.0), 0.0, 5.0)
    assert _passed(_summary((0.99, 0.99), (30.0, 20.0), 10.0, 2.0), walk) == [True] * 3
    assert _passed(_summary((0.5, 0.95), (30.0, 29.0), 1.0, 2.0), walk) == [False] * 3


def test_the_analysis_refuses_a_task_that_is_not_a_maze():
    family = make("bandit/independent-2arm")
    with pytest.raises(Learn2RLError, match="needs a maze"):
        mazes.episode_table(Outcome({}, 1, family, family.tasks(2), 2), None)


@pytest.mark.long
def test_maze_spec_writes_report_results_and_plots(tmp_path):
    tiny = ["num_updates=2", "num_tasks=8", "updates_per_chunk=2", "hidden_size=8"]
    outcome = pipeline.run(
        mazes.SPEC, tmp_path, quick=True, overrides=tiny, progress=False, num_test_tasks=16
    )["outcome"]
    summaries = outcome.analyses["episodes"]
    assert {"rl2", "oracle", "random"} == set(summaries)
    oracle = summaries["oracle"]
    # The oracle walks the shortest path in both episodes: no excess, no drop, no regret.
    assert oracle["success_per_episode"] == [1.0, 1.0]
    assert oracle["excess_per_episode"] == [0.0, 0.0] and oracle["drop"] == 0.0
    report = (tmp_path / "report.md").read_text()
    assert "52.4" in report and "Findings (tested)" in report
    assert (tmp_path / "lengths.png").stat().st_size > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["findings"]) == 3
    assert {r["agent"]: r["mean_regret"] for r in saved["results"]}["oracle"] == 0.0
