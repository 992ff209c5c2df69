"""``reproduce peng2018``: the two learners differ only in their training family, the sweep's
tasks set one parameter at a time, the findings' criteria, and the run end to end at toy size."""

import json

import numpy as np
import pytest

from learn2rl.experiments import peng2018 as p
from learn2rl.experiments import pipeline
from learn2rl.tasks import make
from learn2rl.tasks.randomization import DomainRandomization, GymnaxFamily


def test_the_learners_differ_only_in_the_family_they_train_on():
    dr, nominal = p.SPEC.learned
    assert (dr.name, nominal.name) == p.NAMES
    for pick in (lambda learned: learned.config, lambda learned: learned.quick):
        assert pick(dr).replace(task=p.NOMINAL) == pick(nominal)
    assert dr.config.task == p.SPEC.task == p.TASK
    randomized, default = make(p.TASK), make(p.NOMINAL)
    assert isinstance(randomized, DomainRandomization) and isinstance(default, GymnaxFamily)
    assert randomized.episode_length == default.episode_length == p.STEPS
    # The nominal physics lies inside the randomized ranges.
    tasks = randomized.tasks(2000)
    nominal = default.task(0)
    for field in p.SWEEPS:
        values = np.asarray(getattr(tasks, field))
        assert values.min() < float(getattr(nominal, field)) < values.max(), field


def test_the_sweep_sets_one_parameter_per_block_and_keeps_the_rest_at_default():
    family, tasks = p._sweep_tasks()
    points = [(f, v) for f, values in p.SWEEPS.items() for v in values]
    n = p.SWEEP_TASKS
    assert np.asarray(tasks.length).shape == ((len(points) + 1) * n,)
    default = make(p.NOMINAL).task(0)
    for block, (field, value) in enumerate(points + [(None, None)]):
        rows = slice(block * n, (block + 1) * n)
        for name in p.SWEEPS:
            want = value if name == field else float(getattr(default, name))
            np.testing.assert_allclose(np.asarray(getattr(tasks, name))[rows], want, rtol=1e-6)
    np.testing.assert_allclose(tasks.polemass_length, tasks.masspole * tasks.length, rtol=1e-6)
    np.testing.assert_allclose(tasks.total_mass, tasks.masspole + tasks.masscart, rtol=1e-6)


class _Outcome:
    def __init__(self, dr, nominal, dr_nominal, nominal_nominal):
        self._seeds = {"rl2-dr": np.asarray(dr, float), "rl2-nominal": np.asarray(nominal, float)}
        self.analyses = {
            "sweep": {
                "rl2-dr": {"nominal": dr_nominal},
                "rl2-nominal": {"nominal": nominal_nominal},
            }
        }

    def per_seed(self, name):
        return self._seeds[name]

    def difference(self, a, b):
        diff = self._seeds[a] - self._seeds[b]
        return float(diff.mean()), float(diff.std())


def test_the_findings_hold_only_when_randomization_transfers_and_costs_little():
    transfer, cost = p.SPEC.findings
    good = _Outcome([160, 150, 170], [100, 110, 90], [199, 200, 198], [200, 200, 200])
    value, text = transfer.measure(good)
    assert value == pytest.approx(60.0) and transfer.holds(value) and "rl2-dr 160.0" in text
    value, text = cost.measure(good)
    assert value == pytest.approx(199 / 200) and cost.holds(value)
    worse = _Outcome([100, 100, 100], [110, 110, 110], [150, 150, 150], [200, 200, 200])
    assert not transfer.holds(transfer.measure(worse)[0])
    assert not cost.holds(cost.measure(worse)[0])


@pytest.mark.long
def test_the_experiment_runs_end_to_end_and_writes_the_sweep(tmp_path, monkeypatch):
    monkeypatch.setattr(p, "SWEEP_TASKS", 3)
    tiny = ["num_updates=2", "updates_per_chunk=1", "num_tasks=4", "hidden_size=4"]
    pipeline.run(
        p.SPEC, tmp_path, quick=True, progress=False, seeds=1, overrides=tiny, num_test_tasks=4
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert {row["agent"] for row in results["results"]} == set(p.NAMES)
    assert len(results["findings"]) == 2
    sweep = results["analyses"]["sweep"]
    for name in p.NAMES:
        for field, values in p.SWEEPS.items():
            assert np.asarray(sweep[name][field]).shape == (1, len(values))
        assert 0 < sweep[name]["nominal"][0] <= p.STEPS
    report = (tmp_path / "report.md").read_text()
    assert "Return along one parameter" in report and "| tau |" in report
    assert (tmp_path / "sweep.png").is_file()
