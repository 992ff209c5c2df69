"""RL^2 meta-training throughput: env-steps per second, compile time apart.

    python benchmarks/throughput.py            # table
    python benchmarks/throughput.py --json     # the same rows as JSON
    python benchmarks/throughput.py --families # env-steps/s of the control task families
    python benchmarks/throughput.py --duan2016 # RL^2 on the tabular-MDP and maze families

Two-armed Bernoulli bandits, 100 pulls per trial, GRU-48 A2C (the demo's learner), with 1, 64 and
1024
trials in parallel. Each row is the median of ``--repeats`` timed chunks after one
compile-and-warm-up
chunk. Rows are measured with the task batch sharded over all CPU cores (one XLA device per core,
learn2rl's default on a CPU) and, for comparison in the same run, on one device.

``--duan2016`` measures RL^2 training (A2C, GRU-128, the settings of the RL^2 Table 2 / Table 3
reproductions) on ``mdp/tabular-10s5a`` with 10 episodes per trial (100 steps) and on ``maze/5x5``
with 2 episodes per trial (500 steps) instead of the bandit; ``--rl2-task TASK:EPISODES:HIDDEN``
picks any other family. Env-steps count every step of a trial's fixed-length scan, including the
no-op steps after a maze trial ended early at the target.

``--networks`` adds rows for other networks: ``CELL`` or ``CELL+value`` (a separate value network
of the same cell), e.g. ``--networks gru ln-gru+value wn-gru+value`` for the normalised ReLU GRU of
Duan et al. 2016 (``nets.recurrent.NormGRUCell``) beside today's tanh GRU.

``--families`` measures the environments alone instead: each control family stepped through
``learn2rl.trial.Trial`` with uniform random actions in its action box, ``jit(vmap)`` over 1, 64,
256 and 1024 tasks (``--tasks``) of a ``lax.scan`` of steps, one device; the median of
``--repeats`` timed calls after a compile-and-warm-up call (timed apart) and one more untimed call.
``--backends c mjx`` measures the locomotion families on both physics backends (the C engine
through ``mujoco.rollout`` on the host, and MJX); ``--policy`` puts a policy in the loop: the
actions come from MAML's policy network (two tanh layers of 100) applied to each observation, as
when a learner collects episodes.
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
from learn2rl.tasks.control import locomotion  # noqa: E402
from learn2rl.trial import Trial  # noqa: E402

CONTROL_FAMILIES = [
    "control/point-goal",
    "control/cheetah-vel",
    "control/cheetah-dir",
    "control/ant-dir",
    "control/cheetah-dynamics",
    "control/gym-halfcheetah-dir",
    "control/gym-ant-dir",
]
LOCOMOTION_IDS = {entry[0] for entry in locomotion.TASKS}


DUAN2016_TASKS = ["mdp/tabular-10s5a:10:128", "maze/5x5:2:128"]


def parse_rl2_task(spec: str) -> dict:
    """``TASK:EPISODES:HIDDEN`` -> the Config fields it sets."""
    try:
        task, episodes, hidden = spec.split(":")
        return {"task": task, "num_episodes": int(episodes), "hidden_size": int(hidden)}
    except ValueError:
        raise SystemExit(f"--rl2-task wants TASK:EPISODES:HIDDEN, got {spec!r}") from None


def parse_network(spec: str) -> dict:
    """``CELL`` or ``CELL+value`` -> the Config fields it sets."""
    cell, _, value = spec.partition("+")
    if value not in ("", "value"):
        raise SystemExit(f"--networks wants CELL or CELL+value, got {spec!r}")
    return {"cell": cell, "value_network": "separate" if value else "shared"}


def measure(
    num_tasks: int,
    devices: list,
    updates: int,
    repeats: int,
    algorithm: str = "a2c",
    task: dict | None = None,
    network: str = "gru",
):
    config = Config(
        **(task or {}),
        **parse_network(network),
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
    steps = updates * learner.steps_per_update  # environment steps of one update
    return {
        "task": f"{config.task}, {config.num_episodes} episodes, {config.hidden_size} units",
        "network": network,
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


def _policy_network(family):
    """MAML's policy (100-100 tanh MLP, tanh-squashed mean) with fixed random weights."""
    from learn2rl.nets.mlp import MLP

    net = MLP(hidden_sizes=(100, 100), out_size=family.action_size, activation="tanh")
    weights = net.init(jax.random.PRNGKey(0), jax.numpy.zeros(family.observation_size))
    return lambda obs: jax.numpy.tanh(net.apply(weights, obs))


def measure_family(task_id: str, num_tasks: int, steps: int, repeats: int, policy: bool = False):
    """Env-steps/s of one family's trial step, vmapped over ``num_tasks`` tasks; random actions,
    or (``policy``) actions from a policy network on the observation."""
    family = make(task_id)
    # Enough episodes that the trial never ends inside the measurement (episodes still reset).
    trial = Trial(family, num_episodes=10_000)
    params = family.tasks(num_tasks, "test")
    low, high = family.action_low, family.action_high

    def rollout(params, state, obs, key):
        def body(carry, _):
            state, obs, key = carry
            key, k_action, k_step = jax.random.split(key, 3)
            if act is None:
                action = jax.random.uniform(
                    k_action, (family.action_size,), minval=low, maxval=high
                )
            else:
                action = act(obs.obs) + 0.1 * jax.random.normal(k_action, (family.action_size,))
            obs, state, reward, _, _ = trial.step(k_step, state, action, params)
            return (state, obs, key), reward

        (state, obs, key), rewards = jax.lax.scan(body, (state, obs, key), None, length=steps)
        return state, obs, key, rewards.sum()

    act = _policy_network(family) if policy else None
    keys = jax.random.split(jax.random.PRNGKey(0), num_tasks)
    obs, state = jax.jit(jax.vmap(trial.reset))(keys, params)
    run = jax.jit(jax.vmap(rollout))
    tic = time.perf_counter()
    state, obs, keys, total = jax.block_until_ready(run(params, state, obs, keys))
    compile_seconds = time.perf_counter() - tic
    state, obs, keys, total = jax.block_until_ready(run(params, state, obs, keys))
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        state, obs, keys, total = jax.block_until_ready(run(params, state, obs, keys))
        times.append(time.perf_counter() - tic)
    count = steps * num_tasks
    return {
        "task": task_id,
        "backend": getattr(family, "backend", "jax"),
        "policy": "mlp 100-100" if policy else "random",
        "parallel_tasks": num_tasks,
        "env_steps_per_s": count / float(np.median(times)),
        "min_env_steps_per_s": count / max(times),
        "max_env_steps_per_s": count / min(times),
        "first_call_s_incl_compile": compile_seconds,
        "repeats": repeats,
        "steps_per_call": count,
    }


def families_main(args):
    rows = []
    for base_id in args.family_ids:
        physics = base_id in LOCOMOTION_IDS  # families with a choice of physics backend
        ids = [f"{base_id}[backend={b}]" for b in args.backends] if physics else [base_id]
        for task_id in ids:
            for num_tasks in args.tasks:
                steps = max(5, args.chunk // max(1, int(np.sqrt(num_tasks))))
                if "backend=c" in task_id:  # cheap per call: keep the timed calls ~1 s long
                    steps = max(steps, 20)
                rows.append(measure_family(task_id, num_tasks, steps, args.repeats, args.policy))
                print(f"done: {task_id} x {num_tasks}", file=sys.stderr, flush=True)
    env = environment_info()
    if args.json:
        json.dump({"benchmark": "family-throughput", "rows": rows, "environment": env}, sys.stdout)
        print()
        return
    actions = "policy-network" if args.policy else "random"
    print(f"Control families: trial steps with {actions} actions, jit(vmap) over tasks, one device")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in env.items()))
    print(
        f"| task | backend | actions | parallel tasks | env-steps/s (median of {args.repeats}) "
        "| min .. max | first call incl. compile |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['task'].split('[')[0]} | {r['backend']} | {r['policy']} | "
            f"{r['parallel_tasks']} | {r['env_steps_per_s']:,.0f} | "
            f"{r['min_env_steps_per_s']:,.0f} .. {r['max_env_steps_per_s']:,.0f} | "
            f"{r['first_call_s_incl_compile']:.1f} s |"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tasks", type=int, nargs="+", default=None)
    parser.add_argument(
        "--updates", type=int, default=None, help="updates per timed chunk (default: ~2M steps)"
    )
    parser.add_argument("--ppo", action="store_true", help="also measure recurrent PPO")
    parser.add_argument(
        "--families", action="store_true", help="measure the control task families instead"
    )
    parser.add_argument("--family-ids", nargs="+", default=CONTROL_FAMILIES)
    parser.add_argument("--chunk", type=int, default=100, help="(--families) steps per call")
    parser.add_argument(
        "--backends", nargs="+", default=["c", "mjx"], help="(--families) locomotion physics"
    )
    parser.add_argument(
        "--policy", action="store_true", help="(--families) actions from a policy network"
    )
    parser.add_argument(
        "--duan2016", action="store_true", help="RL^2 on the tabular-MDP and maze families"
    )
    parser.add_argument(
        "--networks", nargs="+", default=["gru"], metavar="CELL[+value]", help="networks to time"
    )
    parser.add_argument(
        "--rl2-task", nargs="+", default=None, metavar="TASK:EPISODES:HIDDEN", help="RL^2 task(s)"
    )
    args = parser.parse_args(argv)
    if args.families:
        args.tasks = args.tasks or [1, 64, 256, 1024]
        return families_main(args)
    specs = args.rl2_task or (DUAN2016_TASKS if args.duan2016 else None)
    tasks = [parse_rl2_task(spec) for spec in specs] if specs else [None]
    args.tasks = args.tasks or ([1, 64, 256] if specs else [1, 64, 1024])
    all_devices = jax.devices()
    rows = []
    for task in tasks:
        trial_steps = Trial(make(task["task"]), task["num_episodes"]).max_steps if task else 100
        for num_tasks in args.tasks:
            usable = max(d for d in range(1, len(all_devices) + 1) if num_tasks % d == 0)
            # Aim for chunks of ~1-3 s so timer noise is small next to the work.
            updates = args.updates or max(2, min(200, 2_000_000 // (num_tasks * trial_steps)))
            configs = [all_devices[:usable]] + ([all_devices[:1]] if usable > 1 else [])
            for algorithm in ["a2c"] + (["ppo"] if args.ppo else []):
                for network in args.networks:
                    for devices in configs:
                        rows.append(
                            measure(
                                num_tasks, devices, updates, args.repeats, algorithm, task, network
                            )
                        )
    env = environment_info()
    if args.json:
        json.dump(
            {
                "benchmark": "rl2-throughput",
                "rows": rows,
                "environment": env,
            },
            sys.stdout,
            indent=2,
        )
        print()
        return
    print("RL^2 training throughput")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in env.items()))
    print(
        f"| task | network | algorithm | parallel tasks | devices | env-steps/s (median of "
        f"{args.repeats}) | min .. max | first chunk incl. compile |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['task']} | {r['network']} | {r['algorithm']} | {r['parallel_tasks']} | "
            f"{r['devices']} | "
            f"{r['env_steps_per_s']:,.0f} | {r['min_env_steps_per_s']:,.0f} .. "
            f"{r['max_env_steps_per_s']:,.0f} | {r['first_chunk_s_incl_compile']:.1f} s |"
        )


if __name__ == "__main__":
    main()
