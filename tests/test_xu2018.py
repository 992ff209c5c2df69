"""The meta-gradient reproduction at toy size: every row trains, is scored on fresh episodes and
cached; the findings read the final gamma and paired differences over seeds."""

import json

import numpy as np
import pytest

from learn2rl.experiments import pipeline
from learn2rl.experiments import xu2018 as x

TINY = dict(num_envs=4, rollout_length=8, hidden_sizes=(16,), embedding_size=4, updates_per_chunk=2)


@pytest.mark.long
def test_the_suite_runs_every_row_caches_and_reports(tmp_path, monkeypatch):
    monkeypatch.setattr(x, "BASE", x.BASE.replace(**TINY))
    monkeypatch.setattr(x, "CELLS", (("breakout", "Catch-bsuite", {}, 2, 2),))
    monkeypatch.setattr(x, "EVAL_EPISODES", 3)
    out = tmp_path / "xu"
    pipeline.run_suite(x.SPEC, out, quick=True, progress=False)
    cell = json.loads((out / "breakout" / "results.json").read_text())
    assert {row["agent"] for row in cell["results"]} == set(x.VARIANTS)
    assert all(row["num_tasks"] == 3 for row in cell["results"])  # fresh episodes per seed
    assert len(cell["findings"]) == 2 * len(x.META_ROWS)  # gamma rises; beats fixed 0.9
    etas = cell["analyses"]["final_eta"]
    assert etas["fixed gamma 0.9"][0]["gamma"] == pytest.approx(0.9)
    assert etas["fixed gamma 0.99"][0]["gamma"] == pytest.approx(0.99)
    assert etas["meta-gradient"][0]["gamma"] != pytest.approx(0.9, abs=1e-7)  # it moved
    assert len(cell["analyses"]["curves"]["meta-gradient"][0]["gamma"]) == 2
    assert (out / "breakout" / "xu2018-breakout.png").is_file()
    report = (out / "report.md").read_text()
    assert "Final return (and final gamma)" in report and "meta-gradient, no embedding" in report
    # A rerun keeps the finished cell.
    before = (out / "breakout" / "results.json").read_text()
    pipeline.run_suite(x.SPEC, out, quick=True, progress=False)
    assert (out / "breakout" / "results.json").read_text() == before


class _Result:
    def __init__(self, values):
        self.total_rewards = np.asarray(values, float)


class _Outcome(pipeline.Outcome):
    def __init__(self, etas=None, **values):
        super().__init__(
            results={n: [_Result([v]) for v in vs] for n, vs in values.items()},
            num_seeds=len(next(iter(values.values()))) if values else 1,
        )
        self.analyses = {"final_eta": etas or {}}


def test_gamma_rises_only_if_it_rose_in_every_seed():
    up = _Outcome(etas={"meta-gradient": [{"gamma": 0.93}, {"gamma": 0.95}]})
    rise, text = x._gamma_rise(up, "meta-gradient")
    assert rise == pytest.approx(0.03) and "0.930, 0.950" in text
    mixed = _Outcome(etas={"meta-gradient": [{"gamma": 0.93}, {"gamma": 0.89}]})
    assert x._gamma_rise(mixed, "meta-gradient")[0] < 0


def test_beating_the_fixed_agent_needs_the_paired_interval_above_zero():
    clear = _Outcome(a=[10.0, 11.0, 12.0], b=[5.0, 5.5, 6.5])
    low, text = x._beats(clear, "a", "b")
    assert low > 0 and "difference 5.33" in text
    noisy = _Outcome(a=[10.0, 1.0, 12.0], b=[5.0, 5.5, 6.5])
    assert x._beats(noisy, "a", "b")[0] < 0
    one_seed = _Outcome(a=[10.0], b=[5.0])
    one_seed.results = {"a": [_Result([9.0, 11.0])], "b": [_Result([4.0, 6.0])]}
    low, text = x._beats(one_seed, "a", "b")  # the interval is over episodes then
    assert "a 10.00 vs b 5.00 (1 seed)" in text and "nan" not in text


def test_every_cell_trains_the_same_rows_with_its_own_environment():
    cells = x.SPEC.cells(False)
    assert [c.id for c in cells] == ["breakout", "freeway", "catch", "chain"]
    # The paper's claims are tested on the MinAtar games only.
    assert [bool(c.findings) for c in cells] == [True, True, False, False]
    for cell, (_, env, extra, updates, quick) in zip(cells, x.CELLS, strict=True):
        assert [learned.name for learned in cell.learned] == list(x.VARIANTS)
        for learned in cell.learned:
            assert learned.config.env == env and learned.config.num_updates == updates
            assert learned.quick.num_updates == quick
            assert all(getattr(learned.config, k) == v for k, v in extra.items())
    fixed = {learned.name: learned.config for learned in cells[0].learned}
    assert not fixed["fixed gamma 0.9"].meta_gradient
    assert fixed["fixed gamma 0.9"].initial_gamma == x.INITIAL_GAMMA
    assert not fixed["meta-gradient, no embedding"].eta_embedding
