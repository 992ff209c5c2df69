"""Dependent-arm bandits (Wang et al. 2016): the exact Bayes-optimal policy and the reproductions
of the independent- and dependent-arm experiments (tiny end-to-end runs)."""

from __future__ import annotations

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


@pytest.mark.slow
def test_dependent_experiment_end_to_end(tmp_path):
    from learn2rl.experiments import wang2016_dependent as experiment

    configs = {
        p: experiment.config_for(p, True).replace(
            num_updates=20, num_tasks=16, updates_per_chunk=10
        )
        for p in ("easy", "hard")
    }
    result = experiment.run(
        tmp_path,
        quick=True,
        progress=False,
        configs=configs,
        num_test_tasks=64,
        test_priors=["easy", "hard"],
    )
    payload = _check_outputs(tmp_path)
    assert (tmp_path / "transfer.png").exists() and (tmp_path / "regret.png").exists()
    assert len(payload["transfer"]) == 4
    assert {(c["train_prior"], c["test_prior"]) for c in payload["transfer"]} >= {("easy", "hard")}
    assert len(result["findings"]) == 4  # two near-optimal checks, two transfer checks
    assert payload["bayes_optimal_exact"]["easy"] == pytest.approx(
        dependent_bayes_optimal_value("easy", 100)
    )


@pytest.mark.slow
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
