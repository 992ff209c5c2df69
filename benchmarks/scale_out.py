"""Scaling out: processes (``jax.distributed``) and sweeps (seeds side by side), as tables.

    python benchmarks/scale_out.py processes          # 1 vs N processes, env-steps/s
    python benchmarks/scale_out.py sweep              # learn2rl sweep vs the same runs in a row
    python benchmarks/scale_out.py processes --json   # the rows as JSON

``processes``: the demo's RL^2 (GRU-48 A2C, 2-armed bandits of 100 pulls, ``--tasks`` tasks,
default 256 as in the demo) trained by
1 process with one CPU device, by N processes with one device each (a run of ``--processes N``
on 127.0.0.1, the task batch sharded over the processes, gradients averaged over gloo) and, for
comparison in the same run, by 1 process with N devices. Each process is pinned to its own
core. Env-steps/s is the median over ``--repeats`` timed chunks of ``--updates`` updates after a
compile-and-warm-up chunk; the scaling efficiency is rate(N processes) / (N x rate(1 process)).

``sweep``: ``learn2rl sweep --demo --updates U --seeds S --set learning_rate=1e-3,3e-3
--num-test-tasks 0`` (2 x S runs, the seeds of a setting side by side in one program) against the
same 2 x S runs as ``learn2rl train`` commands one after another, wall-clock time of the whole
commands (start-up and compilation included), ``--repeats`` times each, alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One process of a measurement: benchmarks/learners.py's measure() on the demo's RL^2 config.
CHILD = r"""
import dataclasses, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("benchmark_learners", sys.argv[4])
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
from learn2rl import distributed
from learn2rl.experiments.demo import DEMO_CONFIG

updates, repeats, tasks = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
config = DEMO_CONFIG.replace(
    updates_per_chunk=updates, num_tasks=tasks, num_updates=(repeats + 1) * updates
)
settings = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
row = bench.measure("rl2", settings, repeats)
if distributed.is_primary():
    print(json.dumps(row))
"""
LEARNERS_SCRIPT = Path(__file__).resolve().parent / "learners.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cores() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def _pinned(command: list[str], cores: list[int]) -> list[str]:
    if cores and shutil.which("taskset"):
        return ["taskset", "-c", ",".join(map(str, cores)), *command]
    return command


def measure_processes(
    processes: int, devices_per_process: int, updates: int, repeats: int, tasks: int = 256
):
    """One configuration: ``processes`` processes with ``devices_per_process`` devices each."""
    port, cores = _free_port(), _cores()
    procs = []
    for pid in range(processes):
        env = {**os.environ, "LEARN2RL_CPU_DEVICES": str(devices_per_process)}
        if processes > 1:
            env.update(
                LEARN2RL_COORDINATOR=f"127.0.0.1:{port}",
                LEARN2RL_NUM_PROCESSES=str(processes),
                LEARN2RL_PROCESS_ID=str(pid),
            )
        mine = cores[pid * devices_per_process : (pid + 1) * devices_per_process] if cores else []
        command = [sys.executable, "-c", CHILD, str(updates), str(repeats), str(tasks)]
        command.append(str(LEARNERS_SCRIPT))
        procs.append(
            subprocess.Popen(
                _pinned(command, mine),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )
    outputs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"a process failed: {[p.returncode for p in procs]}")
    found = json.loads(outputs[0].strip().splitlines()[-1])
    return {
        "processes": processes,
        "devices_per_process": devices_per_process,
        "env_steps_per_s": found["env_steps_per_s"],
        "chunk_s_median": found["chunk_s"],
        "compile_s": found["compile_s"],
        "repeats": repeats,
    }


def run_processes(args) -> list[dict]:
    n = args.processes
    if len(_cores()) < n:
        print(f"note: {len(_cores())} cores for {n} processes; they will share cores")
    rows = [
        measure_processes(1, 1, args.updates, args.repeats, args.tasks),
        measure_processes(n, 1, args.updates, args.repeats, args.tasks),
        measure_processes(1, n, args.updates, args.repeats, args.tasks),
    ]
    base = rows[0]["env_steps_per_s"]
    for row in rows:
        workers = row["processes"] * row["devices_per_process"]
        row["scaling_efficiency"] = row["env_steps_per_s"] / (workers * base)
    return rows


def _timed(command: list[str]) -> float:
    tic = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - tic


def run_sweep(args) -> list[dict]:
    from learn2rl.experiments.demo import DEMO_CONFIG

    learn2rl = [sys.executable, "-m", "learn2rl"]
    rates = ["1e-3", "3e-3"]
    sweep_s, row_s = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            sweep_s.append(
                _timed(
                    [*learn2rl, "sweep", "--demo", "--updates", str(args.updates), "--seeds",
                     str(args.seeds), "--set", "learning_rate=" + ",".join(rates),
                     "--num-test-tasks", "0", "--no-progress", "--out", f"{tmp}/sweep"]
                )
            )  # fmt: skip
            config = Path(tmp) / "demo.json"
            config.write_text(json.dumps(DEMO_CONFIG.to_dict()))
            tic = time.perf_counter()
            for rate in rates:
                for seed in range(args.seeds):
                    _timed(
                        [*learn2rl, "train", "--config", str(config), "--updates",
                         str(args.updates), "--seed", str(seed), "--set",
                         f"learning_rate={rate}", "--no-progress", "--out",
                         f"{tmp}/lr{rate}-seed{seed}"]
                    )  # fmt: skip
            row_s.append(time.perf_counter() - tic)
    runs = len(rates) * args.seeds
    return [
        {"way": f"learn2rl sweep ({runs} runs, seeds side by side)",
         "wall_s_median": statistics.median(sweep_s), "wall_s": sweep_s},
        {"way": f"{runs} x learn2rl train, one after another",
         "wall_s_median": statistics.median(row_s), "wall_s": row_s},
    ]  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["processes", "sweep"])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--updates", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=256, help="processes: RL^2 tasks per update")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from learn2rl.report import machine_line

    if args.what == "processes":
        args.updates = args.updates or 20
        args.repeats = args.repeats or 5
        rows = run_processes(args)
    else:
        args.updates = args.updates or 300
        args.repeats = args.repeats or 1
        rows = run_sweep(args)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if args.what == "processes":
        print(
            f"RL^2 demo config with {args.tasks} tasks, chunks of {args.updates} updates, "
            f"median of {args.repeats}"
        )
        print(f"{'processes':>9} {'devices each':>12} {'env-steps/s':>12} {'efficiency':>10}")
        for r in rows:
            print(
                f"{r['processes']:>9} {r['devices_per_process']:>12} "
                f"{r['env_steps_per_s']:>12,.0f} {r['scaling_efficiency']:>10.2f}"
            )
    else:
        print(f"RL^2 demo config, {args.updates} updates per run, median of {args.repeats}")
        for r in rows:
            print(f"{r['way']:<50} {r['wall_s_median']:>8.1f} s")
        print(
            f"ratio (in a row / sweep): {rows[1]['wall_s_median'] / rows[0]['wall_s_median']:.2f}"
        )
    print(machine_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
