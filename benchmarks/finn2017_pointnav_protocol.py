"""How Finn et al.'s meta-test protocol changes MAML's point-navigation returns (Table 4).

    python benchmarks/finn2017_pointnav_protocol.py \\
        --checkpoint runs/finn/maml/seed-0/checkpoint --goals paper,held-out \\
        --baselines refit,previous --episodes 20,100 --decays 0.5,0.25,0.15

The paper's test script (cbfinn/maml_rl, ``maml_examples/test_maml_point.py``) differs from the
way ``learn2rl reproduce finn2017-pointnav`` scores a trained gradient learner in three ways, each
a setting here, so one trained checkpoint is scored under every combination:

- ``--goals``: ``paper`` is the script's 40 goals (``finn2017.paper_test_goals``), ``held-out``
  the family's first ``--tasks`` test-split tasks (what the spec uses), ``train`` as many
  training-split tasks (for choosing a test setting without looking at the test goals);
- ``--baselines``: the linear baseline a test step subtracts, ``refit`` on the step's own batch
  (the spec's) or ``previous`` (rllab's sampler: the fit to the batch before, none at the first
  step; the learners' ``test_baseline``);
- ``--episodes``: episodes per test step (the script sampled 4,000 env steps, 40 or more
  episodes; the spec 20), and ``--decays``: the step size of steps 2 and 3 relative to the first
  (the script halved it).

It prints the mean return after 0, 1, 2 and 3 steps with 95% intervals over goals, beside the
paper's row.
"""

from __future__ import annotations

import argparse
import sys

from learn2rl.devices import use_cpu_cores

use_cpu_cores()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from learn2rl import runner  # noqa: E402
from learn2rl.analysis import adaptation  # noqa: E402
from learn2rl.errors import Learn2RLError  # noqa: E402
from learn2rl.evaluation import ci95, evaluate  # noqa: E402
from learn2rl.experiments import finn2017  # noqa: E402
from learn2rl.experiments.common import EVAL_SEED  # noqa: E402
from learn2rl.learners.meta_batch import TEST_BASELINES  # noqa: E402
from learn2rl.report import machine_line  # noqa: E402

SPLITS = {"held-out": "test", "train": "train"}  # the --goals drawn from a split of the family
GOALS = ("paper", *SPLITS)
STEPS = finn2017.ADAPT_STEPS + 1  # batches: before adaptation, then after 1, 2, 3 steps


def goal_tasks(family, which: str, num_tasks: int):
    """The tasks of one ``--goals`` choice on the point-navigation family."""
    if which in SPLITS:
        return family.tasks(num_tasks, SPLITS[which])
    goals = jnp.asarray(finn2017.paper_test_goals(), jnp.float32)
    return family.tasks(len(goals), "test").replace(goal=goals)


def score(checkpoint: str, goals, baselines, episodes, decays, num_tasks: int) -> list[dict]:
    """One row per combination: the mean return of each batch and its interval over goals."""
    learner, state, meta = runner.load_learner(checkpoint)
    config = learner.config
    if not hasattr(config, "test_baseline") or config.task != finn2017.POINT:
        raise Learn2RLError(
            f"{checkpoint} holds a {meta.get('learner')!r} run on {config.task!r}; this script "
            f"scores a gradient learner (maml, reptile, maesn) on {finn2017.POINT!r}"
        )
    rows = []
    for which in goals:
        tasks = goal_tasks(learner.family, which, num_tasks)
        for baseline in baselines:
            for per in episodes:
                variant = config.replace(test_baseline=baseline, test_episodes_per_step=per)
                scored = runner.build(meta["learner"], variant)
                for decay in decays:
                    agent = scored.agent(state.params, step_decay=decay)
                    key = jax.random.PRNGKey(EVAL_SEED)
                    result = evaluate(agent, learner.family, tasks, per * STEPS, key)
                    returns = adaptation.batch_returns(result, per, STEPS)  # [tasks, STEPS]
                    rows.append(
                        dict(goals=which, baseline=baseline, episodes=per, decay=decay,
                             mean=returns.mean(0), interval=[ci95(c) for c in returns.T])
                    )  # fmt: skip
    return rows


def _choices(text: str, allowed=None, kind=str) -> list:
    values = [kind(v) for v in text.split(",") if v]
    if not values or (allowed is not None and set(values) - set(allowed)):
        raise ValueError(text)
    return values


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a MAML/Reptile/MAESN point-goal run")
    parser.add_argument("--goals", default="paper,held-out", help=f"any of {', '.join(GOALS)}")
    parser.add_argument("--baselines", default="refit", help=f"any of {', '.join(TEST_BASELINES)}")
    parser.add_argument("--episodes", default="20,100", help="episodes per test step")
    parser.add_argument("--decays", default="0.5,0.25,0.15", help="step size of steps 2-3 / first")
    parser.add_argument("--tasks", type=int, default=200, help="goals of --goals held-out / train")
    args = parser.parse_args(argv)
    try:
        goals = _choices(args.goals, GOALS)
        baselines = _choices(args.baselines, TEST_BASELINES)
        episodes = _choices(args.episodes, kind=int)
        decays = _choices(args.decays, kind=float)
    except ValueError:
        parser.error(
            f"--goals takes {', '.join(GOALS)}; --baselines {', '.join(TEST_BASELINES)}; "
            "--episodes and --decays comma-separated numbers"
        )
    if args.tasks < 2 or min(episodes) < 1 or min(decays) <= 0:
        parser.error("--tasks must be at least 2, --episodes and --decays positive")
    try:
        rows = score(args.checkpoint, goals, baselines, episodes, decays, args.tasks)
    except Learn2RLError as error:
        sys.exit(f"error: {error}")
    print(f"\nMAML checkpoint {args.checkpoint}: return after k test steps, 95% intervals\n")
    print("| goals | baseline | episodes / step | decay | 0 steps | 1 step | 2 steps | 3 steps |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        pairs = zip(row["mean"], row["interval"], strict=True)
        cells = " | ".join(f"{m:.2f} ± {i:.2f}" for m, i in pairs)
        print(f"| {row['goals']} | {row['baseline']} | {row['episodes']} | {row['decay']:g} | "
              f"{cells} |")  # fmt: skip
    paper = " | ".join(f"{v:.2f}" for v in finn2017.PAPER[finn2017.POINT]["MAML (paper)"])
    print(f"| paper | | | | {paper} |")
    print("\n" + machine_line())


if __name__ == "__main__":
    main()
