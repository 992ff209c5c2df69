"""RL^2 meta-training throughput: env-steps per second, compile time apart.

    python benchmarks/throughput.py            # table
    python benchmarks/throughput.py --json     # the same rows as JSON

Two-armed Bernoulli bandits, 100 pulls per trial, GRU-48 A2C (the demo's learner), with 1, 64 and
1024
trials in parallel. Each row is the median of ``--repeats`` timed chunks after one
compile-and-warm-up
chunk. Rows are measured with the task batch sharded over all CPU cores (one XLA device per core,
learn2rl's default on a CPU) and, for comparison in the same run, on one device.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from learn2rl.devices import use_cpu_cores

use_cpu_cores()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from learn2rl.learners.rl2 import RL2, Config  # noqa: E402
from learn2rl.report import environment_info  # noqa: E402
from learn2rl.tasks import make  # noqa: E402


def measure(num_tasks: int, devices: list, updates: int, repeats: int, algorithm: str = "a2c"):
    config = Config(
        num_tasks=num_tasks,
        num_updates=10**6,
        updates_per_chunk=updates,
        algorithm=algorithm,
        ppo_minibatches=1 if num_tasks < 4 else 4,
    )
    learner = RL2(config, make(config.task), devices=devices)
    state = learner.init()
    tic = time.perf_counter()
    state, metrics = learner.train_chunk(state, updates)
    jax.block_until_ready(metrics)
    compile_seconds = time.perf_counter() - tic
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        state, metrics = learner.train_chunk(state, updates)
        jax.block_until_ready(metrics)
        times.append(time.perf_counter() - tic)
    steps = updates * num_tasks * learner.trial.max_steps
    return {
        "algorithm": algorithm,
        "parallel_tasks": num_tasks,
        "devices": len(devices),
        "env_steps_per_s": steps / float(np.median(times)),
        "min_env_steps_per_s": steps / max(times),
        "max_env_steps_per_s": steps / min(times),
        "first_chunk_s_incl_compile": compile_seconds,
        "repeats": repeats,
        "steps_per_chunk": steps,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tasks", type=int, nargs="+", default=[1, 64, 1024])
    parser.add_argument("--ppo", action="store_true", help="also measure recurrent PPO")
    args = parser.parse_args(argv)
    all_devices = jax.devices()
    rows = []
    for num_tasks in args.tasks:
        usable = max(d for d in range(1, len(all_devices) + 1) if num_tasks % d == 0)
        # Aim for chunks of ~1-3 s so timer noise is small next to the work.
        updates = max(2, min(200, 2_000_000 // (num_tasks * 100)))
        configs = [all_devices[:usable]] + ([all_devices[:1]] if usable > 1 else [])
        for algorithm in ["a2c"] + (["ppo"] if args.ppo else []):
            for devices in configs:
                rows.append(measure(num_tasks, devices, updates, args.repeats, algorithm))
    env = environment_info()
    if args.json:
        json.dump(
            {
                "benchmark": "rl2-throughput",
                "task": "bandit/independent-2arm, 100 pulls",
                "rows": rows,
                "environment": env,
            },
            sys.stdout,
            indent=2,
        )
        print()
        return
    print("RL^2 training throughput, bandit/independent-2arm (100 pulls), GRU-48")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in env.items()))
    print(
        f"| algorithm | parallel tasks | devices | env-steps/s (median of {args.repeats}) "
        "| min .. max | first chunk incl. compile |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['algorithm']} | {r['parallel_tasks']} | {r['devices']} | "
            f"{r['env_steps_per_s']:,.0f} | {r['min_env_steps_per_s']:,.0f} .. "
            f"{r['max_env_steps_per_s']:,.0f} | {r['first_chunk_s_incl_compile']:.1f} s |"
        )


if __name__ == "__main__":
    main()
