"""RL^2 Table 3 (Duan et al. 2016, arXiv 1611.02779, Sec. 3.3): navigating unseen mazes, twice.

A trial is two episodes in the same maze with the same hidden target. Duan et al. report, on
held-out mazes, the success rate of each episode and the mean length of the *successful* episodes:
52.4 steps in episode 1 and 39.1 in episode 2 on 5x5 mazes (success 99.3% / 99.6%), 180.1 ->
151.8 on 9x9 mazes: the agent remembers where the target was and goes there faster the second
time. Here the mazes are ``learn2rl.tasks.maze`` (a gridworld with a first-person symbolic view
instead of ViZDoom pixels; docs/tasks/mazes.md), so lengths are in other units: we compare the
*drop* from episode 1 to episode 2 and the distance to the shortest path (an oracle that knows
the maze), not raw lengths.

Agents: RL^2 (GRU, A2C), evaluated once on each of ``num_test_tasks`` test-pool mazes (never seen
in training); the oracle (shortest paths, privileged) and a uniformly random policy for scale.

``learn2rl reproduce duan2016-mazes [--quick] --out DIR``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from learn2rl import checkpoint, runner
from learn2rl.baselines.generic import random_agent
from learn2rl.baselines.maze import oracle_agent
from learn2rl.evaluation import EvalResult, ci95, evaluate
from learn2rl.experiments.common import EVAL_SEED, finding, findings_section, train_rl2
from learn2rl.learners.rl2 import Config
from learn2rl.logging import read_metrics
from learn2rl.plots import plot_training
from learn2rl.report import config_text, machine_line, write_results_json
from learn2rl.tasks import maze

NUM_EPISODES = 2  # episodes per trial, as in the paper
# Duan et al. 2016, Table 3: (success ep 1, success ep 2, successful length ep 1, ep 2).
PAPER = {5: (0.993, 0.996, 52.4, 39.1), 9: (0.971, 0.967, 180.1, 151.8)}

CONFIG = Config(
    task="maze/5x5",
    num_episodes=NUM_EPISODES,
    hidden_size=128,
    num_tasks=128,
    num_updates=3000,
    updates_per_chunk=50,
    learning_rate=1e-3,
    final_learning_rate=2e-4,
    gamma=0.99,
    gae_lambda=0.95,
    entropy_coef=0.01,
    final_entropy_coef=0.0,
)
QUICK_CONFIG = CONFIG.replace(num_updates=800)
MIN_SUCCESS = 0.9  # the success rate RL^2 must reach in each episode (paper: > 0.99 on 5x5)


def episode_summary(result: EvalResult, shortest: np.ndarray) -> dict[str, Any]:
    """Success and successful-episode lengths per episode, and the paired episode-1 -> 2 drop.

    ``shortest`` [trials] is the optimal length of the task (the same in both episodes, which
    start from the same cell and heading). The drop is measured on the trials where both
    episodes succeeded, within each trial, so it is not confounded by which mazes succeed.
    """
    table = maze.episode_lengths(result, NUM_EPISODES)
    steps, success = table["steps"].astype(float), table["success"]
    shortest = np.tile(np.asarray(shortest, float), result.num_seeds)
    per_episode = []
    for e in range(NUM_EPISODES):
        ok = success[:, e]
        lengths = steps[ok, e]
        per_episode.append(
            {
                "success": float(ok.mean()),
                "length": float(lengths.mean()) if ok.any() else float("nan"),
                "length_ci95": ci95(lengths),
                "excess": float((lengths - shortest[ok]).mean()) if ok.any() else float("nan"),
            }
        )
    both = success.all(axis=1)
    drop = steps[both, 0] - steps[both, 1]
    return {
        "episodes": per_episode,
        "both_succeeded": float(both.mean()),
        "drop": float(drop.mean()) if both.any() else float("nan"),
        "drop_ci95": ci95(drop),
        "shorter_second": float((drop > 0).mean()) if both.any() else float("nan"),
        "same_second": float((drop == 0).mean()) if both.any() else float("nan"),
        "shortest": float(shortest.mean()),
    }


def findings(summaries: dict[str, dict[str, Any]]) -> list[dict]:
    s = summaries["rl2"]
    ep1, ep2 = s["episodes"]
    walk = summaries["random"]["episodes"]
    return [
        finding(
            "RL^2 finds the target in unseen mazes (paper: 99.3% / 99.6% on 5x5)",
            f"success {ep1['success']:.3f} / {ep2['success']:.3f}",
            f">= {MIN_SUCCESS} in both episodes",
            min(ep1["success"], ep2["success"]) >= MIN_SUCCESS,
        ),
        finding(
            "the second visit is shorter (paper: 52.4 -> 39.1 steps on 5x5)",
            f"{ep1['length']:.1f} -> {ep2['length']:.1f} steps; paired drop "
            f"{s['drop']:.1f} ± {s['drop_ci95']:.1f} on the {s['both_succeeded']:.1%} of trials "
            "where both episodes succeeded",
            "paired drop > 0 (95% CI above 0)",
            s["drop"] - s["drop_ci95"] > 0,
        ),
        finding(
            "episode 1 is a directed search, not a random walk",
            f"RL^2 success {ep1['success']:.3f} vs random {walk[0]['success']:.3f}",
            "RL^2 success higher by at least 0.2",
            ep1["success"] >= walk[0]["success"] + 0.2,
        ),
    ]


def plot_lengths(summaries: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """Successful-episode length (left) and success rate (right) per episode, per agent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_len, ax_success) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    episodes = np.arange(1, NUM_EPISODES + 1)
    for name, s in summaries.items():
        lengths = [e["length"] for e in s["episodes"]]
        errors = [e["length_ci95"] for e in s["episodes"]]
        ax_len.errorbar(episodes, lengths, yerr=errors, marker="o", capsize=3, label=name)
        ax_success.plot(episodes, [e["success"] for e in s["episodes"]], marker="o", label=name)
    for ax, label in ((ax_len, "mean length of successful episodes"), (ax_success, "success")):
        ax.set_xlabel("episode of the trial (same maze, same target)")
        ax.set_ylabel(label)
        ax.set_xticks(episodes)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_len.set_ylim(bottom=0)
    ax_success.set_ylim(0, 1.05)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def run(
    out: Path,
    quick: bool = False,
    progress: bool = True,
    console=None,
    config: Config | None = None,
    num_test_tasks: int | None = None,
) -> dict:
    out = Path(out)
    tic = time.perf_counter()
    config = config or (QUICK_CONFIG if quick else CONFIG)
    num_test_tasks = num_test_tasks or 1000
    command = "learn2rl reproduce duan2016-mazes" + (" --quick" if quick else "")
    if console is not None:
        console.print(
            f"[bold]duan2016-mazes[/bold]: RL^2 on {config.task}, {config.num_updates} updates x "
            f"{config.num_tasks} trials -> {out}"
        )
    learner, state = train_rl2(config, out / "rl2", progress, console)
    family = learner.family
    if not isinstance(family, maze.Maze):
        raise ValueError(f"duan2016-mazes needs a maze/* task, got {config.task!r}")
    tasks = family.tasks(num_test_tasks, "test")
    shortest = np.asarray(
        [
            maze.shortest_path_length(family.layouts[int(row)], int(start), int(heading), int(goal))
            for row, start, heading, goal in zip(
                tasks.layout, tasks.start, tasks.start_heading, tasks.goal, strict=True
            )
        ]
    )
    # Uniformly random actions: the scale of an agent that neither explores nor remembers.
    walk = random_agent(family)
    agents = [learner.agent(state.params, name="rl2"), oracle_agent(), walk]
    key = jax.random.PRNGKey(EVAL_SEED)
    results, summaries = [], {}
    for agent in agents:
        started = time.perf_counter()
        result = evaluate(agent, family, tasks, NUM_EPISODES, key)
        results.append(result)
        summaries[agent.name] = episode_summary(result, shortest)
        if console is not None:
            console.print(
                f"  evaluated {agent.name:<8} on {num_test_tasks} held-out mazes "
                f"({time.perf_counter() - started:.1f}s)"
            )
    table = findings(summaries)
    title = f"{family.family_id}: {num_test_tasks} held-out mazes, 2 episodes per trial"
    plot_lengths(summaries, out / "lengths.png", title)
    plot_training(read_metrics(out / "rl2" / "metrics.jsonl"), out / "training.png")
    seconds = time.perf_counter() - tic
    meta = checkpoint.load_meta(out / "rl2" / runner.CHECKPOINT_DIR)
    train_seconds = float(meta.get("train_seconds", 0.0))
    rows = [r.summary() for r in results]
    extra = {
        "config": config.to_dict(),
        "summaries": summaries,
        "findings": table,
        "paper": PAPER.get(family.size),
        "seconds": round(seconds, 1),
        "train_seconds": round(train_seconds, 1),
    }
    write_results_json(rows, out / "results.json", extra)
    report = _report(command, out, config, family, num_test_tasks, summaries, table)
    report += [
        f"Wall time of this invocation: {seconds:.0f} s; training (from the checkpoint, summed "
        f"over resumes): {train_seconds:.0f} s.",
        "",
        machine_line(),
        "",
    ]
    (out / "report.md").write_text("\n".join(report))
    if console is not None:
        console.print("\n".join(report[:20]))
    return {"rows": rows, "summaries": summaries, "findings": table}


def _report(command, out, config, family, num_test_tasks, summaries, table) -> list[str]:
    paper = PAPER.get(family.size)
    lines = [
        f"# RL^2 Table 3: maze navigation ({family.size}x{family.size})",
        "",
        f"Command: `{command} --out {out}`",
        "",
        f"RL^2 ({config.cell.upper()}-{config.hidden_size}, {config.algorithm.upper()}, gamma "
        f"{config.gamma}) meta-trained for {config.num_updates} updates x {config.num_tasks} "
        f"trials on the {family.num_train_layouts} training mazes of `{family.family_id}`, then "
        f"run once on each of {num_test_tasks} tasks on *test-pool* mazes (never trained on). "
        "A trial is 2 episodes from the same start in the same maze with the same hidden target; "
        f"an episode ends at the target or after {family.episode_length} actions. Lengths count "
        "actions (a move or a 90-degree turn), only over episodes that reached the target.",
        "",
        "| agent | success ep 1 | success ep 2 | length ep 1 | length ep 2 | paired drop "
        "(both succeeded) | ep 2 shorter / as long |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in summaries.items():
        ep1, ep2 = s["episodes"]
        lines.append(
            f"| {name} | {ep1['success']:.3f} | {ep2['success']:.3f} | "
            f"{ep1['length']:.1f} ± {ep1['length_ci95']:.1f} | "
            f"{ep2['length']:.1f} ± {ep2['length_ci95']:.1f} | "
            f"{s['drop']:.1f} ± {s['drop_ci95']:.1f} ({s['both_succeeded']:.1%} of trials) | "
            f"{s['shorter_second']:.1%} / {s['same_second']:.1%} |"
        )
    if paper is not None:
        lines.append(
            f"| paper (RL^2, ViZDoom) | {paper[0]:.3f} | {paper[1]:.3f} | {paper[2]} | "
            f"{paper[3]} | {paper[2] - paper[3]:.1f} (ratio {paper[3] / paper[2]:.2f}) | |"
        )
    s = summaries["rl2"]
    ep1, ep2 = s["episodes"]
    lines += [
        "",
        f"Shortest path (the oracle's length in both episodes): {s['shortest']:.2f} actions on "
        f"average. RL^2's successful episodes take {ep1['excess']:.1f} actions beyond it in "
        f"episode 1 and {ep2['excess']:.1f} in episode 2; ratio episode 2 / episode 1: "
        f"{ep2['length'] / ep1['length']:.2f}"
        + (f" (paper: {paper[3] / paper[2]:.2f})." if paper else "."),
        "",
        "## Findings (tested)",
        "",
        findings_section(table),
        "",
        "![lengths and success by episode](lengths.png)",
        "",
        "Training curve (mean trial return per update): ![training](training.png). Config: `"
        + config_text(config)
        + "`.",
        "",
    ]
    return lines
