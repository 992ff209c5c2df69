"""Env-steps per second of the off-policy learners' environments, and of the MetaGenRL paper's own.

    python benchmarks/offpolicy_envs.py                      # every cheap ContinuousEnv + gymnasium
    python benchmarks/offpolicy_envs.py --envs all           # also the MJX locomotion families
    python benchmarks/offpolicy_envs.py --envs Pendulum-v1 control/cheetah-vel --batch 1 256
    python benchmarks/offpolicy_envs.py --json

JAX rows: each ``tasks.adapters.ContinuousEnv`` (``make_env(name)``) stepped by a jitted
``lax.scan`` of ``--steps`` steps with uniform random actions in ``[-1, 1]`` drawn inside the scan,
resetting an episode when it terminates or is truncated (the reset is computed at every step and
selected, as a jitted learner does); one env, and ``jit(vmap)`` over 64 envs (``--batch``). The
first call (compile and warm-up) is timed apart, one more call is untimed, and the rate is the
median of ``--repeats`` timed calls. The MJX locomotion families (``control/cheetah-*``,
``control/ant-*``) take minutes each on a small CPU (over 8 minutes for ``cheetah-vel`` and
``ant-dir`` together on 2 cores), so they run only when named or with ``--envs all``;
``benchmarks/engines.py`` compares their engine with C MuJoCo.

Host rows (when ``gymnasium`` with its MuJoCo and Box2D extras is installed: ``pip install -e
".[paper-envs]"``): the environments MetaGenRL (Kirsch et al. 2020) meta-trains and tests on,
gymnasium's ``HalfCheetah-v5`` and ``Hopper-v5`` (C MuJoCo) and ``LunarLanderContinuous-v3``
(Box2D), stepped one at a time from Python with random actions (``action_space.sample()``),
resetting at episode ends; the median of ``--repeats`` runs of ``--steps`` steps.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engines import row as engines_row  # noqa: E402
from engines import time_jax, version  # noqa: E402  (the benchmarks' shared timing and versions)

GYMNASIUM_ENVS = ("HalfCheetah-v5", "Hopper-v5", "LunarLanderContinuous-v3")
MJX_PREFIXES = ("control/cheetah-", "control/ant-")
PACKAGES = ("jax", "jaxlib", "gymnax", "mujoco", "mujoco-mjx", "gymnasium", "box2d")


def row(env, engine, batch, steps, times, compile_s, obs_size, action_size):
    """engines.py's row (rates from the timed runs) with the environment and its sizes."""
    rates = engines_row(engine, batch, steps, compile_s, times)
    rates.pop("note")
    return {"env": env, **rates, "observation_size": obs_size, "action_size": action_size}


def measure_jax(name: str, batches, steps: int, repeats: int):
    """Rows of one ``ContinuousEnv``: random actions, resets at episode ends, jitted scan."""
    import jax
    import jax.numpy as jnp

    from learn2rl.tasks.adapters import GymnaxEnv, make_env

    env = make_env(name)
    engine = "gymnax" if isinstance(env, GymnaxEnv) else "learn2rl"
    if name.startswith(MJX_PREFIXES):
        engine = "learn2rl (MJX)"

    def env_step(carry, _):
        obs, state, key = carry
        key, k_action, k_step, k_reset = jax.random.split(key, 4)
        action = jax.random.uniform(k_action, (env.action_size,), minval=-1.0, maxval=1.0)
        obs, state, _, terminated, truncated = env.step(k_step, state, action)
        reset_obs, reset_state = env.reset(k_reset)
        done = jnp.logical_or(terminated, truncated)
        state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, state)
        obs = jnp.where(done, reset_obs, obs)
        return (obs, state, key), None

    def rollout(carry):
        return jax.lax.scan(env_step, carry, None, length=steps)[0]

    rows = []
    for batch in batches:
        keys = jax.random.split(jax.random.PRNGKey(0), batch)
        obs, states = jax.jit(jax.vmap(env.reset))(keys)
        run = jax.jit(jax.vmap(rollout))
        compile_s, times = time_jax(run, (obs, states, keys), repeats)
        rows.append(
            row(
                name,
                engine,
                batch,
                steps * batch,
                times,
                compile_s,
                env.observation_size,
                env.action_size,
            )
        )
    return rows


def measure_gymnasium(env_id: str, steps: int, repeats: int):
    """One row: a gymnasium environment stepped from Python with random actions."""
    import gymnasium

    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")  # deprecation notes of the MuJoCo model compiler
        env = gymnasium.make(env_id)
    env.action_space.seed(0)
    env.reset(seed=0)
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                env.reset()
        times.append(time.perf_counter() - tic)
    engine = "gymnasium, C MuJoCo" if "Lunar" not in env_id else "gymnasium, Box2D"
    obs_size = int(np.prod(env.observation_space.shape))
    action_size = int(np.prod(env.action_space.shape))
    env.close()
    return row(env_id, engine + " (Python loop)", 1, steps, times, 0.0, obs_size, action_size)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--envs",
        nargs="+",
        default=None,
        help="ContinuousEnv names (default: all but the MJX families; 'all': every one)",
    )
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--steps", type=int, default=2000, help="env steps per run and env")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-gymnasium", action="store_true", help="skip the host rows")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from learn2rl.report import environment_info
    from learn2rl.tasks.adapters import list_envs

    if args.envs is None:
        names = [n for n in list_envs() if not n.startswith(MJX_PREFIXES)]
    elif args.envs == ["all"]:
        names = list_envs()
    else:
        names = args.envs

    rows, skipped = [], []
    for name in names:
        rows.extend(measure_jax(name, args.batch, args.steps, args.repeats))
        if not args.json:
            print(f"done: {name}", file=sys.stderr, flush=True)
    if not args.no_gymnasium:
        missing = [p for p in ("gymnasium", "mujoco", "box2d") if version(p) == "not installed"]
        if missing:
            skipped.append(f"gymnasium rows ({', '.join(missing)} not installed)")
        else:
            for env_id in GYMNASIUM_ENVS:
                try:
                    rows.append(measure_gymnasium(env_id, args.steps, args.repeats))
                except Exception as error:  # e.g. pygame missing for the Box2D envs
                    skipped.append(f"{env_id} ({type(error).__name__}: {error})")
                if not args.json:
                    print(f"done: {env_id}", file=sys.stderr, flush=True)

    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "devices": environment_info()["devices"],
        **{p: version(p) for p in PACKAGES},
    }
    if args.json:
        json.dump({"rows": rows, "skipped": skipped, "machine": machine}, sys.stdout, indent=2)
        print()
        return
    print(
        f"Env-steps/s of the off-policy environments: random actions, {args.steps} steps per run "
        "with resets"
    )
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    print(
        f"| environment | engine | obs | actions | parallel envs | env-steps/s (median of "
        f"{args.repeats}) | min .. max | compile + first call |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        compile_text = f"{r['compile_s']:.1f} s" if r["compile_s"] else "-"
        print(
            f"| {r['env']} | {r['engine']} | {r['observation_size']} | {r['action_size']} | "
            f"{r['parallel_envs']} | {r['env_steps_per_s']:,.0f} | "
            f"{r['min_env_steps_per_s']:,.0f} .. {r['max_env_steps_per_s']:,.0f} | "
            f"{compile_text} |"
        )
    for s in skipped:
        print(f"skipped: {s}")


if __name__ == "__main__":
    main()
