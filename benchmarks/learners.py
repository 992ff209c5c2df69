"""Every registered learner: compile time and env-steps per second of its training chunk.

    python benchmarks/learners.py                           # table, every learner
    python benchmarks/learners.py --json                    # the same rows as JSON
    python benchmarks/learners.py --learners rl2,maml       # some learners only
    python benchmarks/learners.py --set rl2.num_tasks=1024  # change a setting (repeatable)
    python benchmarks/learners.py --updates-per-chunk 5     # one chunk length for every learner

Each learner is built from its config's defaults with the sizes shrunk (``SMALL`` below: fewer
parallel tasks, narrower networks, smaller buffers) so that a timed chunk takes about 0.1-0.5 s on
one CPU core; ``--set LEARNER.FIELD=VALUE`` changes any field on top. Compiling dominates: the
whole table takes about seven minutes on one x86-64 core, most of it in the first chunks. A learner
is driven as the runner drives it: ``place(init())``, then ``train_chunk(state, k)``, ``k`` updates
in one compiled call on the devices the learner picks among those JAX finds (on a CPU one device
per core, learn2rl's default). The first chunk (compile and one run) is timed apart; ``--repeats``
further chunks of the same length hit the same compiled function and the table shows their median.
Compile time is the first chunk minus that median; env-steps/s is ``k`` times the learner's
``steps_per_update`` over the median (for ``hochreiter2001``, which fits functions and has no
environment, examples rather than env steps). The chunk length ``k`` is each learner's
``updates_per_chunk`` in ``SMALL`` unless ``--updates-per-chunk`` sets one for all; ``num_updates``
is set to the updates the measurement runs, so that schedules end where it does. Run as a script,
JAX's persistent compilation cache is off (JAX reads that setting at its first compile), so the
compile column is a real compile.

A learner that fails gets a row with its error and the others still run; the exit status is then 1.
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

from learn2rl import learners  # noqa: E402
from learn2rl.errors import Learn2RLError  # noqa: E402
from learn2rl.learners.base import parse_overrides  # noqa: E402
from learn2rl.provenance import run_info  # noqa: E402
from learn2rl.report import environment_info  # noqa: E402

_OFFPOLICY = dict(
    hidden_sizes=(64, 64), steps_per_update=200, updates_per_chunk=4, random_steps=100,
    batch_size=64, buffer_size=5_000, eval_episodes=1,
)  # fmt: skip
_GRADIENT = dict(hidden_sizes=(32, 32), num_tasks=8, episodes_per_step=8, updates_per_chunk=2)
_EPISODIC = dict(key_size=32, capacity=2_000)
_REPLAY = dict(hidden_sizes=(64,), replay_size=5_000, learning_starts=100, batch_size=32)

# Per learner: the fields changed from its config's defaults (num_updates is set by the benchmark).
# The networks keep their structure and the loops their kind, so compiling costs about what it does
# at the defaults; sizes are cut so that one timed chunk takes about 0.1-0.5 s on one CPU core.
SMALL = {
    "rl2": dict(num_tasks=64, updates_per_chunk=5),
    "maml": _GRADIENT,
    "reptile": dict(_GRADIENT, inner_steps=2, updates_per_chunk=8),
    "maesn": dict(_GRADIENT, num_train_tasks=10),
    "hochreiter2001": dict(hidden_size=64, num_functions=64, updates_per_chunk=10),
    "td3": _OFFPOLICY,
    "ddpg": _OFFPOLICY,
    "metagenrl": dict(
        envs=("Pendulum-v1",),
        num_agents=4,
        steps_per_update=100,
        updates_per_chunk=2,
        hidden_sizes=(64, 64),
        sequence_length=8,
        random_steps=100,
        update_after=100,
        buffer_size=5_000,
        objective_units=8,
        objective_lstm_units=8,
        eval_episodes=1,
    ),
    "metagradient": dict(hidden_sizes=(32, 32), updates_per_chunk=25),
    "mfec": dict(_EPISODIC, updates_per_chunk=10),
    "nec": dict(_EPISODIC, **_REPLAY, num_neighbours=10, n_step=20, updates_per_chunk=100),
    "dqn": dict(_REPLAY, updates_per_chunk=200),
    "epg": dict(
        population_size=8,
        tasks_per_member=2,
        epochs=4,
        policy_hidden_sizes=(16, 16),
        fitness_episodes=1,
        updates_per_chunk=10,
    ),
    "episodic_lstm": dict(num_tasks=8, hidden_size=32, updates_per_chunk=3),
    "diayn": dict(
        num_skills=4,
        hidden_sizes=(32, 32),
        discriminator_hidden_sizes=(32, 32),
        updates_per_chunk=4,
    ),
    "poet": dict(
        capacity=2,
        hidden_sizes=(16, 16),
        episode_length=100,
        updates_per_chunk=4,
        transfer_interval=1,
        mutation_interval=2,
        max_children=2,
    ),
}


def parse_sets(pairs: list[str], names: list[str]) -> dict[str, dict]:
    """``["rl2.num_tasks=8", ...]`` -> ``{"rl2": {"num_tasks": 8}}`` (typed by the config)."""
    raw: dict[str, list[str]] = {}
    for pair in pairs:
        learner, dot, assignment = pair.partition(".")
        if not dot or "=" not in assignment:
            raise SystemExit(f"--set wants LEARNER.FIELD=VALUE, got {pair!r}")
        if learner not in names:
            raise SystemExit(f"--set {pair}: unknown learner {learner!r}")
        raw.setdefault(learner, []).append(assignment)
    try:
        return {name: parse_overrides(learners.get(name)[0], raw[name]) for name in raw}
    except Learn2RLError as err:
        raise SystemExit(f"--set: {err}") from None


def settings_for(name: str, overrides: dict, chunk: int | None, repeats: int) -> dict:
    """The fields measured with, as changes to the defaults: ``SMALL``, then ``overrides``, then
    the chunk length; ``num_updates`` covers the chunks run unless ``overrides`` sets it."""
    values = {**SMALL.get(name, {}), **overrides}
    if chunk is not None:
        values["updates_per_chunk"] = chunk
    if "updates_per_chunk" not in values:
        values["updates_per_chunk"] = learners.get(name)[0]().updates_per_chunk
    values.setdefault("num_updates", (repeats + 1) * values["updates_per_chunk"])
    return values


def describe_devices(devices) -> str:
    kinds = sorted({d.platform for d in devices})
    return f"{'+'.join(kinds)} x{len(devices)}"


def measure(name: str, settings: dict, repeats: int) -> dict:
    """Build, init and time one learner (see the module docstring)."""
    config_cls, learner_cls = learners.get(name)
    k = settings["updates_per_chunk"]
    tic = time.perf_counter()
    learner = learner_cls(config_cls(**settings))
    state = jax.block_until_ready(learner.place(learner.init()))
    init_s = time.perf_counter() - tic
    tic = time.perf_counter()
    state, _ = jax.block_until_ready(learner.train_chunk(state, k))
    first = time.perf_counter() - tic
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        state, _ = jax.block_until_ready(learner.train_chunk(state, k))
        times.append(time.perf_counter() - tic)
    chunk_s = float(np.median(times))
    steps = k * learner.steps_per_update
    return {
        "devices": describe_devices(learner.devices),
        "steps_per_update": learner.steps_per_update,
        "updates_per_chunk": k,
        "init_s": init_s,
        "compile_s": max(first - chunk_s, 0.0),
        "first_chunk_s": first,
        "chunk_s": chunk_s,
        "chunk_times_s": times,
        "env_steps_per_s": steps / chunk_s,
        "min_env_steps_per_s": steps / max(times),
        "max_env_steps_per_s": steps / min(times),
        "error": None,
    }


def one_line(err: BaseException) -> str:
    """``Type: first line of the message``."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__


def run(names: list[str], sets: dict, chunk: int | None, repeats: int, quiet: bool) -> list:
    rows = []
    for name in names:
        settings = {}
        row = {"learner": name, "repeats": repeats}
        try:
            settings = settings_for(name, sets.get(name, {}), chunk, repeats)
            row.update(measure(name, settings, repeats))
        except Exception as err:  # one learner's failure is a row, not the end of the table
            row["error"] = one_line(err)
        row["settings"] = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
        rows.append(row)
        if not quiet:
            status = "failed" if row["error"] else f"first chunk {row['first_chunk_s']:.1f} s"
            print(f"done: {name} ({status})", file=sys.stderr, flush=True)
    return rows


def print_table(rows: list, repeats: int, env: dict, code: dict) -> None:
    print("Learners: compile time and training throughput, small settings")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in env.items()))
    print(f"code: learn2rl {code['learn2rl_version']}, git {code['git_revision'] or 'unknown'}")
    print(
        "| learner | devices | env-steps/update | updates/chunk | build + init s | compile s | "
        f"chunk s (median of {repeats}) | env-steps/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["error"]:
            print(f"| {r['learner']} | failed: {r['error']} | | | | | | |")
            continue
        print(
            f"| {r['learner']} | {r['devices']} | {r['steps_per_update']:,} | "
            f"{r['updates_per_chunk']} | {r['init_s']:.1f} | {r['compile_s']:.1f} | "
            f"{r['chunk_s']:.3f} | {r['env_steps_per_s']:,.0f} |"
        )
    print("settings (changes to each config's defaults):")
    for r in rows:
        print(f"  {r['learner']}: " + ", ".join(f"{k}={v}" for k, v in r["settings"].items()))


def main(argv=None) -> int:
    names = learners.list_learners()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument(
        "--learners", default=",".join(names), help="comma-separated learners (default: all)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="LEARNER.FIELD=VALUE",
        help="change a config field of one learner (repeatable)",
    )
    parser.add_argument(
        "--updates-per-chunk",
        type=int,
        default=None,
        metavar="K",
        help="updates per timed chunk for every learner (default: each learner's small setting)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed chunks after the first")
    args = parser.parse_args(argv)
    chosen = [n.strip() for n in args.learners.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        parser.error(f"unknown learner(s) {', '.join(unknown)}; known: {', '.join(names)}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if args.updates_per_chunk is not None and args.updates_per_chunk < 1:
        parser.error("--updates-per-chunk must be at least 1")
    sets = parse_sets(args.set, names)

    # Measure real compiles, whatever persistent cache the environment names (JAX reads this at
    # its first compile: a process that compiled before main keeps the cache as it was).
    cache_was = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    try:
        rows = run(chosen, sets, args.updates_per_chunk, args.repeats, args.json)
    finally:
        jax.config.update("jax_enable_compilation_cache", cache_was)

    env, code = environment_info(), run_info()
    if args.json:
        json.dump(
            {"benchmark": "learners", "rows": rows, "environment": env, "code": code},
            sys.stdout,
            indent=2,
        )
        print()
    else:
        print_table(rows, args.repeats, env, code)
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
