"""benchmarks/rl2_mdp_ablation.py: rows over seeds, cached runs reused, settings checked."""

import json

import pytest

from tests import benchmark_script

TINY = ["--set", "hidden_size=8", "--set", "num_tasks=8", "--updates", "2", "--tasks", "4"]


def load_script():
    return benchmark_script.load("rl2_mdp_ablation")


def table_rows(capsys) -> list[str]:
    """The result rows of the printed table (header and rule left out)."""
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]


def test_each_variant_removes_one_element_of_the_cell():
    script = load_script()
    cell = script.variant_config("cell", 300, {})
    assert cell.num_updates == 300 and cell.state_heads and cell.reward_decoder_coef > 0
    for name, change in script.VARIANTS.items():
        config = script.variant_config(name, 300, {})
        differs = {k for k, v in config.to_dict().items() if cell.to_dict()[k] != v}
        assert differs == set(change), name
        assert name in script.DESCRIPTIONS


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    script = load_script()
    for argv in (["--updates", "0"], ["--set", "no_such_field=1"], ["--variants", "nope"]):
        with pytest.raises(SystemExit):
            script.main(["--out", str(tmp_path), *argv])
        assert "error:" in capsys.readouterr().err


@pytest.mark.slow
def test_rows_cover_every_seed_and_finished_runs_are_reused(tmp_path, capsys):
    script = load_script()
    argv = ["--out", str(tmp_path), "--seeds", "0", "1", "--variants", "no-decoder", *TINY]
    assert script.main(argv) == 0
    rows = table_rows(capsys)
    assert len(rows) == 1 and rows[0].startswith("| no reward decoder |") and "±" in rows[0]
    for seed in (0, 1):
        saved = json.loads((tmp_path / "no-decoder" / f"seed-{seed}" / "score.json").read_text())
        assert saved["config"]["seed"] == seed and saved["config"]["num_updates"] == 2
        assert 0 < saved["greedy"] < 1000 and saved["train_seconds"] > 0
    cache = tmp_path / "no-decoder" / "seed-0" / "score.json"
    stamp = cache.stat().st_mtime_ns
    assert script.main(argv) == 0
    assert table_rows(capsys) == rows
    assert cache.stat().st_mtime_ns == stamp
