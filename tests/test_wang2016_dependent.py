"""Dependent-arm bandits (Wang et al. 2016): the exact Bayes-optimal policy and the reproductions
of the independent- and dependent-arm experiments (tiny end-to-end runs)."""

from __future__ import annotations

import dataclasses
import json
from functools import partial

import jax
import numpy as np
import pytest

from learn2rl import baselines
from learn2rl.baselines.dependent import (
    dependent_bayes_optimal_value,
    dependent_oracle_value,
    posterior_mean,
)
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import evaluate, run_trial
from learn2rl.tasks import make
from learn2rl.tasks.bandits import DEPENDENT_PRIORS
from learn2rl.trial import Trial
from tests.reference import dependent_reference as ref

PRIORS = list(DEPENDENT_PRIORS)


@pytest.mark.parametrize("prior", PRIORS)
def test_exact_value_equals_brute_force_dp(prior):
    for num_pulls in (1, 2, 5, 9):
        assert dependent_bayes_optimal_value(prior, num_pulls) == pytest.approx(
            ref.bayes_optimal_value(prior, num_pulls), abs=1e-12
        )


def test_known_values():
    # First pull: 1/2 under every symmetric prior; easy prior: after one pull the posterior mean of
    # the arm that looked better is 0.82 (= 0.9 * 0.9 + 0.1 * 0.1).
    assert dependent_bayes_optimal_value("easy", 1) == pytest.approx(0.5)
    assert dependent_bayes_optimal_value("easy", 2) == pytest.approx(0.5 + 0.82)
    assert dependent_bayes_optimal_value("uniform", 2) == pytest.approx(0.5 + 2 / 3)
    assert posterior_mean("hard", 3, 6) == pytest.approx(0.5)
    assert posterior_mean("uniform", 1, 1) == pytest.approx(2 / 3)
    for prior in PRIORS:
        assert dependent_bayes_optimal_value(prior, 100) < dependent_oracle_value(prior, 100)


@pytest.mark.parametrize("prior", PRIORS)
@pytest.mark.slow
def test_agent_takes_only_optimal_actions(prior):
    family = make(f"bandit/dependent-{prior}")
    num_pulls = 9
    agent = baselines.get("bayes-optimal", family, num_pulls)
    run = jax.jit(jax.vmap(partial(run_trial, agent, Trial(family, num_pulls))))
    rewards, _, _, actions, _, _ = run(
        jax.random.split(jax.random.PRNGKey(0), 12), family.tasks(12)
    )
    for task_actions, task_rewards in zip(np.asarray(actions), np.asarray(rewards), strict=True):
        counts = [0, 0, 0, 0]  # s1, f1, s2, f2
        for t, (action, reward) in enumerate(zip(task_actions, task_rewards, strict=True)):
            q = ref.q_values(prior, tuple(counts), num_pulls - t)
            assert q[action] >= max(q) - 1e-12
            counts[2 * int(action) + (0 if reward > 0.5 else 1)] += 1


@pytest.mark.slow
@pytest.mark.parametrize("prior", ["uniform", "hard"])
def test_sampled_total_matches_exact_value(prior):
    family = make(f"bandit/dependent-{prior}")
    result = evaluate(
        baselines.get("bayes-optimal", family, 100),
        family,
        family.tasks(4000),
        100,
        jax.random.PRNGKey(3),
    )
    exact = dependent_bayes_optimal_value(prior, 100)
    summary = result.summary()
    assert abs(summary["mean_total_reward"] - exact) < 1.5 * summary["ci95"] + 0.05


def test_registry_offers_bayes_optimal_for_dependent_arms_only_where_exact():
    family = make("bandit/dependent-medium")
    assert "bayes-optimal" in baselines.applicable(family)
    assert "gittins" not in baselines.applicable(family)
    with pytest.raises(Learn2RLError, match="takes no method"):
        baselines.get("bayes-optimal", family, 10, method="exact-dp")
    with pytest.raises(Learn2RLError, match="unknown dependent-bandit prior 'odd'"):
        dependent_bayes_optimal_value("odd", 10)
    with pytest.raises(Learn2RLError, match="positive integer"):
        dependent_bayes_optimal_value("easy", 0)


def _check_outputs(out, fields=("agent", "task", "mean_total_reward", "ci95", "mean_regret")):
    assert (out / "report.md").read_text().count("Findings") >= 1
    payload = json.loads((out / "results.json").read_text())
    assert payload["results"] and all(k in payload["results"][0] for k in fields)
    return payload


def test_dependent_cell_findings_on_hand_made_results():
    from learn2rl.evaluation import EvalResult
    from learn2rl.experiments import wang2016_dependent as experiment
    from learn2rl.experiments.pipeline import Outcome

    def result(name, total, regret):
        rewards = np.full((8, 1), total, np.float32) + np.array([[-1.0], [1.0]] * 4, np.float32)
        return EvalResult(
            name,
            "bandit/dependent-easy",
            rewards,
            np.full_like(rewards, regret),
            np.ones(rewards.shape, bool),
            np.zeros(rewards.shape, np.int32),
            8,
            1,
        )

    def passed(own, other):
        results = {"bayes-optimal": [result("bayes-optimal", 89.4, 0.6)]}
        results["rl2-easy"] = [result("rl2-easy", own, 89.4 - own + 0.6)]
        results["rl2-hard"] = [result("rl2-hard", other, 89.4 - other + 0.6)]
        outcome = Outcome(results, 1, trained={"rl2-easy": [], "rl2-hard": []})
        cell = experiment.cell("easy", experiment.LEARNED[1::2])
        return [f.holds(f.measure(outcome)[0]) for f in cell.findings]

    assert passed(89.0, 88.0) == [True, True]  # 0.4 below Bayes-optimal, better than the other
    assert passed(88.0, 89.0) == [False, False]  # 1.4 below it, and worse than the other


@pytest.mark.long
def test_dependent_suite_trains_each_prior_once_and_tests_it_on_every_cell(tmp_path):
    from learn2rl.experiments import pipeline
    from learn2rl.experiments import wang2016_dependent as experiment

    learned = experiment.LEARNED[1::2]  # trained on easy and on hard
    suite = dataclasses.replace(
        experiment.SPEC,
        cells=lambda quick: [experiment.cell(test, learned) for test in ("easy", "hard")],
    )
    tiny = ["num_updates=4", "num_tasks=8", "updates_per_chunk=2", "hidden_size=8"]
    result = pipeline.run_suite(
        suite, tmp_path, quick=True, overrides=tiny, progress=False, num_test_tasks=32
    )
    payload = _check_outputs(tmp_path)
    # Each learner trained once, under train/, and evaluated in both cells.
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["rl2-easy", "rl2-hard"]
    assert not (tmp_path / "test-easy" / "rl2-easy").exists()
    for cell in payload["cells"].values():
        assert {row["agent"] for row in cell["results"]} == {
            "rl2-easy",
            "rl2-hard",
            "bayes-optimal",
            "thompson",
            "random",
        }
        assert len(cell["analyses"]["regret_curves"]["rl2-easy"]) == 100
    assert payload["cells"]["test-easy"]["analyses"]["bayes_optimal_exact"] == pytest.approx(
        dependent_bayes_optimal_value("easy", 100)
    )
    assert (
        len(result["findings"]) == 4
    )  # per test prior: near-optimal, at least as good as the other
    assert (tmp_path / "transfer.png").exists() and (tmp_path / "regret.png").exists()
    report = (tmp_path / "report.md").read_text()
    assert "| rl2-easy | " in report and "| hard | 57.688 |" in report


@pytest.mark.long
def test_independent_experiment_end_to_end(tmp_path):
    from learn2rl.experiments import wang2016_independent as experiment

    tiny = ["num_updates=20", "num_tasks=16", "updates_per_chunk=10"]
    result = experiment.run(
        tmp_path, quick=True, progress=False, overrides=tiny, seeds=2, num_test_tasks=64
    )
    payload = _check_outputs(tmp_path)
    assert (tmp_path / "regret.png").exists()
    rows = {row["agent"]: row for row in payload["results"]}
    assert set(rows) == {"rl2", *experiment.AGENTS}
    assert len(result["findings"]) == 4
    # Two training seeds: the RL^2 row is their mean, with both values and the best kept.
    rl2 = rows["rl2"]
    assert len(rl2["seed_values"]) == 2 and rl2["num_seeds"] == 2
    assert np.isclose(rl2["mean_total_reward"], np.mean(rl2["seed_values"]))
    assert rl2["best_seed"] == max(rl2["seed_values"]) and rl2["ci95"] > 0
    assert payload["configs"]["rl2"]["num_updates"] == 20 and payload["seeds"] == 2
    assert (tmp_path / "rl2" / "seed-1" / "checkpoint").is_dir()
