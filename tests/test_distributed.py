"""Multi-process runs on JAX's own runtime (``learn2rl.distributed``): options, and real runs of two
processes on 127.0.0.1 (CPU collectives over gloo) against one process with two devices."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from learn2rl import distributed
from learn2rl.cli import main
from learn2rl.errors import Learn2RLError
from learn2rl.logging import read_metrics

# The tiny RL^2 run of the multi-process checks: 4 tasks (2 per process), 4 chunks of 2 updates.
TRAIN = [
    "train", "--learner", "rl2", "--task", "bandit/independent-2arm", "--no-progress",
    "--set", "num_episodes=4", "--set", "hidden_size=8", "--set", "num_tasks=4",
    "--set", "updates_per_chunk=2", "--updates", "8",
]  # fmt: skip


def test_no_options_is_a_single_process_run():
    assert distributed.parse(None, None, None) is None
    assert distributed.parse(None, 1, None) is None
    assert distributed.parse("h:1", 2, 1) == distributed.Cluster("h:1", 2, 1)


@pytest.mark.parametrize(
    "coordinator, num, pid, message",
    [
        ("127.0.0.1:1234", 2, None, "needs --process-id"),
        (None, 2, 0, "needs --coordinator"),
        ("127.0.0.1", 2, 0, "HOST:PORT"),
        ("127.0.0.1:99999", 2, 0, "HOST:PORT"),
        ("127.0.0.1:1234", 2, 2, r"--process-id must be in 0\.\.1"),
        ("127.0.0.1:1234", 0, 0, "at least 1"),
    ],
)
def test_inconsistent_options_are_one_line_errors(coordinator, num, pid, message):
    with pytest.raises(Learn2RLError, match=message):
        distributed.parse(coordinator, num, pid)


def test_the_command_line_is_read_only_for_the_learn2rl_command(monkeypatch):
    argv = ["learn2rl", "train", "--coordinator=h:1", "--num-processes", "2", "--process-id", "x"]
    assert distributed._option_values(argv[1:]) == {
        "--coordinator": "h:1",
        "--num-processes": "2",
        "--process-id": "x",
    }
    # A bad setting joins nothing at import and is kept for the command to report.
    monkeypatch.setattr(distributed, "_early_error", None)
    distributed.initialize_early(argv, environ={})
    assert distributed._joined is None
    assert distributed._early_error == "--process-id takes a whole number, got 'x'"
    monkeypatch.setattr(distributed, "_early_error", None)
    distributed.initialize_early(["python", "--process-id", "x"], environ={})
    assert distributed._early_error is None  # another program's options are its own


def test_a_cluster_named_after_jax_started_is_a_one_line_error(tmp_path, capsys):
    code = main(
        [*TRAIN, "--out", str(tmp_path / "run")]
        + ["--coordinator", "127.0.0.1:1234", "--num-processes", "2", "--process-id", "0"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: a multi-process run must be named before JAX starts")
    assert "\n" not in err
    assert not (tmp_path / "run").exists()


# --- real runs of two processes ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args, env, log: Path):
    return subprocess.Popen(
        [sys.executable, "-m", "learn2rl", *args],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def _processes(
    tmp_path: Path, out: Path, extra=(), num: int = 2, port: int | None = None, train=TRAIN
):
    """Start ``num`` processes of one run (each with one CPU device and its own compilation
    cache); returns the Popen objects and their log files."""
    port = port or _free_port()
    cache = os.environ.get("JAX_COMPILATION_CACHE_DIR", "")
    procs, logs = [], []
    for pid in range(num):
        env = {
            **os.environ,
            "LEARN2RL_CPU_DEVICES": "1",
            "JAX_COMPILATION_CACHE_DIR": f"{cache}-p{pid}" if cache else "",
            "LEARN2RL_COORDINATOR": f"127.0.0.1:{port}",
            "LEARN2RL_NUM_PROCESSES": str(num),
            "LEARN2RL_PROCESS_ID": str(pid),
        }
        log = tmp_path / f"process{pid}-{len(list(tmp_path.glob('process*')))}.log"
        procs.append(_launch([*train, "--out", str(out), *extra], env, log))
        logs.append(log)
    return procs, logs


def _wait_all(procs, logs, timeout=240):
    try:
        for proc in procs:
            proc.wait(timeout=timeout)
    finally:
        for proc in procs:
            proc.kill()
    return [p.returncode for p in procs], [log.read_text() for log in logs]


def _in_one_process_with_two_devices(args) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "learn2rl", *args],
        env={**os.environ, "LEARN2RL_CPU_DEVICES": "2"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr


def _sha(run: Path) -> str:
    return json.loads((run / "checkpoint" / "meta.json").read_text())["state_sha256"]


@pytest.fixture(scope="module")
def one_process_two_devices(tmp_path_factory):
    """The reference: the same run in one process with two local devices."""
    out = tmp_path_factory.mktemp("reference") / "run"
    _in_one_process_with_two_devices([*TRAIN, "--out", str(out)])
    return out


@pytest.mark.long
def test_two_processes_give_the_parameters_of_one_process_with_two_devices(
    tmp_path, one_process_two_devices
):
    out = tmp_path / "run"
    codes, texts = _wait_all(*_processes(tmp_path, out))
    assert codes == [0, 0], texts
    # Bit-identical: the same mesh of two devices runs the same program; the one all-reduce
    # between them adds two numbers, in either process, in the same order.
    assert _sha(out) == _sha(one_process_two_devices)
    assert (out / "metrics.jsonl").read_text() == (
        one_process_two_devices / "metrics.jsonl"
    ).read_text()
    # Process 0 writes and reports; process 1 only trains.
    assert "trained 8 updates" in texts[0] and "trained" not in texts[1]
    assert (out / "training.png").is_file()


# MetaGenRL's population split over the processes: 4 agents on 2 environments, one agent of each
# per process; the agents' states (replay buffers included) live on their own process only.
TRAIN_METAGENRL = [
    "train", "--learner", "metagenrl", "--no-progress",
    "--set", "envs=Pendulum-v1,control/point-goal", "--set", "num_agents=4",
    "--set", "hidden_sizes=8", "--set", "batch_size=4", "--set", "sequence_length=4",
    "--set", "steps_per_update=20", "--set", "random_steps=10", "--set", "update_after=10",
    "--set", "buffer_size=200", "--set", "objective_units=4", "--set", "objective_lstm_units=4",
    "--set", "eval_episodes=1", "--set", "updates_per_chunk=2",
]  # fmt: skip


@pytest.mark.long
def test_a_population_split_over_two_processes_saves_restores_and_matches_one_process(tmp_path):
    reference = tmp_path / "reference"
    train = [*TRAIN_METAGENRL, "--updates", "4"]
    _in_one_process_with_two_devices([*train, "--out", str(reference)])
    out = tmp_path / "run"
    codes, texts = _wait_all(*_processes(tmp_path, out, train=train), timeout=300)
    assert codes == [0, 0], texts
    # The checkpoint holds the whole population, gathered from both processes; the same mesh of
    # two devices ran the same program in either layout.
    assert _sha(out) == _sha(reference)
    assert [row["update"] for row in read_metrics(out / "metrics.jsonl")] == [1, 2, 3, 4]
    # Every process restores the population and takes its own agents back.
    codes, texts = _wait_all(*_processes(tmp_path, out, ["--resume"], train=train), timeout=300)
    assert codes == [0, 0], texts
    assert _sha(out) == _sha(reference)


# A sweep of a one-agent learner: its 2 seeds split over the processes, one per process.
SWEEP_DQN = [
    "sweep", "--learner", "dqn", "--no-progress", "--seeds", "2", "--num-test-tasks", "0",
    "--set", "env=Catch-bsuite", "--set", "hidden_sizes=8", "--set", "replay_size=64",
    "--set", "learning_starts=8", "--set", "batch_size=4", "--set", "updates_per_chunk=2",
    "--updates", "4",
]  # fmt: skip


@pytest.mark.long
def test_a_sweep_splits_its_seeds_over_two_processes_as_over_two_devices(tmp_path):
    reference = tmp_path / "reference"
    _in_one_process_with_two_devices([*SWEEP_DQN, "--out", str(reference)])
    out = tmp_path / "sweep"
    codes, texts = _wait_all(*_processes(tmp_path, out, train=SWEEP_DQN), timeout=300)
    assert codes == [0, 0], texts
    assert _sha(out / "setting-0") == _sha(reference / "setting-0")
    assert (out / "report.md").is_file() and "sweep of dqn" in texts[0]
    assert "sweep of dqn" not in texts[1]


@pytest.mark.long
def test_a_killed_process_stops_the_others_and_the_run_resumes(tmp_path):
    out = tmp_path / "run"
    # 100 chunks, each with a checkpoint: long enough to be killed in the middle.
    args = ["--updates", "200", "--peer-timeout", "5"]
    procs, logs = _processes(tmp_path, out, extra=args)
    deadline = time.monotonic() + 180
    while not (out / "checkpoint" / "4").is_dir():
        assert time.monotonic() < deadline, [log.read_text() for log in logs]
        assert all(p.poll() is None for p in procs), [log.read_text() for log in logs]
        time.sleep(0.1)
    procs[1].kill()
    killed = time.monotonic()
    codes, texts = _wait_all(procs[:1], logs[:1], timeout=60)
    # Within the peer timeout (5 s) and a margin: usually at once, when the all-reduce fails.
    assert time.monotonic() - killed < 30
    assert codes == [distributed.LOST_PEER_STATUS], texts
    errors = [line for line in texts[0].splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "start every process again with --resume" in errors[0], texts
    assert "Traceback" not in texts[0]
    stopped_at = json.loads((out / "checkpoint" / "meta.json").read_text())["update"]
    assert 4 <= stopped_at < 200
    codes, texts = _wait_all(*_processes(tmp_path, out, extra=[*args, "--resume"]))
    assert codes == [0, 0], texts
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["update"] for row in rows] == list(range(1, 201))
    meta = json.loads((out / "checkpoint" / "meta.json").read_text())
    assert meta["update"] == 200


def test_a_failed_collective_reads_as_a_lost_process(monkeypatch):
    monkeypatch.setattr(distributed, "_joined", distributed.Cluster("h:1", 2, 0))

    class JaxRuntimeError(RuntimeError):
        pass

    text = (
        "UNKNOWN: Gloo all-reduce failed: [external/gloo/gloo/transport/tcp/pair.cc:538] Read "
        "error [127.0.0.1]:17296: Connection reset by peer"
    )
    assert distributed.lost_peer(JaxRuntimeError(text)) == (
        "process 0 of 2 stops: another process left the run (Connection reset by peer); start "
        "every process again with --resume to continue from the last checkpoint"
    )
    assert distributed.lost_peer(JaxRuntimeError("RESOURCE_EXHAUSTED: out of memory")) is None
    # JAX's cross-process check inside device_put fails as a ValueError.
    closed = "UNKNOWN: Gloo AllGather failed: [pair.cc:547] Connection closed by peer [h]:3461"
    assert "another process left the run (Connection closed by peer" in distributed.lost_peer(
        ValueError(closed)
    )
    assert distributed.lost_peer(ValueError("config.num_tasks must be positive")) is None


def test_only_train_and_sweep_run_over_several_processes(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(distributed, "_joined", distributed.Cluster("h:1", 2, 0))
    assert main(["demo", "--quick", "--out", str(tmp_path / "demo")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: only `learn2rl train` and `learn2rl sweep` run over several")
    assert not (tmp_path / "demo").exists()


FROZEN = """
import sys, time
import learn2rl
from learn2rl import distributed
distributed.join(distributed.Cluster(sys.argv[1], 2, int(sys.argv[2])), peer_timeout=3)
print("joined", flush=True)
time.sleep(120)
"""


@pytest.mark.long
def test_a_frozen_process_is_noticed_by_the_watchdog_within_the_peer_timeout(tmp_path):
    """A process that stops without closing its sockets (SIGSTOP: a hung host) fails no
    collective; the peers' watchdog notices its silence."""
    import signal

    address = f"127.0.0.1:{_free_port()}"
    procs, logs = [], []
    for pid in range(2):
        env = {
            **os.environ,
            "LEARN2RL_CPU_DEVICES": "1",
            "LEARN2RL_COORDINATOR": address,
            "LEARN2RL_NUM_PROCESSES": "2",
            "LEARN2RL_PROCESS_ID": str(pid),
        }
        log = tmp_path / f"frozen{pid}.log"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", FROZEN, address, str(pid)],
                env=env,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
            )
        )
        logs.append(log)
    try:
        deadline = time.monotonic() + 120
        while "joined" not in logs[1].read_text():
            assert time.monotonic() < deadline and procs[1].poll() is None, logs[1].read_text()
            time.sleep(0.2)
        time.sleep(2)  # its watchdog has reported at least once
        procs[1].send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        procs[0].wait(timeout=60)
        assert time.monotonic() - stopped < 3 + 10
        assert procs[0].returncode == distributed.LOST_PEER_STATUS
        text = logs[0].read_text()
        assert "error: process 0 of 2 stops: process 1 stopped responding for 3 s" in text
    finally:
        for proc in procs:
            proc.kill()
