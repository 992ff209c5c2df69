"""Physics engines for the locomotion families: env-steps per second on this machine.

    python benchmarks/engines.py                       # MJX and C MuJoCo (and brax if installed)
    python benchmarks/engines.py --batch 1 64 256      # parallel copies to try
    python benchmarks/engines.py --json

An env step is 0.05 s of simulated time: 5 physics steps of 0.01 s for learn2rl's planar runner
(``src/learn2rl/tasks/control/assets/runner.xml``) on MJX and on C MuJoCo, and one ``env.step`` of
brax's own ``halfcheetah`` environment (also 0.05 s per step, whatever the backend's substeps).
JAX rows: ``jit(vmap)`` of a ``lax.scan`` over ``--chunk`` steps with uniform random actions in
[-1, 1] drawn inside the scan; the first call (compile and warm-up) is timed apart, and the rate
is the median of ``--repeats`` timed calls. The C MuJoCo row steps one model with ``mj_step`` in a
Python loop (random actions from numpy). Engines that are not installed are reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

RUNNER_XML = Path(__file__).resolve().parents[1] / "src/learn2rl/tasks/control/assets/runner.xml"
FRAME_SKIP = 5


def version(name: str) -> str:
    try:
        from importlib.metadata import version as dist_version

        return dist_version(name)
    except Exception:
        return "not installed"


def time_jax(run, state, repeats: int):
    """``(compile_s, [seconds per call])`` of a jitted ``run(state) -> state``."""
    import jax

    tic = time.perf_counter()
    state = jax.block_until_ready(run(state))
    compile_s = time.perf_counter() - tic
    # A second untimed call: the outputs' types can differ from the inputs' (weak types), and a
    # retrace then would land in the first timed call.
    state = jax.block_until_ready(run(state))
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        state = jax.block_until_ready(run(state))
        times.append(time.perf_counter() - tic)
    return compile_s, times


def row(engine, batch, steps, compile_s, times, note=""):
    return {
        "engine": engine,
        "parallel_envs": batch,
        "env_steps_per_s": steps / float(np.median(times)),
        "min_env_steps_per_s": steps / max(times),
        "max_env_steps_per_s": steps / min(times),
        "compile_s": compile_s,
        "repeats": len(times),
        "note": note,
    }


def chunk_for(batch: int, chunk: int) -> int:
    # Fewer steps per call for big batches, so one timed call stays around a second.
    return max(5, chunk // max(1, int(np.sqrt(batch))))


def measure_mujoco(repeats: int, steps: int = 2000):
    import mujoco

    model = mujoco.MjModel.from_xml_path(str(RUNNER_XML))
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, model.nu))
    times = []
    for _ in range(repeats + 1):
        mujoco.mj_resetData(model, data)
        tic = time.perf_counter()
        for t in range(steps):
            data.ctrl[:] = actions[t]
            for _ in range(FRAME_SKIP):
                mujoco.mj_step(model, data)
        times.append(time.perf_counter() - tic)
    return [row("mujoco C (mj_step, Python loop)", 1, steps, 0.0, times[1:], "runner.xml")]


def measure_mjx(batches, repeats: int, chunk: int):
    import contextlib
    import io

    import jax
    import mujoco

    with contextlib.redirect_stdout(io.StringIO()):  # mjx prints a line about its Warp backend
        from mujoco import mjx

    mj_model = mujoco.MjModel.from_xml_path(str(RUNNER_XML))
    model = mjx.put_model(mj_model)
    data0 = mjx.make_data(model)
    rows = []
    for batch in batches:
        n = chunk_for(batch, chunk)

        def env_step(carry, _):
            data, key = carry
            key, sub = jax.random.split(key)
            action = jax.random.uniform(sub, (mj_model.nu,), minval=-1.0, maxval=1.0)
            data = data.replace(ctrl=action)
            data = jax.lax.fori_loop(0, FRAME_SKIP, lambda _, d: mjx.step(model, d), data)
            return (data, key), None

        def rollout(carry, n=n, env_step=env_step):
            return jax.lax.scan(env_step, carry, None, length=n)[0]

        keys = jax.random.split(jax.random.PRNGKey(0), batch)
        datas = jax.vmap(lambda _: data0)(keys)
        run = jax.jit(jax.vmap(rollout))
        compile_s, times = time_jax(run, (datas, keys), repeats)
        rows.append(row("mjx (jax impl)", batch, n * batch, compile_s, times, "runner.xml"))
    return rows


def measure_brax(backends, batches, repeats: int, chunk: int):
    import jax
    from brax import envs

    rows = []
    for backend in backends:
        env = envs.create("halfcheetah", backend=backend, auto_reset=False)
        for batch in batches:
            n = chunk_for(batch, chunk)

            def env_step(carry, _, env=env):
                state, key = carry
                key, sub = jax.random.split(key)
                action = jax.random.uniform(sub, (env.action_size,), minval=-1.0, maxval=1.0)
                return (env.step(state, action), key), None

            def rollout(carry, n=n, env_step=env_step):
                return jax.lax.scan(env_step, carry, None, length=n)[0]

            keys = jax.random.split(jax.random.PRNGKey(0), batch)
            states = jax.jit(jax.vmap(env.reset))(keys)
            run = jax.jit(jax.vmap(rollout))
            compile_s, times = time_jax(run, (states, keys), repeats)
            rows.append(
                row(f"brax {backend}", batch, n * batch, compile_s, times, "brax halfcheetah")
            )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=200, help="env steps per call at batch 1")
    parser.add_argument(
        "--brax-backends", nargs="*", default=["spring", "positional", "generalized", "mjx"]
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    rows, skipped = [], []
    for name, dist, measure in [
        ("mujoco C", "mujoco", lambda: measure_mujoco(args.repeats)),
        ("mjx", "mujoco-mjx", lambda: measure_mjx(args.batch, args.repeats, args.chunk)),
        (
            "brax",
            "brax",
            lambda: measure_brax(args.brax_backends, args.batch, args.repeats, args.chunk),
        ),
    ]:
        if version(dist) == "not installed":
            skipped.append(f"{name} ({dist} not installed)")
            continue
        rows.extend(measure())
        if not args.json:
            print(f"done: {name}", file=sys.stderr, flush=True)

    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        **{p: version(p) for p in ["jax", "jaxlib", "mujoco", "mujoco-mjx", "brax"]},
    }
    if args.json:
        json.dump({"rows": rows, "skipped": skipped, "machine": machine}, sys.stdout, indent=2)
        print()
        return
    print("Env-steps/s of a half-cheetah-like model (one env step = 0.05 s simulated)")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    print(
        f"| engine | parallel envs | env-steps/s (median of {args.repeats}) | min .. max "
        "| compile + first call | model |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['engine']} | {r['parallel_envs']} | {r['env_steps_per_s']:,.0f} | "
            f"{r['min_env_steps_per_s']:,.0f} .. {r['max_env_steps_per_s']:,.0f} | "
            f"{r['compile_s']:.1f} s | {r['note']} |"
        )
    for s in skipped:
        print(f"skipped: {s}")


if __name__ == "__main__":
    main()
