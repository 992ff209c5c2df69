"""benchmarks/finn2017_pointnav_protocol.py: the paper code's goals, bad input, a checkpoint."""

import numpy as np
import pytest

from learn2rl import runner
from learn2rl.experiments import finn2017
from learn2rl.learners import maml, rl2
from learn2rl.tasks import make
from tests import benchmark_script


def load_script():
    return benchmark_script.load("finn2017_pointnav_protocol")


def test_paper_test_goals_are_the_test_scripts_draws():
    goals = finn2017.paper_test_goals()
    assert goals.shape == (40, 2) and np.all(np.abs(goals) <= 0.5)
    # np.random.seed(1) then uniform(-0.5, 0.5): the first draws are 0.417022 - 0.5 and
    # 0.720324 - 0.5; goal 6 is the one the script's last line singles out.
    np.testing.assert_allclose(goals[0], [-0.082978, 0.220324], atol=1e-6)
    np.testing.assert_allclose(goals[6], [-0.295548, 0.378117], atol=1e-6)
    assert np.linalg.norm(goals, axis=1).mean() == pytest.approx(0.4008, abs=1e-4)


def test_goal_tasks_put_the_paper_goals_on_the_family():
    script = load_script()
    family = make(finn2017.POINT)
    paper = script.goal_tasks(family, "paper", 200)
    np.testing.assert_allclose(np.asarray(paper.goal), finn2017.paper_test_goals(), atol=1e-7)
    held_out = script.goal_tasks(family, "held-out", 7)
    np.testing.assert_array_equal(held_out.goal, family.tasks(7, "test").goal)
    train = script.goal_tasks(family, "train", 7)
    np.testing.assert_array_equal(train.goal, family.tasks(7, "train").goal)
    assert not np.array_equal(train.goal, held_out.goal)


@pytest.mark.parametrize(
    "flag,value", [("--goals", "validation"), ("--baselines", "stale"), ("--episodes", "x"),
                   ("--decays", "0"), ("--tasks", "1")]
)  # fmt: skip
def test_bad_arguments_are_usage_errors(flag, value):
    with pytest.raises(SystemExit) as stop:
        load_script().main(["--checkpoint", "nowhere", flag, value])
    assert stop.value.code == 2


@pytest.mark.long
def test_tiny_checkpoint_rows_and_a_wrong_learner(tmp_path, capsys):
    script = load_script()
    config = maml.Config(
        hidden_sizes=(8,), num_tasks=2, episodes_per_step=2, num_updates=2, updates_per_chunk=2,
        ppo_epochs=1,
    )  # fmt: skip
    runner.train("maml", config, tmp_path / "maml", progress=False)
    script.main(["--checkpoint", str(tmp_path / "maml" / "checkpoint"), "--goals",
                 "paper,held-out", "--baselines", "refit,previous", "--episodes", "2",
                 "--decays", "0.5", "--tasks", "3"])  # fmt: skip
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[:2] for row in rows[:4]] == [
        ["| paper", "refit"], ["| paper", "previous"], ["| held-out", "refit"],
        ["| held-out", "previous"],
    ]  # fmt: skip
    assert len(rows) == 5 and rows[4].startswith("| paper | | | | -40.41 |")
    before = {row.split(" | ")[4] for row in rows[:4:2]}
    assert len(before) == 2  # different goals, different returns before adaptation
    bandit = rl2.Config(task="bandit/independent-5arm", num_episodes=2, hidden_size=8,
                        num_tasks=4, num_updates=2, updates_per_chunk=2)  # fmt: skip
    runner.train("rl2", bandit, tmp_path / "rl2", progress=False)
    with pytest.raises(SystemExit, match="scores a gradient learner"):
        script.main(["--checkpoint", str(tmp_path / "rl2" / "checkpoint")])
