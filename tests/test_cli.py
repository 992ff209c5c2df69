"""The command line: one-line errors with non-zero exits, and a real kill-and-resume."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import learn2rl
from learn2rl.cli import main
from learn2rl.errors import Learn2RLError
from learn2rl.logging import read_metrics
from learn2rl.runner import load_learner

TINY = [
    "--set",
    "num_episodes=10",
    "--set",
    "hidden_size=8",
    "--set",
    "num_tasks=8",
    "--set",
    "updates_per_chunk=2",
    "--no-progress",
]


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "learn2rl.cli", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--out", "{tmp}/a", "--task", "bandit/nope"], "unknown task id"),
        (["train", "--out", "{tmp}/a", "--learner", "maml9"], "unknown learner"),
        (["train", "--out", "{tmp}/a", "--set", "num_tasks=0"], "num_tasks"),
        (["train", "--out", "{tmp}/a", "--set", "gamma=2"], "gamma"),
        (["train", "--out", "{tmp}/a", "--set", "num_episodes=-5"], "num_episodes"),
        (["train", "--out", "{tmp}/a", "--set", "colour=blue"], "unknown config field"),
        (["train", "--out", "{tmp}/a", "--set", "num_tasks=many"], "cannot read"),
        (["reproduce", "no-such-paper", "--out", "{tmp}/a"], "unknown experiment"),
        (
            ["reproduce", "duan2016-mdps", "--out", "{tmp}/a", "--cells", "n10,n7"],
            "duan2016-mdps has no cell 'n7'; its cells: n10, n25, n50, n75, n100",
        ),
        (["reproduce", "kirsch2020", "--out", "{tmp}/a", "--cells", "n10"], "no cells to choose"),
        (["reproduce", "demo", "--out", "{tmp}/a", "--cells", "n10"], "takes no --cells"),
        (["reproduce", "duan2016-mdps", "--out", "{tmp}/a", "--cells", ","], "at least one cell"),
        (["evaluate", "--checkpoint", "{tmp}/missing", "--out", "{tmp}/a"], "no checkpoint"),
        (["demo", "--out", "{tmp}/a", "--num-test-tasks", "0"], "must be positive"),
    ],
)
def test_bad_input_gives_one_line_error_and_nonzero_exit(tmp_path, capsys, args, message):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert "Traceback" not in err


def entry_point(*args, env=None, timeout=300):
    """The installed ``learn2rl`` command, as a user runs it (not the Python function)."""
    exe = shutil.which("learn2rl") or str(Path(sys.executable).with_name("learn2rl"))
    return subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["--frobnicate"], "No such option: --frobnicate"),
        (["train"], "Missing option '--out'"),
        (["train", "--out", "x", "--updates", "many"], "'--updates'"),
        (["trian"], "No such command 'trian'"),
        (["train", "--out", "x", "--set"], "requires an argument"),
        (["train", "--out", "x", "--set", "num_tasks=many"], "cannot read 'many' as int"),
        (["train", "--out", "x", "--config", "nope.json"], "no such file"),
    ],
)
@pytest.mark.slow
def test_usage_errors_of_the_installed_command_are_one_line(args, message):
    result = entry_point(*args)
    assert result.returncode == 2, result.stderr
    err = result.stderr.strip()
    assert err.startswith("error: ") and message in err, err
    assert "\n" not in err and "Traceback" not in result.stderr


@pytest.mark.long
def test_version_and_train_help_list_the_config_fields():
    result = entry_point("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"learn2rl {learn2rl.__version__}"
    result = entry_point("train", "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    for field, doc in [
        ("num_tasks (int, default 1024)", "Trials run in parallel per update"),
        ("hidden_size (int, default 48)", "Recurrent units"),
        ("learning_rate (float, default 0.002)", "Adam step size at the start"),
    ]:
        assert field in result.stdout and doc in result.stdout
    maml = entry_point("train", "--learner", "maml", "--help", env={"COLUMNS": "200"})
    assert "inner_steps (int" in maml.stdout and "hidden_size (int" not in maml.stdout


def test_config_file_then_set_then_flags(tmp_path):
    from learn2rl.learners.base import build_config
    from learn2rl.learners.rl2 import Config

    (tmp_path / "c.toml").write_text('hidden_size = 16\nnum_tasks = 32\ncell = "lstm"\n')
    config = build_config(Config, None, tmp_path / "c.toml", ["num_tasks=64"], seed=3)
    assert (config.hidden_size, config.num_tasks, config.cell, config.seed) == (16, 64, "lstm", 3)
    # A run's own results.json / meta.json (a "config" table) re-runs its config.
    (tmp_path / "r.json").write_text(json.dumps({"config": config.to_dict(), "results": []}))
    assert build_config(Config, None, tmp_path / "r.json") == config
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(Learn2RLError, match="not valid JSON"):
        build_config(Config, None, tmp_path / "bad.json")
    (tmp_path / "unknown.json").write_text('{"colour": "blue"}')
    with pytest.raises(Learn2RLError, match="unknown rl2 config field.*colour"):
        build_config(Config, None, tmp_path / "unknown.json")


@pytest.mark.parametrize("devices", ["3", "6"])
@pytest.mark.long
def test_training_runs_on_a_device_count_that_does_not_divide_the_batch(tmp_path, devices):
    """256 tasks on 6 (or 3) CPU devices: the learner uses 4 (or 2) and says so once."""
    args = ["train", "--out", str(tmp_path / "run"), "--updates", "2", *TINY]
    args += ["--set", "num_tasks=256"]
    result = entry_point(*args, env={"LEARN2RL_CPU_DEVICES": devices})
    assert result.returncode == 0, result.stderr
    used = {"3": 2, "6": 4}[devices]
    assert f"splits evenly over {used} of the {devices} devices" in result.stderr
    assert f"training on cpu, {used} of {devices} devices" in result.stdout
    ppo = ["train", "--out", str(tmp_path / "ppo"), "--updates", "2", *TINY]
    ppo += ["--set", "algorithm=ppo", "--set", "num_tasks=12", "--set", "ppo_minibatches=4"]
    result = entry_point(*ppo, env={"LEARN2RL_CPU_DEVICES": devices})
    assert result.returncode == 0, result.stderr


@pytest.mark.long
def test_evaluate_a_checkpoint_and_reject_an_unknown_baseline(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "run"), "--updates", "2", *TINY]) == 0
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--checkpoint",
        str(tmp_path / "run"),
        "--out",
        str(out),
        "--num-tasks",
        "20",
        "--baselines",
        "random,thompson",
    ]
    assert main(args) == 0
    written = json.loads((out / "results.json").read_text())
    rows = written["results"]
    assert sorted(row["agent"] for row in rows) == ["random", "rl2", "thompson"]
    # What produced the numbers: the checkpoint's config and the code that trained and evaluated.
    assert written["config"]["hidden_size"] == 8 and written["checkpoint_update"] == 2
    assert "learn2rl_version" in written["provenance"]
    assert written["training_provenance"][0]["from_update"] == 0
    assert (out / "regret.png").stat().st_size > 0 and (out / "report.md").exists()
    args = [
        "evaluate",
        "--checkpoint",
        str(tmp_path / "run"),
        "--out",
        str(tmp_path / "ev"),
        "--num-tasks",
        "20",
        "--baselines",
        "random,psychic",
    ]
    assert main(args) == 2
    assert "unknown baseline" in capsys.readouterr().err


@pytest.mark.long
def test_train_and_evaluate_a_gradient_learner_on_a_control_family(tmp_path):
    run = tmp_path / "maml"
    args = ["train", "--learner", "maml", "--task", "control/point-goal", "--out", str(run)]
    tiny = ["hidden_sizes=8", "num_tasks=2", "episodes_per_step=2", "updates_per_chunk=1"]
    tiny += ["ppo_epochs=1", "final_learning_rate=1e-4"]
    args += ["--updates", "2", "--no-progress", *[x for s in tiny for x in ("--set", s)]]
    assert main(args) == 0
    learner, state, meta = load_learner(run / "checkpoint")
    assert meta["config"]["hidden_sizes"] == [8] and int(state.update) == 2
    out = tmp_path / "eval"
    assert main(["evaluate", "--checkpoint", str(run), "--out", str(out), "--num-tasks", "3"]) == 0
    rows = json.loads((out / "results.json").read_text())["results"]
    # Beside the learner, the baselines of point navigation (baselines.applicable).
    assert sorted(row["agent"] for row in rows) == ["maml", "oracle", "random"]
    assert all(np.isfinite(row["mean_total_reward"]) for row in rows)


def test_train_refuses_to_overwrite_and_resume_needs_a_run(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "fresh"), "--resume", *TINY]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "r"), "--updates", "2", *TINY]) == 0
    assert main(["train", "--out", str(tmp_path / "r"), "--updates", "2", *TINY]) == 2
    assert "--resume" in capsys.readouterr().err


def test_list_names_everything(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in [
        "bandit/independent-2arm",
        "bandit/dependent-hard",
        "rl2",
        "thompson",
        "bayes-optimal",
        "duan2016-bandits",
        "demo",
        "ucrl2",
        "maze/5x5",
        "duan2016-mazes",
        "dr/cartpole",
        "peng2018",
        "gymnax:<env>",
        "dr:<base>[field=uniform(a,b),...]",
    ]:
        assert name in out


@pytest.mark.long
def test_killed_run_resumes_to_the_same_parameters_and_metrics(tmp_path):
    """Kill -9 a real training process mid-run, --resume it, compare with an uninterrupted run."""
    args = ["train", "--updates", "40", *TINY]
    full = run_cli(*args, "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        [sys.executable, "-m", "learn2rl.cli", *args, "--out", str(cut)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        rows = read_metrics(cut / "metrics.jsonl")
        if rows and rows[-1]["update"] >= 6:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads((cut / "checkpoint" / "meta.json").read_text())["update"]
    assert 0 < killed_at < 40
    resumed = run_cli(*args, "--out", str(cut), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    _, state_full, _ = load_learner(tmp_path / "full" / "checkpoint")
    _, state_cut, _ = load_learner(cut / "checkpoint")
    for a, b in zip(jax.tree.leaves(state_full), jax.tree.leaves(state_cut), strict=True):
        np.testing.assert_array_equal(a, b)
    assert read_metrics(cut / "metrics.jsonl") == read_metrics(tmp_path / "full" / "metrics.jsonl")


@pytest.mark.slow
def test_a_learner_without_a_task_family_trains_and_evaluate_says_why_not(tmp_path, capsys):
    run = str(tmp_path / "h")
    tiny = ["num_updates=4", "updates_per_chunk=2", "num_functions=8", "hidden_size=8"]
    args = ["train", "--learner", "hochreiter2001", "--out", run, "--no-progress"]
    assert main([*args, *[x for s in tiny for x in ("--set", s)]]) == 0
    assert (tmp_path / "h" / "training.png").stat().st_size > 0
    assert main(["evaluate", "--checkpoint", run, "--out", str(tmp_path / "e")]) == 2
    assert "learns no task family" in capsys.readouterr().err
