"""``reproduce pritzel2017``: the same steps for every learner, the area under the training curve
from the logs, the ratio finding, and the suite end to end at toy size."""

import json

import numpy as np
import pytest

from learn2rl.experiments import pipeline
from learn2rl.experiments import pritzel2017 as p


def test_every_learner_gets_the_same_environment_steps_on_each_game():
    cells = p.SPEC.cells(False)
    assert [c.id for c in cells] == [cell_id for cell_id, _ in p.GAMES]
    assert [c.id for c in p.SPEC.cells(True)] == ["breakout"]
    for cell, (_, env) in zip(cells, p.GAMES, strict=True):
        assert [learned.name for learned in cell.learned] == ["nec", "dqn", "mfec"]
        for learned in cell.learned:
            for config, steps in ((learned.config, p.STEPS), (learned.quick, p.QUICK_STEPS)):
                assert config.env == env
                per_update = config.num_envs * config.rollout_length
                assert config.num_updates * per_update == steps
                assert config.num_updates % config.updates_per_chunk == 0
        nec, mfec = cell.learned[0], cell.learned[2]
        assert nec.config.capacity == 50_000 and nec.quick.capacity == 10_000
        assert mfec.config.capacity == mfec.quick.capacity == p.MFEC_CAPACITY


def test_the_area_is_the_mean_return_over_updates_and_the_curve_has_windows(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    returns = [0.0] * 10 + [2.0] * 30  # 40 updates of 4 steps
    rows = [{"update": i + 1, "episode_return": r} for i, r in enumerate(returns)]
    metrics.write_text("".join(json.dumps(row) + "\n" for row in rows))
    curve = p.training_curve(metrics, steps_per_update=4)
    assert curve["auc"] == pytest.approx(1.5)
    assert len(curve["env_steps"]) == len(curve["episode_return"]) == p.CURVE_POINTS
    assert curve["env_steps"][-1] == 160.0 and curve["env_steps"][0] == 8.0
    assert curve["episode_return"][0] == 0.0 and curve["episode_return"][-1] == 2.0


class _Result:
    def __init__(self, values):
        self.total_rewards = np.asarray(values, float)


def _outcome(**values):
    return pipeline.Outcome(
        results={n: [_Result([v]) for v in vs] for n, vs in values.items()},
        num_seeds=len(next(iter(values.values()))),
    )


def test_the_ratio_finding_compares_seed_means():
    ratio_finding, beats_finding = p.FINDINGS
    fast = _outcome(nec=[3.0, 3.2, 2.8], dqn=[1.0, 1.2, 0.8])
    ratio, text = ratio_finding.measure(fast)
    assert ratio == pytest.approx(3.0) and ratio_finding.holds(ratio)
    assert "NEC 3.000" in text and "3 seeds" in text
    assert beats_finding.holds(beats_finding.measure(fast)[0])
    close = _outcome(nec=[1.3, 1.4, 1.2], dqn=[1.0, 1.2, 0.8])
    assert not ratio_finding.holds(ratio_finding.measure(close)[0])
    nothing = _outcome(nec=[0.0, 0.0], dqn=[0.0, 0.0])
    assert not ratio_finding.holds(ratio_finding.measure(nothing)[0])  # 0 / 0 is no speed-up


@pytest.mark.long
def test_the_suite_trains_every_learner_caches_and_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(p, "QUICK_STEPS", 400)
    monkeypatch.setattr(p, "MFEC_CAPACITY", 64)  # NEC's: a quarter of the 400 steps
    monkeypatch.setattr(p, "EVAL_EPISODES", 2)
    out = tmp_path / "nec"
    tiny = ["learning_starts=50", "replay_size=200", "hidden_sizes=16", "key_size=8"]
    pipeline.run_suite(p.SPEC, out, quick=True, progress=False, seeds=1, overrides=tiny)
    cell = json.loads((out / "breakout" / "results.json").read_text())
    assert {row["agent"] for row in cell["results"]} == {"nec", "dqn", "mfec"}
    assert len(cell["findings"]) == len(p.FINDINGS)
    curves = cell["analyses"]["curves"]
    assert all(curves[n][0]["env_steps"][-1] == 400.0 for n in ("nec", "dqn", "mfec"))
    assert all(np.isfinite(cell["analyses"]["final_return"][n][0]) for n in curves)
    assert (out / "breakout" / "pritzel2017-breakout.png").is_file()
    assert "Area under the training-return curve per step" in (out / "report.md").read_text()
    before = (out / "breakout" / "results.json").read_text()
    pipeline.run_suite(p.SPEC, out, quick=True, progress=False, seeds=1, overrides=tiny)
    assert (out / "breakout" / "results.json").read_text() == before
