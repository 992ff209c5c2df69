"""Kill-and-resume soak: SIGKILL a real training run many times, resume it each time, compare.

    python benchmarks/soak.py                 # 20 kills, seed 0
    python benchmarks/soak.py --kills 50 --seed 3 --updates 600

The promise under test is the runner's: a run killed with ``kill -9`` at any moment and resumed
with ``--resume`` ends with bit-identical parameters and metrics to a run that was never
interrupted, and no kill ever leaves a checkpoint that fails to load. The tests check one kill;
this checks many, at seeded random moments, most of which land inside a chunk or a checkpoint
save (a tiny config saves every 2 updates, and a save is a good part of each cycle).

Each cycle starts ``learn2rl train`` (``--resume`` once a checkpoint exists), waits until that
process has committed a checkpoint of its own, sleeps a random 0 to ``--max-delay`` seconds and
kills the process group with SIGKILL; then it loads the newest checkpoint (a load that fails is
counted as a corrupt checkpoint) and looks for leftovers. After the last kill the run is resumed to
the end and compared with an uninterrupted run of the same config. Not a test (pytest does not
collect ``benchmarks/``): it takes minutes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TINY = ["num_episodes=10", "hidden_size=8", "num_tasks=8", "updates_per_chunk=2"]


def train_command(out: Path, updates: int, resume: bool) -> list[str]:
    command = [sys.executable, "-m", "learn2rl.cli", "train", "--out", str(out)]
    command += ["--updates", str(updates), "--no-progress"]
    for setting in TINY:
        command += ["--set", setting]
    return command + (["--resume"] if resume else [])


def newest_update(ckpt: Path) -> int | None:
    from learn2rl import checkpoint
    from learn2rl.errors import Learn2RLError

    try:
        return checkpoint.load_meta(ckpt)["update"] if checkpoint.exists(ckpt) else None
    except Learn2RLError:
        return None


def kill_once(out: Path, updates: int, delay: float, timeout: float) -> dict:
    """One cycle: start (or resume), wait for a checkpoint of this process, sleep, SIGKILL."""
    ckpt = out / "checkpoint"
    before = newest_update(ckpt)
    process = subprocess.Popen(
        train_command(out, updates, resume=before is not None),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so the kill reaches everything it runs
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        now = newest_update(ckpt)
        if now is not None and (before is None or now > before):
            break
        time.sleep(0.02)
    time.sleep(delay)
    finished = process.poll() is not None
    if not finished:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    stderr = process.stderr.read().decode()
    process.stderr.close()
    if finished and process.returncode != 0:
        raise SystemExit(f"training failed on its own (exit {process.returncode}):\n{stderr}")
    return {"before": before, "finished": finished}


def check_checkpoint(ckpt: Path) -> tuple[int | None, str | None]:
    """The newest checkpoint's update, and why it failed to load (None if it loaded)."""
    from learn2rl import runner
    from learn2rl.errors import Learn2RLError

    try:
        _, state, meta = runner.load_learner(ckpt)
    except Learn2RLError as err:
        return None, str(err)
    return int(state.update), None


def compare(reference: Path, soaked: Path) -> tuple[bool, float, bool]:
    """(parameters bit-identical, max abs difference, metrics.jsonl identical)."""
    import jax

    from learn2rl import runner
    from learn2rl.logging import read_metrics

    _, a, _ = runner.load_learner(reference / "checkpoint")
    _, b, _ = runner.load_learner(soaked / "checkpoint")
    leaves_a = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(a))]
    leaves_b = [np.asarray(x) for x in jax.tree.leaves(jax.device_get(b))]
    equal = all(np.array_equal(x, y) for x, y in zip(leaves_a, leaves_b, strict=True))
    diff = max(
        float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)), initial=0.0))
        for x, y in zip(leaves_a, leaves_b, strict=True)
    )
    same_log = read_metrics(reference / "metrics.jsonl") == read_metrics(soaked / "metrics.jsonl")
    return equal, diff, same_log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--updates", type=int, default=400, help="updates of the tiny run")
    parser.add_argument("--max-delay", type=float, default=1.5, help="seconds, after a save")
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here")
    args = parser.parse_args(argv)

    from learn2rl.report import machine_line

    root = args.out or Path(tempfile.mkdtemp(prefix="learn2rl-soak-"))
    reference, soaked = root / "reference", root / "soaked"
    for path in (reference, soaked):
        shutil.rmtree(path, ignore_errors=True)
    rng = np.random.default_rng(args.seed)

    tic = time.perf_counter()
    done = subprocess.run(train_command(reference, args.updates, False), capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"the uninterrupted run failed:\n{done.stderr.decode()}")
    reference_seconds = time.perf_counter() - tic

    tic = time.perf_counter()
    kills, corrupt, leftovers, killed_at = 0, [], 0, []
    for _ in range(args.kills):
        cycle = kill_once(soaked, args.updates, rng.uniform(0.0, args.max_delay), timeout=600)
        if cycle["finished"]:
            print("the run finished before all kills; use more --updates", file=sys.stderr)
            break
        kills += 1
        update, problem = check_checkpoint(soaked / "checkpoint")
        if problem is not None:
            corrupt.append(problem)
            print(f"kill {kills}: corrupt checkpoint: {problem}", file=sys.stderr)
            break  # a corrupt checkpoint cannot be resumed: the soak failed
        killed_at.append(update)
        unfinished = [
            p for p in (soaked / "checkpoint").iterdir() if ".orbax-checkpoint-tmp" in p.name
        ]
        leftovers += len(unfinished)
        note = ", killed inside a save" if unfinished else ""
        print(f"kill {kills}: newest checkpoint is update {update}{note}", file=sys.stderr)
    if not corrupt:
        done = subprocess.run(train_command(soaked, args.updates, True), capture_output=True)
        if done.returncode != 0:
            raise SystemExit(f"the final resume failed:\n{done.stderr.decode()}")
    soak_seconds = time.perf_counter() - tic

    equal, diff, same_log = compare(reference, soaked) if not corrupt else (False, np.nan, False)
    rows = [
        ("kills (SIGKILL)", f"{kills} (seed {args.seed}, 0-{args.max_delay:g} s after a save)"),
        ("checkpoint update at each kill", ", ".join(map(str, killed_at)) or "-"),
        ("unfinished saves found after kills", str(leftovers)),
        ("corrupt checkpoints found", str(len(corrupt))),
        ("final parameters equal", "yes" if equal else "no"),
        ("max abs difference", f"{diff:.3g}"),
        ("metrics.jsonl equal", "yes" if same_log else "no"),
        ("wall time, uninterrupted run", f"{reference_seconds:.1f} s"),
        ("wall time, killed + resumed run", f"{soak_seconds:.1f} s ({kills + 1} processes)"),
    ]
    print(f"## Kill-and-resume soak: rl2, {args.updates} updates, {' '.join(TINY)}\n")
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print()
    print(machine_line())
    if args.out is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if (equal and same_log and not corrupt) else 1


if __name__ == "__main__":
    sys.exit(main())
