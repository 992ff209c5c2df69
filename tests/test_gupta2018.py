"""``reproduce gupta2018``: the RL^2 rows differ only in the family they meta-train on, 5-step
episodes reach exactly the goal square, the findings' criteria, the train hook (skill families,
their recorded hash, a rerun on another discriminator refused), and the run end to end at toy
size with the discriminator unchanged by meta-training."""

import json

import numpy as np
import pytest

from learn2rl import checkpoint, runner
from learn2rl.errors import Learn2RLError
from learn2rl.experiments import gupta2018 as g
from learn2rl.experiments import pipeline
from learn2rl.learners.skills import SkillRewardFamily
from learn2rl.tasks import make

TINY_RL2 = ["num_updates=2", "updates_per_chunk=1", "num_tasks=4", "hidden_size=4"]


@pytest.fixture
def tiny(monkeypatch):
    """DIAYN, the scratch policy and the analyses at toy size."""
    monkeypatch.setattr(g, "DIAYN_CONFIG", g.DIAYN_CONFIG.replace(
        num_skills=3, hidden_sizes=(4,), discriminator_hidden_sizes=(4,), num_envs=4,
        ppo_minibatches=2, num_updates=2, updates_per_chunk=2,
    ))  # fmt: skip
    monkeypatch.setattr(g, "SCRATCH_CONFIG", g.SCRATCH_CONFIG.replace(hidden_sizes=(4,)))
    monkeypatch.setattr(g, "NUM_SELECTION_TASKS", 4)
    monkeypatch.setattr(g, "FINAL_STATE_EPISODES", 2)


def test_the_rows_differ_only_in_the_family_they_meta_train_on():
    names = [learned.name for learned in g.SPEC.learned]
    assert names == ["rl2-diayn", "rl2-random-disc", "rl2-goals"]
    assert set(names) | {"scratch"} == set(g.ROWS)
    assert len({learned.config for learned in g.SPEC.learned}) == 1
    assert len({learned.quick for learned in g.SPEC.learned}) == 1
    assert g.SPEC.task == g.TASK == g.CONFIG.task == g.DIAYN_CONFIG.task == g.SCRATCH_CONFIG.task
    assert g.SPEC.num_episodes == g.CONFIG.num_episodes == g.EPISODES
    assert g.SPEC.train is g.train
    family = make(g.TASK)
    # The skills live on the goals' own dynamics, and an episode reaches exactly the goal square.
    assert family.episode_length == g.EPISODE_LENGTH
    assert family.episode_length * float(family.action_high) == pytest.approx(family.goal_range)
    assert family.goal_range == g.GOAL_RANGE


class _Outcome:
    def __init__(self, seeds, unchanged=(True, True)):
        self._seeds = {name: np.asarray(v, float) for name, v in seeds.items()}
        entries = [{"unchanged": u} for u in unchanged]
        self.analyses = {
            "discriminators": {"rl2-diayn": entries[:1], "rl2-random-disc": entries[1:]}
        }

    def per_seed(self, name):
        return self._seeds[name]

    def difference(self, a, b):
        diff = self._seeds[a] - self._seeds[b]
        return float(diff.mean()), float(diff.std())


def test_the_findings_hold_only_for_the_papers_ordering_and_a_frozen_discriminator():
    scratch, random_disc, diayn, frozen = g.SPEC.findings
    ordered = _Outcome({"scratch": [-6, -6], "rl2-random-disc": [-5, -5.2], "rl2-diayn": [-4, -4.4],
                        "rl2-goals": [-3, -3.2]})  # fmt: skip
    for f in (scratch, random_disc, diayn):
        value, text = f.measure(ordered)
        assert f.holds(value) and " - " in text
    assert scratch.measure(ordered)[0] == pytest.approx(0.9)
    value, text = frozen.measure(ordered)
    assert frozen.holds(value) and text.startswith("2 of 2")
    reversed_ = _Outcome({"scratch": [-3, -3], "rl2-random-disc": [-4, -4], "rl2-diayn": [-5, -5],
                          "rl2-goals": [-6, -6]}, unchanged=(True, False))  # fmt: skip
    for f in g.SPEC.findings:
        assert not f.holds(f.measure(reversed_)[0])
    # "<=" holds at equality, "<" does not.
    equal = _Outcome({name: [-5, -5] for name in g.ROWS})
    assert [f.holds(f.measure(equal)[0]) for f in g.SPEC.findings] == [False, True, True, True]


@pytest.mark.long
def test_the_train_hook_meta_trains_on_skills_and_refuses_another_discriminator(tmp_path, tiny):
    config = g.CONFIG.replace(num_updates=2, updates_per_chunk=2, num_tasks=4, hidden_size=4)
    where = tmp_path / "rl2-random-disc" / "seed-0"
    learner, state = g.train("rl2", config, where, progress=False)
    family = learner.family
    assert isinstance(family, SkillRewardFamily) and int(state.update) == 2
    recorded = json.loads((where / g.SKILLS_FILE).read_text())["discriminator_hash"]
    assert recorded == family.discriminator_hash()
    assert not (where / g.DIAYN_DIR).exists()  # no DIAYN for the random discriminator
    # Reloaded, the same skills; on another discriminator, an error before any training.
    again, _ = g.train("rl2", config, where, progress=False)
    assert again.family == family
    with pytest.raises(Learn2RLError, match="skills of another discriminator"):
        g.train("rl2", config.replace(seed=1), where, progress=False)
    # The hand-designed row trains on the goals themselves.
    goals, _ = g.train("rl2", config, tmp_path / "rl2-goals" / "seed-0", progress=False)
    assert goals.family == make(g.TASK)


@pytest.mark.long
def test_the_experiment_runs_end_to_end_with_the_discriminator_unchanged(tmp_path, tiny):
    run = dict(quick=True, progress=False, seeds=1, overrides=TINY_RL2, num_test_tasks=4)
    pipeline.run(g.SPEC, tmp_path, **run)
    results = json.loads((tmp_path / "results.json").read_text())
    assert {row["agent"] for row in results["results"]} == set(g.ROWS)
    assert len(results["findings"]) == 4
    assert results["findings"][-1]["passed"]  # hashes equal before and after
    found = results["analyses"]["discriminators"]
    (diayn,) = found["rl2-diayn"]
    assert diayn["before"] == diayn["after"] == diayn["checkpoint"]
    assert np.asarray(diayn["final_state_means"]).shape == (3, 2)
    assert 0.0 <= diayn["in_goal_region"] <= 1.0
    assert found["rl2-random-disc"][0]["before"] != diayn["before"]
    assert np.asarray(results["analyses"]["episodes"]["rl2-goals"]).shape == (1, g.EPISODES)
    report = (tmp_path / "report.md").read_text()
    assert "Return per episode of the trial" in report and "DIAYN's skills" in report
    assert (tmp_path / "skills.png").is_file()
    # A rerun reuses DIAYN's and RL^2's runs instead of training again.
    ckpt = tmp_path / "rl2-diayn" / "seed-0" / g.DIAYN_DIR / runner.CHECKPOINT_DIR
    saved = checkpoint.updates(ckpt)
    pipeline.run(g.SPEC, tmp_path, **run)
    assert checkpoint.updates(ckpt) == saved
    assert json.loads((tmp_path / "results.json").read_text())["results"] == results["results"]
