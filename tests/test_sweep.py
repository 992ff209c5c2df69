"""``learn2rl sweep``: the grid, seeds side by side equal to separate runs, the merged report."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from learn2rl import runner, sweep
from learn2rl.cli import main
from learn2rl.errors import Learn2RLError
from learn2rl.learners.rl2 import Config
from tests.conftest import TINY_CONFIG


def test_the_grid_is_every_combination_named_by_the_fields_that_vary():
    settings = sweep.parse_grid(
        Config, ["learning_rate=1e-3,3e-3", "cell=gru,lstm", "num_tasks=16"]
    )
    assert [s.name for s in settings] == [
        "learning_rate=1e-3,cell=gru",
        "learning_rate=1e-3,cell=lstm",
        "learning_rate=3e-3,cell=gru",
        "learning_rate=3e-3,cell=lstm",
    ]
    assert settings[3].changes == {"learning_rate": 3e-3, "cell": "lstm", "num_tasks": 16}
    assert sweep.parse_grid(Config, []) == [sweep.Setting("base", {})]


def test_a_tuple_field_separates_its_values_with_a_slash():
    from learn2rl.learners.maml import Config as MAMLConfig

    settings = sweep.parse_grid(MAMLConfig, ["hidden_sizes=64,64/32"])
    assert [s.changes["hidden_sizes"] for s in settings] == [(64, 64), (32,)]


@pytest.mark.parametrize(
    "pairs, message",
    [
        (["seed=1,2"], "--seeds N"),
        (["gamma=0.9", "gamma=0.99"], "given twice"),
        (["gamma=0.9,0.9"], "lists a value twice"),
        (["no_such_field=1"], "unknown config field"),
        (["num_tasks=1,x"], "cannot read 'x'"),
        (["gamma"], "FIELD=VALUE"),
        (["gamma=,"], "has no values"),
    ],
)
def test_bad_grids_are_one_line_errors(pairs, message):
    with pytest.raises(Learn2RLError, match=message):
        sweep.parse_grid(Config, pairs)


@pytest.mark.slow
def test_seeds_side_by_side_train_as_their_separate_runs_do():
    learner = runner.build("rl2", TINY_CONFIG)
    members = sweep.Members(learner, [0, 1])
    state = members.init()
    single = learner.init(1)
    for _ in range(3):
        state, metrics = members.train_chunk(state, 2)
        single, alone = learner.train_chunk(single, 2)
    assert int(state.update) == 6
    np.testing.assert_allclose(metrics["trial_return/seed1"], alone["trial_return"], atol=1e-5)
    together = jax.tree.leaves(members.member(state, 1).params)
    for a, b in zip(together, jax.tree.leaves(jax.device_get(single.params)), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    # The seeds differ from each other: seed 0 is not seed 1.
    assert not np.allclose(jax.tree.leaves(members.member(state, 0).params)[0], together[0])


TINY_SWEEP = [
    "sweep", "--task", "bandit/independent-2arm", "--updates", "4", "--seeds", "2",
    "--set", "num_episodes=10", "--set", "hidden_size=8", "--set", "num_tasks=8",
    "--set", "updates_per_chunk=2", "--set", "learning_rate=1e-2,3e-3",
    "--num-test-tasks", "16", "--no-progress",
]  # fmt: skip


@pytest.mark.long
def test_the_sweep_writes_one_table_with_every_run_and_resumes(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main([*TINY_SWEEP, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "side-by-side" and results["seeds"] == [0, 1]
    assert [s["setting"] for s in results["settings"]] == [
        "learning_rate=1e-2",
        "learning_rate=3e-3",
    ]
    for setting in results["settings"]:
        assert [r["seed"] for r in setting["runs"]] == [0, 1]
        returns = [r["test_return"] for r in setting["runs"]]
        assert setting["summary"]["test_return"]["mean"] == pytest.approx(np.mean(returns))
        assert setting["summary"]["test_return"]["ci95"] > 0
    report = (out / "report.md").read_text()
    assert "| learning_rate=1e-2 | 2 |" in report and "Machine:" in report
    # Finished settings are not trained again: --resume only rewrites the report.
    before = (out / "setting-0" / "metrics.jsonl").stat().st_mtime_ns
    assert main([*TINY_SWEEP, "--out", str(out), "--resume"]) == 0
    assert (out / "setting-0" / "metrics.jsonl").stat().st_mtime_ns == before
    again = json.loads((out / "results.json").read_text())
    assert again["settings"][1]["runs"] == results["settings"][1]["runs"]
    # Without --resume a used directory is refused.
    capsys.readouterr()
    assert main([*TINY_SWEEP, "--out", str(out)]) == 2
    assert "pass --resume" in capsys.readouterr().err


@pytest.mark.long
def test_queued_seeds_give_the_numbers_of_side_by_side_seeds(tmp_path):
    args = [a if a != "learning_rate=1e-2,3e-3" else "learning_rate=1e-2" for a in TINY_SWEEP]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--queue", "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert b["mode"] == "queued" and (tmp_path / "b" / "setting-0" / "seed-1").is_dir()
    for x, y in zip(a["settings"][0]["runs"], b["settings"][0]["runs"], strict=True):
        assert x["final_metric"] == pytest.approx(y["final_metric"], abs=1e-4)
        assert x["test_return"] == pytest.approx(y["test_return"], abs=1e-4)


def test_sweep_input_errors_are_one_line(tmp_path, capsys):
    for args, message in [
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--demo", "--learner", "maml"], "--demo starts from the demo's RL^2 config"),
        (["--set", "seed=1,2"], "--seeds N"),
        (["--task", "no/such-task"], "unknown"),
    ]:
        assert main(["sweep", "--out", str(tmp_path / "x"), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and "\n" not in err, err
