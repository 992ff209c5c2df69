"""The MetaGenRL reproduction's protocol at toy size: meta-train, meta-test every objective on the
unseen environment, cache the runs, test the findings."""

import dataclasses
import json

import numpy as np
import pytest

from learn2rl.experiments import kirsch2020 as k
from learn2rl.experiments import pipeline
from learn2rl.experiments.spec import Learned
from tests.conftest import TINY_METAGENRL

TINY_META = k.CONFIG.replace(**TINY_METAGENRL)  # the suite's shared tiny population
TINY_RL2 = k.RL2.replace(
    hidden_size=8, num_tasks=2, ppo_minibatches=1, num_updates=2, updates_per_chunk=1
)
TINY_EPG = k.EPG_CONFIG.replace(
    population_size=2, tasks_per_member=1, steps_per_epoch=20, epochs=2, buffer_size=40,
    minibatch_size=10, policy_hidden_sizes=(8,), num_updates=2, updates_per_chunk=1,
    validation_tasks=2,
)  # fmt: skip
TINY_TEST = k.TEST.replace(
    num_updates=3, steps_per_update=20, updates_per_chunk=1, hidden_sizes=(8,), batch_size=2,
    sequence_length=3, random_steps=10, buffer_size=200, eval_episodes=1,
)  # fmt: skip


@pytest.mark.long
def test_the_protocol_runs_caches_and_reports_every_agent(tmp_path, monkeypatch):
    monkeypatch.setattr(k, "QUICK_TEST", TINY_TEST)
    monkeypatch.setattr(k, "QUICK_CONFIG", TINY_META)
    monkeypatch.setattr(k, "TEST_SEEDS", 1)
    monkeypatch.setattr(k, "RL2", TINY_RL2)  # PPO's config derives from it
    # two of the hand-designed rows (each is one more TD3 compile): the loop is the same for all
    monkeypatch.setattr(k, "BASELINES", {n: k.BASELINES[n] for n in ("random objective", "td3")})
    spec = dataclasses.replace(
        k.SPEC,
        learned=(
            Learned("metagenrl", "metagenrl", TINY_META, TINY_META),
            Learned("rl2", "rl2", TINY_RL2, TINY_RL2),
            Learned("epg", "epg", TINY_EPG, TINY_EPG),
        ),
        quick_test_tasks=2,
    )
    out = tmp_path / "k"
    pipeline.run(spec, out, quick=True, progress=False)
    results = json.loads((out / "results.json").read_text())
    agents = {row["agent"] for row in results["results"]}
    assert agents == {"metagenrl", "random objective", "td3", "ppo", "rl2", "epg"}
    assert len(results["findings"]) == 5
    # EPG: one deterministic return per meta-training seed x meta-test seed, on Pendulum.
    epg = next(row for row in results["results"] if row["agent"] == "epg")
    assert epg["num_tasks"] == 1 and np.isfinite(epg["mean_total_reward"])
    assert results["analyses"]["epg_returns"] == [epg["mean_total_reward"]]
    curves = results["analyses"]["curves"]
    assert all(len(c) == 1 and len(c[0]) == TINY_TEST.num_updates for c in curves.values())
    assert len(results["analyses"]["value_gain"]["per_seed"]) == 1
    assert (out / "kirsch2020-meta-test.png").is_file()
    report = (out / "report.md").read_text()
    assert "mean regret" not in report and "Table 1" in report
    # A rerun reuses every cached meta-training and meta-test run: the same numbers, no retraining.
    meta_test = out / "meta-test" / "td3" / "seed-0" / "metrics.jsonl"
    before = meta_test.read_text()
    pipeline.run(spec, out, quick=True, progress=False)
    assert meta_test.read_text() == before
    again = json.loads((out / "results.json").read_text())
    assert again["analyses"]["curves"] == curves


class _Result:
    def __init__(self, values):
        self.total_rewards = np.asarray(values, float)


class _Outcome:
    def __init__(self, **values):
        self.results = {name: [_Result(v)] for name, v in values.items()}


def test_intervals_apart_needs_the_lower_bound_above_the_upper_bound():
    apart = _Outcome(a=[10.0, 11.0, 12.0], b=[0.0, 1.0, 2.0])
    gap, text = k._apart(apart, "a", "b")
    assert gap > 0 and "a 11" in text and "b 1" in text
    overlapping = _Outcome(a=[0.0, 10.0, 20.0], b=[5.0, 6.0, 7.0])
    assert k._apart(overlapping, "a", "b")[0] < 0


def test_the_td3_ratio_is_the_share_of_td3s_gain_over_the_random_objective():
    outcome = _Outcome(
        metagenrl=[-400.0, -400.0], td3=[-200.0, -200.0], **{"random objective": [-1200.0] * 2}
    )
    score, _ = k._td3_ratio(outcome)
    assert score == pytest.approx(0.8)


def test_rl2_is_scored_by_its_last_episode():
    result = pipeline.EvalResult(
        agent="rl2",
        task="t",
        rewards=np.array([[1.0, 2.0, 3.0, 4.0]]),
        regrets=np.zeros((1, 4)),
        valid=np.array([[True, True, True, False]]),
        actions=np.zeros((1, 4), np.int32),
        num_tasks=1,
        num_seeds=1,
        episodes=np.array([[0, 0, 1, 1]]),
    )
    assert k._last_episode_returns(result, 2).tolist() == [3.0]
