"""Smoke tests of the named experiments with tiny settings: they run end to end, write outputs."""

import json

import numpy as np
import pytest

from learn2rl.experiments import demo


@pytest.mark.long
def test_demo_writes_table_plot_report_and_checkpoint(tmp_path, tiny_config):
    config = tiny_config.replace(num_episodes=100)
    rows = demo.run(tmp_path, num_test_tasks=64, progress=False, config=config)
    agents = {row["agent"] for row in rows}
    assert {
        "rl2",
        "bayes-optimal",
        "gittins",
        "thompson",
        "ucb1",
        "greedy",
        "eps-greedy",
        "random",
        "oracle",
    } <= agents
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    for row in results:
        assert {"agent", "task", "mean_total_reward", "ci95", "mean_regret", "num_tasks"} <= set(
            row
        )
        assert row["num_tasks"] == 64
    for name in [
        "report.md",
        "regret.png",
        "training.png",
        "metrics.jsonl",
        "checkpoint/meta.json",
    ]:
        assert (tmp_path / name).exists(), name
    report = (tmp_path / "report.md").read_text()
    assert "paired" in report and "(dynamic programming): 64.9184" in report
    # Running it again re-evaluates the finished run instead of refusing the directory.
    again = demo.run(tmp_path, num_test_tasks=64, progress=False, config=config)
    assert again == rows


def test_experiment_registry_lists_every_experiment_and_rejects_unknown_ids():
    from learn2rl.errors import Learn2RLError
    from learn2rl.experiments import get_experiment, list_experiments

    names = list_experiments()
    assert {"demo", "duan2016-bandits", "wang2016-independent", "finn2017-pointnav"} <= set(names)
    assert all(callable(get_experiment(name)) for name in names)
    with pytest.raises(Learn2RLError, match="unknown experiment 'nope'; known experiments: demo"):
        get_experiment("nope")
    # The demo's configs are valid and differ only in length.
    assert demo.QUICK_CONFIG.replace(num_updates=demo.DEMO_CONFIG.num_updates) == demo.DEMO_CONFIG


@pytest.mark.long
def test_the_worked_example_runs_on_the_pipeline_with_two_seeds(tmp_path):
    from learn2rl.experiments import example_bandits, pipeline

    tiny = ["num_updates=4", "num_tasks=8", "updates_per_chunk=2", "hidden_size=8"]
    result = pipeline.run(
        example_bandits.SPEC,
        tmp_path,
        quick=True,
        overrides=tiny,
        progress=False,
        num_test_tasks=32,
    )
    payload = json.loads((tmp_path / "results.json").read_text())
    rows = {row["agent"]: row for row in payload["results"]}
    assert set(rows) == {"rl2", "thompson", "ucb1", "random"}
    assert rows["rl2"]["num_seeds"] == example_bandits.SPEC.quick_seeds == 2
    assert len(rows["rl2"]["seed_values"]) == 2 and rows["thompson"]["num_seeds"] == 1
    assert [f["claim"][:30] for f in result["findings"]] == [
        f.claim[:30] for f in example_bandits.SPEC.findings
    ]
    report = (tmp_path / "report.md").read_text()
    assert "rl2 per training seed" in report and "best of 2 seeds" in report
    # Running it again re-evaluates the cached runs instead of training them again.
    again = pipeline.run(
        example_bandits.SPEC,
        tmp_path,
        quick=True,
        overrides=tiny,
        progress=False,
        num_test_tasks=32,
    )
    assert again["rows"] == result["rows"]
    # Seed 1 run alone (--seed 1 --seeds 1) finds the two-seed run's seed-1 and scores the same.
    alone = pipeline.run(
        example_bandits.SPEC,
        tmp_path / "alone",
        quick=True,
        seeds=1,
        seed=1,
        overrides=tiny,
        progress=False,
        num_test_tasks=32,
        train_dir=tmp_path,
    )
    assert not (tmp_path / "rl2" / "seed-2").exists()
    by_agent = {row["agent"]: row for row in alone["rows"]}
    assert by_agent["rl2"]["mean_total_reward"] == rows["rl2"]["seed_values"][1]


def test_each_training_seed_has_the_run_directory_named_by_it(tmp_path):
    """--seed 3 --seeds 2 trains seeds 3 and 4 into seed-3 and seed-4, so that seeds run apart
    share one --out (a later --seeds 5 finds them there)."""
    import dataclasses
    from types import SimpleNamespace

    from learn2rl import checkpoint, runner
    from learn2rl.experiments import pipeline

    @dataclasses.dataclass(frozen=True)
    class Config:
        seed: int

        def replace(self, **changes):
            return dataclasses.replace(self, **changes)

    calls = []

    def train(learner, config, where, progress, console):
        calls.append((learner, config.seed, where.relative_to(tmp_path).as_posix()))
        checkpoint.save(
            where / runner.CHECKPOINT_DIR, {"w": np.zeros(1)}, {"update": 1, "train_seconds": 2.0}
        )
        return learner, None

    spec = SimpleNamespace(learned=[SimpleNamespace(name="agent", learner="rl2")], train=train)
    trained, dirs, seconds = pipeline.train_seeds(spec, {"agent": Config(3)}, 2, tmp_path, False)
    assert calls == [("rl2", 3, "agent/seed-3"), ("rl2", 4, "agent/seed-4")]
    assert [d.name for d in dirs["agent"]] == ["seed-3", "seed-4"]
    assert sorted(seconds.values()) == [2.0, 2.0]


def test_seed_intervals_use_students_t():
    from learn2rl.analysis.seeds import best_of, mean_and_interval

    mean, half = mean_and_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and abs(half - 4.302653 * 1.0 / 3**0.5) < 1e-5  # t(0.975, 2) = 4.3027
    assert np.isnan(mean_and_interval([5.0])[1]) and best_of([1.0, 3.0, 2.0]) == 3.0
    with pytest.raises(ValueError, match="per-seed values"):
        mean_and_interval([])
