"""benchmarks/learners.py: one cheap learner measured end to end through the script's main()."""

import pytest

from tests import benchmark_script


def load_script():
    return benchmark_script.load("learners")


def test_every_registered_learner_has_small_settings():
    from learn2rl import learners

    assert sorted(load_script().SMALL) == learners.list_learners()


@pytest.mark.slow
def test_one_learner_row_has_compile_time_and_throughput(capsys):
    script = load_script()
    tiny = ["num_tasks=4", "num_episodes=4", "hidden_size=8"]
    argv = ["--learners", "rl2", "--repeats", "1", "--updates-per-chunk", "2"]
    for pair in tiny:
        argv += ["--set", f"rl2.{pair}"]
    assert script.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("machine: ") and "jax" in line for line in lines)
    assert any(line.startswith("code: learn2rl ") for line in lines)
    rows = [line for line in lines if line.startswith("| rl2 |")]
    assert len(rows) == 1
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    learner, devices, steps_per_update, chunk, init_s, compile_s, chunk_s, rate = cells
    assert int(chunk) == 2 and int(steps_per_update.replace(",", "")) == 4 * 4  # tasks x pulls
    assert float(compile_s) > 0
    assert float(chunk_s) > 0
    assert float(rate.replace(",", "")) > 0
