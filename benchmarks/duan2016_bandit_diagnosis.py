"""How a trained RL^2 agent explores a many-armed bandit (RL^2 Table 1), beside classical agents.

    python benchmarks/duan2016_bandit_diagnosis.py \
        --checkpoint runs/duan/n100-k50/rl2/seed-0/checkpoint

Our RL^2 plateaus near 81 on 50-armed Bernoulli bandits with 100 pulls, where the exact
finite-horizon Gittins policy scores 85.6 and Duan et al. report 84.9 (docs/results/duan2016.md).
This script runs the checkpoint's agent (sampling its policy and acting greedily), the
Bayes-optimal (finite-horizon Gittins) agent, UCB1 with its exploration coefficient, Thompson
sampling and the greedy agent on the same held-out tasks of the checkpoint's bandit family, and
prints for each:

- the mean total reward with its 95% interval over tasks;
- how many distinct arms it pulls in a trial (exploration breadth);
- the share of its pulls on the task's best arm;
- the mean success probability of the arms it pulls in the last ``--tail`` pulls (what it settled
  on; the task's best arm has about 0.98 on 50 uniform arms).

An agent that pulls as few arms as the greedy one and settles on worse arms than Gittins explores
too little; one that pulls many arms but settles late explores too long.
"""

from __future__ import annotations

import argparse
import sys

from learn2rl.devices import use_cpu_cores

use_cpu_cores()

import numpy as np  # noqa: E402

from learn2rl import baselines, runner  # noqa: E402
from learn2rl.errors import Learn2RLError  # noqa: E402
from learn2rl.evaluation import ci95  # noqa: E402
from learn2rl.experiments.common import compare  # noqa: E402
from learn2rl.report import machine_line  # noqa: E402
from learn2rl.tasks.bandits import BernoulliBandit  # noqa: E402


def exploration_stats(actions: np.ndarray, means: np.ndarray, tail: int) -> dict[str, float]:
    """Exploration statistics of one agent's trials.

    ``actions [T, n]``: the arm pulled at each of the ``n`` pulls of ``T`` trials; ``means [T, k]``:
    each trial's arm success probabilities. Returns the mean over trials of the number of
    distinct arms pulled, the share of pulls on the best arm, and the mean success probability of
    the arms pulled in the last ``tail`` pulls."""
    actions, means = np.asarray(actions), np.asarray(means)
    if actions.ndim != 2 or means.ndim != 2 or actions.shape[0] != means.shape[0]:
        raise Learn2RLError(
            f"actions [T, n] and means [T, k] must share T, got {actions.shape} and {means.shape}"
        )
    if not 1 <= tail <= actions.shape[1]:
        raise Learn2RLError(f"tail must be in [1, {actions.shape[1]}], got {tail}")
    ordered = np.sort(actions, axis=1)
    distinct = 1 + np.sum(ordered[:, 1:] != ordered[:, :-1], axis=1)
    best = np.argmax(means, axis=1)
    return {
        "distinct arms": float(np.mean(distinct)),
        "best-arm share": float(np.mean(actions == best[:, None])),
        "p of the last pulls": float(np.mean(np.take_along_axis(means, actions[:, -tail:], 1))),
    }


def diagnose(checkpoint: str, num_tasks: int, tail: int, ucb_exploration: float) -> list[dict]:
    """One row per agent (see the module docstring) on the first ``num_tasks`` held-out tasks."""
    learner, state, _ = runner.load_learner(checkpoint, "rl2")
    family, pulls = learner.family, learner.config.num_episodes
    if not isinstance(family, BernoulliBandit):
        raise Learn2RLError(
            f"{checkpoint}: trained on {learner.config.task}, not a Bernoulli bandit family"
        )
    agents = [
        learner.agent(state.params, greedy=False, name="RL^2 sampled"),
        learner.agent(state.params, greedy=True, name="RL^2 greedy"),
        baselines.get("bayes-optimal", family, pulls),
        baselines.get("ucb1", family, pulls, exploration=ucb_exploration)._replace(
            name=f"ucb1 (c = {ucb_exploration:g})"
        ),
        baselines.get("thompson", family, pulls),
        baselines.get("greedy", family, pulls),
    ]
    means = np.asarray(family.tasks(num_tasks, "test").means)
    rows = []
    for agent, result in zip(agents, compare(agents, family, pulls, num_tasks), strict=True):
        totals = result.total_rewards
        rows.append(
            {
                "agent": agent.name,
                "total reward": float(np.mean(totals)),
                "interval": ci95(totals),
                **exploration_stats(result.actions[:, :pulls], means, tail),
            }
        )
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="an RL^2 checkpoint on a bandit")
    parser.add_argument("--tasks", type=int, default=2000, help="held-out tasks per agent")
    parser.add_argument("--tail", type=int, default=20, help="the last pulls to score")
    parser.add_argument(
        "--ucb-exploration",
        type=float,
        default=0.2,
        help="UCB1's coefficient (0.2: what Table 1's tuning picks at n = 100)",
    )
    args = parser.parse_args(argv)
    if args.tasks < 2 or args.tail < 1 or args.ucb_exploration < 0:
        parser.error("--tasks must be at least 2, --tail positive, --ucb-exploration >= 0")
    try:
        rows = diagnose(args.checkpoint, args.tasks, args.tail, args.ucb_exploration)
    except Learn2RLError as error:
        sys.exit(f"error: {error}")
    print(f"\nRL^2 checkpoint {args.checkpoint}, {args.tasks} held-out tasks\n")
    print(f"| agent | total reward | distinct arms | best-arm share | p of the last {args.tail} "
          "pulls |\n|---|---|---|---|---|")  # fmt: skip
    for row in rows:
        print(
            f"| {row['agent']} | {row['total reward']:.2f} ± {row['interval']:.2f} | "
            f"{row['distinct arms']:.1f} | {row['best-arm share']:.3f} | "
            f"{row['p of the last pulls']:.3f} |"
        )
    print("\n" + machine_line())


if __name__ == "__main__":
    main()
