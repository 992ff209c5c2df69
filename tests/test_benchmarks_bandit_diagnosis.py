"""benchmarks/duan2016_bandit_diagnosis.py: exploration statistics, errors, a tiny checkpoint."""

import numpy as np
import pytest

from learn2rl import runner
from learn2rl.errors import Learn2RLError
from learn2rl.learners import rl2
from tests import benchmark_script


def load_script():
    return benchmark_script.load("duan2016_bandit_diagnosis")


def test_exploration_stats_by_hand():
    script = load_script()
    # Two trials of 4 pulls on 3 arms; the best arms are 2 and 0.
    actions = np.array([[0, 1, 2, 2], [0, 0, 0, 1]])
    means = np.array([[0.1, 0.2, 0.9], [0.8, 0.5, 0.3]])
    stats = script.exploration_stats(actions, means, tail=2)
    assert stats["distinct arms"] == pytest.approx((3 + 2) / 2)
    assert stats["best-arm share"] == pytest.approx((2 / 4 + 3 / 4) / 2)
    # Last two pulls: (0.9, 0.9) and (0.8, 0.5).
    assert stats["p of the last pulls"] == pytest.approx((0.9 + 0.9 + 0.8 + 0.5) / 4)


def test_exploration_stats_reject_bad_shapes():
    script = load_script()
    with pytest.raises(Learn2RLError, match="share T"):
        script.exploration_stats(np.zeros((2, 4), int), np.zeros((3, 5)), tail=1)
    with pytest.raises(Learn2RLError, match="tail"):
        script.exploration_stats(np.zeros((2, 4), int), np.zeros((2, 5)), tail=5)


@pytest.mark.slow
def test_tiny_checkpoint_rows_and_errors(tmp_path, capsys):
    script = load_script()
    config = rl2.Config(
        task="bandit/independent-5arm", num_episodes=6, hidden_size=8, num_tasks=8,
        num_updates=2, updates_per_chunk=2,
    )  # fmt: skip
    runner.train("rl2", config, tmp_path / "run", progress=False)
    script.main(["--checkpoint", str(tmp_path / "run" / "checkpoint"), "--tasks", "8", "--tail",
                 "3"])  # fmt: skip
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    names = [row.split(" | ")[0].lstrip("| ") for row in rows]
    assert names[:3] == ["RL^2 sampled", "RL^2 greedy", "bayes-optimal"] and len(names) == 6
    for row in rows:
        distinct = float(row.split(" | ")[2])
        assert 1.0 <= distinct <= 5.0
    with pytest.raises(SystemExit):
        script.main(["--checkpoint", str(tmp_path / "run" / "checkpoint"), "--tasks", "1"])
    gaussian = config.replace(task="bandit/gaussian-2arm", num_episodes=2)
    runner.train("rl2", gaussian, tmp_path / "gaussian", progress=False)
    with pytest.raises(SystemExit, match="not a Bernoulli bandit"):
        script.main(["--checkpoint", str(tmp_path / "gaussian" / "checkpoint"), "--tasks", "2"])
