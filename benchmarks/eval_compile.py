"""Compilations and wall time of evaluating many checkpoints of one learner, old path and new.

    python benchmarks/eval_compile.py                  # RL^2 and MAML, 10 checkpoints each
    python benchmarks/eval_compile.py --checkpoints 5 --learners rl2

A checkpoint here is a parameter set of the learner: ``learner.init(seed)`` for seeds 0..N-1 moved
by Gaussian noise (RL^2's policy head starts at zero, so untouched initial parameters would all
act alike), with the shapes and dtypes of trained parameters, which is all the compiler sees.
Each checkpoint is evaluated once on the same test tasks and key, with a task family freshly
built by ``learn2rl.tasks.make`` every time, as a script evaluating saved runs would.

``old``: the evaluation before agent kinds, reproduced here: the agent's closures over its
parameters are a static argument of the jitted batch, so every newly built agent is a new cache
entry and compiles again. ``new``: ``learn2rl.evaluation.evaluate``, which passes the parameters
as arguments and compiles once per kind of agent. ``compiles`` counts XLA compilations of the
batch function (``jax.log_compiles``); ``same`` says whether the two paths gave bit-identical
rewards and actions for every checkpoint.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from functools import partial

from learn2rl.devices import use_cpu_cores

use_cpu_cores()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from learn2rl.evaluation import evaluate, run_gradient_trial, run_trial  # noqa: E402
from learn2rl.learners import maml  # noqa: E402
from learn2rl.learners.rl2 import RL2  # noqa: E402
from learn2rl.learners.rl2 import Config as RL2Config  # noqa: E402
from learn2rl.report import machine_line  # noqa: E402
from learn2rl.tasks import make  # noqa: E402
from learn2rl.trial import Trial  # noqa: E402
from learn2rl.types import GradientAgent  # noqa: E402


@partial(jax.jit, static_argnums=(0, 1))
def _old_run_batch(agent, trial, keys, tasks):
    # The pre-change _run_batch: the agent (closures over constant parameters) is static.
    run = run_gradient_trial if isinstance(agent, GradientAgent) else run_trial
    return jax.vmap(partial(run, agent, trial))(keys, tasks)


def old_evaluate(agent, family, tasks, num_episodes, key):
    """Rewards and actions of one seed and one batch, as the old ``evaluate`` computed them."""
    plain = agent._replace(params=None, kind=None)  # closures only, as agents were before
    num = int(jax.tree.leaves(tasks)[0].shape[0])
    keys = jax.vmap(partial(jax.random.fold_in, jax.random.fold_in(key, 0)))(jnp.arange(num))
    rewards, _, _, actions, _, _ = jax.device_get(
        _old_run_batch(plain, Trial(family, num_episodes), keys, tasks)
    )
    return rewards, actions


def new_evaluate(agent, family, tasks, num_episodes, key):
    result = evaluate(agent, family, tasks, num_episodes, key)
    return result.rewards, result.actions


class _Counter(logging.Handler):
    def __init__(self, names):
        super().__init__(logging.DEBUG)
        self.prefixes = tuple(f"Compiling jit({n})" for n in names)
        self.count = 0

    def emit(self, record):
        if record.getMessage().startswith(self.prefixes):
            self.count += 1


@contextlib.contextmanager
def counting(*names):
    counter = _Counter(names)
    logger = logging.getLogger("jax")
    logger.addHandler(counter)
    # log_compiles logs at WARNING; keep those lines off the terminal while counting them.
    previous = logger.propagate
    logger.propagate = False
    try:
        with jax.log_compiles():
            yield counter
    finally:
        logger.propagate = previous
        logger.removeHandler(counter)


def setups(args):
    """``(label, learner, task id, family overrides, num_episodes)`` per learner asked for."""
    if "rl2" in args.learners:
        config = RL2Config(
            task="bandit/independent-2arm", num_episodes=100, hidden_size=48, num_tasks=2
        )
        yield "rl2 (GRU-48, 2-arm bandit, 100 pulls)", RL2(config, make(config.task)), {}, 100
    if "maml" in args.learners:
        config = maml.Config(hidden_sizes=(64, 64), num_tasks=2, episodes_per_step=10)
        overrides = {"episode_length": 50}
        family = make(config.task, **overrides)
        label = "maml (MLP 64x64, point-goal, 3 x 10 episodes)"
        yield label, maml.MAML(config, family), overrides, 30


def checkpoint(learner, seed: int, scale: float = 0.5):
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda x: (np.asarray(x) + scale * rng.normal(size=x.shape)).astype(x.dtype),
        learner.init(seed).params,
    )


def run(args):
    rows = []
    key = jax.random.PRNGKey(0)
    for label, learner, overrides, num_episodes in setups(args):
        task_id = learner.config.task
        params = [checkpoint(learner, seed) for seed in range(args.checkpoints)]
        tasks = make(task_id, **overrides).tasks(args.tasks)
        outputs = {}
        for path, fn, name in (
            ("old", old_evaluate, "_old_run_batch"),
            ("new", new_evaluate, "_run_batch"),
        ):
            times = []
            with counting(name) as compiles:
                for p in params:
                    tic = time.perf_counter()
                    agent = learner.agent(p)
                    out = fn(agent, make(task_id, **overrides), tasks, num_episodes, key)
                    times.append(time.perf_counter() - tic)
                    outputs.setdefault(path, []).append(out)
            rows.append((label, path, compiles.count, sum(times), times[0], np.median(times[1:])))
        same = all(
            np.array_equal(a, b)
            for old, new in zip(outputs["old"], outputs["new"], strict=True)
            for a, b in zip(old, new, strict=True)
        )
        rows[-1] += (same,)
        rows[-2] += (same,)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=100, help="test tasks per evaluation")
    parser.add_argument("--learners", nargs="+", default=["rl2", "maml"], choices=["rl2", "maml"])
    args = parser.parse_args()
    rows = run(args)
    print(
        f"{args.checkpoints} evaluations ({args.checkpoints} checkpoints x {args.tasks} tasks),"
        " each with a freshly built task family"
    )
    header = (
        f"{'learner':<48} {'path':<4} {'compiles':>8} {'total s':>8} {'first s':>8}"
        f" {'median rest s':>13} {'same':>5}"
    )
    print(header)
    print("-" * len(header))
    for label, path, compiles, total, first, rest, same in rows:
        print(
            f"{label:<48} {path:<4} {compiles:>8d} {total:>8.2f} {first:>8.2f} {rest:>13.3f}"
            f" {'yes' if same else 'no':>5}"
        )
    print(machine_line())


if __name__ == "__main__":
    main()
