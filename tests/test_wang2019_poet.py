"""``reproduce wang2019-poet``: the two POET rows differ only in transfers, the farthest solved
course is what ES from scratch gets, the findings' criteria, and the run end to end at toy size."""

import json

import numpy as np
import pytest

from learn2rl.analysis.seeds import mean_and_interval
from learn2rl.experiments import pipeline
from learn2rl.experiments import wang2019_poet as w
from learn2rl.learners import poet


def test_the_two_poet_rows_differ_only_in_transfers():
    poet, ablation = w.SPEC.learned
    assert (poet.name, ablation.name) == w.NAMES
    assert poet.config.transfers and not ablation.config.transfers
    assert poet.config.replace(transfers=False) == ablation.config
    assert poet.quick.replace(transfers=False) == ablation.quick


def test_the_farthest_solved_course_is_chosen_by_the_distance_of_its_knobs():
    envs = {
        "knobs": np.array([[0, 0, 0], [0.1, 0.2, 2.4], [0.0, 1.0, 3.0], [0.2, 0.2, 0.4]]),
        "seeds": np.array([0, 11, 12, 13]),
        "solved": np.array([True, True, False, True]),
        "best_score": np.array([290.0, 285.0, 40.0, 291.0]),
        "admitted_at": np.array([0, 25, 50, 75]),
        "admission_score": np.array([-4.0, 290.0, 40.0, 100.0]),
    }
    summary = w._summary(envs)
    assert summary["environments"] == 4 and summary["solved"] == 3
    assert summary["admitted_solved"] == 1  # admitted already solved: (0.1, 0.2, 2.4) only
    # The unsolved course (0, 1, 3) is farther but not solved: the choice is (0.1, 0.2, 2.4).
    assert summary["farthest_solved"]["knobs"] == [0.1, 0.2, 2.4]
    assert summary["farthest_solved"]["seed"] == 11
    assert summary["farthest_solved_distance"] == pytest.approx(np.linalg.norm([0.1, 0.2, 2.4]))
    nothing = w._summary({**envs, "solved": np.zeros(4, bool)})
    assert nothing["farthest_solved"] is None and nothing["farthest_solved_distance"] == 0.0


class _Outcome:
    def __init__(self, es_solved, far_with, far_without):
        target = {"knobs": [0, 0, 1], "seed": 1, "best_score": 290.0, "admitted_at": 25}
        self.analyses = {
            "es_direct": [
                {"target": target, "solved": s, "best_score": 300.0 if s else 15.0}
                for s in es_solved
            ],
            "runs": {
                "poet": [{"farthest_solved_distance": d, "solved": 5} for d in far_with],
                "poet-no-transfer": [
                    {"farthest_solved_distance": d, "solved": 4} for d in far_without
                ],
            },
        }


def test_the_findings_hold_only_when_es_fails_somewhere_and_transfers_get_farther():
    unsolved, fewer = w.SPEC.findings
    good = _Outcome([False, True, False], [2.5, 2.0, 2.2], [1.5, 1.1, 1.3])
    value, text = unsolved.measure(good)
    assert value == 2 and unsolved.holds(value) and "2 of 3 runs" in text
    value, text = fewer.measure(good)
    diff = np.array([2.5, 2.0, 2.2]) - np.array([1.5, 1.1, 1.3])
    assert value == pytest.approx(diff.mean() - mean_and_interval(diff)[1])
    assert fewer.holds(value) and "paired difference" in text
    # Ahead on average but not on every seed: the interval reaches below 0.
    noisy = _Outcome([False], [2.5, 1.0, 2.2], [1.5, 1.9, 1.0])
    assert not fewer.holds(fewer.measure(noisy)[0])
    bad = _Outcome([True, True, True], [1.0, 1.0, 1.0], [1.5, 1.5, 1.5])
    assert not unsolved.holds(unsolved.measure(bad)[0])
    assert not fewer.holds(fewer.measure(bad)[0])


@pytest.mark.long
def test_the_experiment_runs_end_to_end_with_es_from_scratch_cached(tmp_path, monkeypatch):
    # 40-step toy episodes cannot finish a course: call every score "solved" so that the
    # farthest solved course exists and ES from scratch runs on it.
    monkeypatch.setattr(poet, "SOLVED_SCORE", -1000.0)
    tiny = [
        "num_updates=4",
        "updates_per_chunk=2",
        "mutation_interval=2",
        "transfer_interval=2",
        "population_size=4",
        "capacity=2",
        "episode_length=40",
        "hidden_sizes=4",
        "reproduction_threshold=-1000.0",
        "mc_lower=-1000.0",
    ]
    pipeline.run(w.SPEC, tmp_path, quick=True, progress=False, seeds=1, overrides=tiny)
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["findings"]) == 2
    runs = results["analyses"]["runs"]
    assert set(runs) == set(w.NAMES)
    direct = results["analyses"]["es_direct"]
    assert len(direct) == 1 and direct[0]["target"] is not None
    # ES from scratch got at least as many episodes as the POET run used in all.
    assert direct[0]["episodes"] >= direct[0]["poet_episodes"]
    assert (tmp_path / "poet" / "seed-0" / "es-direct" / "checkpoint").is_dir()
    report = (tmp_path / "report.md").read_text()
    assert "ES from scratch on it" in report and "With and without transfers" in report
    assert (tmp_path / "wang2019-poet-courses.png").is_file()
