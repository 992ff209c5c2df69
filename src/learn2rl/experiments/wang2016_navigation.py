"""Wang et al. 2016 (arXiv 1611.05763), Sec. 3.2: one-shot navigation, as a gridworld.

In the paper an LSTM agent trained by A2C in 3-D mazes (DeepMind Lab) whose goal stays put within an
episode, while the agent is moved to a random place each time it reaches it, takes far less time to
reach the goal after its first find: it explores once, then returns. Here the maze is an open
``N`` x ``N`` grid (``learn2rl.tasks.navigation``): the task is the hidden goal cell, each learn2rl
episode is one goal-reach from a random start, and a trial is several episodes on the same goal.

We meta-train RL^2 (GRU, A2C) and measure, on held-out goals, the steps to the goal in episode 1
against episodes 2+, beside three hand-written agents:

- ``random-walk``: uniform random moves (no memory);
- ``oracle``: knows the goal (privileged) and walks a shortest path, so its steps are exactly the
  Manhattan distance from each episode's start; it is the optimum of episodes 2+ (and a lower bound
  for episode 1, which no agent without the goal can reach);
- ``search-return``: the hand-designed answer. It remembers the cells it has stood on (none is the
  goal: entering the goal ends the episode), walks to the nearest cell it has not visited until a
  reward says it entered the goal, works out the goal cell from its last position and move, and
  from then on walks shortest paths to it.

The reference agents live in ``learn2rl.baselines.navigation``.

``learn2rl reproduce wang2016-navigation [--quick] --out DIR``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from learn2rl import checkpoint, runner
from learn2rl.baselines.navigation import reference_agents
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import EvalResult, ci95, evaluate
from learn2rl.experiments.common import EVAL_SEED, finding, findings_section, train_rl2
from learn2rl.learners.rl2 import Config
from learn2rl.logging import read_metrics
from learn2rl.plots import plot_training
from learn2rl.report import config_text, machine_line, write_results_json
from learn2rl.tasks import make
from learn2rl.tasks.navigation import OneGoalGridworld
from learn2rl.types import Agent

CONFIG = Config(
    task="gridworld/onegoal-5x5",
    num_episodes=4,
    algorithm="a2c",
    cell="gru",
    hidden_size=48,
    num_tasks=128,  # smaller batches learned faster per second than 256 on the 2-core CPU
    num_updates=5000,
    updates_per_chunk=100,
    learning_rate=5e-3,
    final_learning_rate=5e-4,
    gamma=0.9,
    gae_lambda=1.0,
    entropy_coef=0.05,
    final_entropy_coef=0.0,
)
QUICK_CONFIG = CONFIG.replace(num_updates=2000)

# Criteria of the findings table (fixed before looking at RL^2's numbers).
DROP_RATIO = 0.6  # episodes 2+ must take at most this fraction of episode 1's steps
EXCESS_TOLERANCE = 1.0  # mean steps beyond the shortest path allowed in episodes 2+
SUCCESS_RATE = 0.95  # fraction of episodes that must reach the goal


# --- analysis ---------------------------------------------------------------------------------
def episode_table(
    result: EvalResult, family: OneGoalGridworld, goals: np.ndarray, num_episodes: int
) -> dict[str, np.ndarray]:
    """Per trial and episode ([trials, episodes]): ``steps`` taken (the step limit when the goal
    was not reached), ``success`` (goal reached), ``shortest`` (Manhattan distance from that
    episode's start) and ``excess`` = steps - shortest. Needs ``evaluate(..., record_obs=True)``.
    """
    if result.episodes is None or result.observations is None:
        raise Learn2RLError("episode_table needs an EvalResult evaluated with record_obs=True")
    goals = np.tile(np.asarray(goals), result.num_seeds)
    valid = np.asarray(result.valid, bool)
    cells = np.asarray(family.cell_of(np.asarray(result.observations)))
    index = np.arange(num_episodes)
    in_episode = valid[:, None, :] & (result.episodes[:, None, :] == index[None, :, None])
    steps = in_episode.sum(axis=2)
    success = (in_episode & (result.rewards[:, None, :] > 0.5)).any(axis=2)
    first = np.argmax(in_episode, axis=2)  # the first step of each episode
    starts = np.take_along_axis(cells, first, axis=1)
    shortest = np.abs(starts // family.size - goals[:, None] // family.size) + np.abs(
        starts % family.size - goals[:, None] % family.size
    )
    if not (steps > 0).all():
        raise Learn2RLError("a trial has an empty episode; was num_episodes the evaluated one?")
    return {"steps": steps, "success": success, "shortest": shortest, "excess": steps - shortest}


def summarize(table: dict[str, np.ndarray]) -> dict[str, Any]:
    """Means and 95% CIs over trials: per episode, episode 1, episodes 2+, and their paired drop."""
    steps, excess = table["steps"].astype(float), table["excess"].astype(float)
    later = steps[:, 1:].mean(axis=1)
    later_excess = excess[:, 1:].mean(axis=1)
    later_shortest = table["shortest"][:, 1:].mean(axis=1)
    return {
        "num_trials": int(steps.shape[0]),
        "steps_per_episode": steps.mean(axis=0).tolist(),
        "steps_per_episode_ci95": [ci95(steps[:, e]) for e in range(steps.shape[1])],
        "success_per_episode": table["success"].mean(axis=0).tolist(),
        "shortest_per_episode": table["shortest"].mean(axis=0).tolist(),
        "excess_per_episode": excess.mean(axis=0).tolist(),
        "episode1_steps": float(steps[:, 0].mean()),
        "episode1_ci95": ci95(steps[:, 0]),
        "episode1_shortest": float(table["shortest"][:, 0].mean()),
        "later_steps": float(later.mean()),
        "later_ci95": ci95(later),
        "later_shortest": float(later_shortest.mean()),
        "later_excess": float(later_excess.mean()),
        "later_excess_ci95": ci95(later_excess),
        "drop": float((steps[:, 0] - later).mean()),
        "drop_ci95": ci95(steps[:, 0] - later),
        "success_rate": float(table["success"].mean()),
        "total_excess": float(excess.sum(axis=1).mean()),
        "total_excess_ci95": ci95(excess.sum(axis=1)),
    }


def drops_after_first_episode(summary: dict[str, Any], ratio: float = DROP_RATIO) -> bool:
    """Episodes 2+ faster than episode 1: non-overlapping 95% CIs and at most ``ratio`` of it."""
    separated = summary["later_steps"] + summary["later_ci95"] < (
        summary["episode1_steps"] - summary["episode1_ci95"]
    )
    return bool(separated and summary["later_steps"] <= ratio * summary["episode1_steps"])


def near_shortest_path(summary: dict[str, Any], tolerance: float = EXCESS_TOLERANCE) -> bool:
    """Episodes 2+ take on average at most ``tolerance`` steps more than the shortest path."""
    return bool(summary["later_excess"] <= tolerance)


def findings(summaries: dict[str, dict[str, Any]], learner: str = "rl2") -> list[dict]:
    s = summaries[learner]
    walk = summaries["random-walk"]
    ratio = s["later_steps"] / s["episode1_steps"]
    return [
        finding(
            "after finding the goal once the agent returns faster (episode 2+ << episode 1)",
            f"episode 1 {s['episode1_steps']:.2f} ± {s['episode1_ci95']:.2f}, episodes 2+ "
            f"{s['later_steps']:.2f} ± {s['later_ci95']:.2f} steps (ratio {ratio:.2f})",
            f"95% CIs do not overlap and ratio <= {DROP_RATIO}",
            drops_after_first_episode(s),
        ),
        finding(
            "episodes 2+ follow (close to) a shortest path to the remembered goal",
            f"{s['later_excess']:.2f} ± {s['later_excess_ci95']:.2f} steps beyond the shortest "
            f"path ({s['later_shortest']:.2f})",
            f"mean excess <= {EXCESS_TOLERANCE} step",
            near_shortest_path(s),
        ),
        finding(
            "episode 1 is a directed search, not a random walk",
            f"episode 1: {s['episode1_steps']:.2f} ± {s['episode1_ci95']:.2f} vs random walk "
            f"{walk['episode1_steps']:.2f} ± {walk['episode1_ci95']:.2f}",
            "95% CIs do not overlap, RL^2 lower",
            s["episode1_steps"] + s["episode1_ci95"]
            < walk["episode1_steps"] - walk["episode1_ci95"],
        ),
        finding(
            "the goal is reached in (nearly) every episode",
            f"success rate {s['success_rate']:.3f}",
            f">= {SUCCESS_RATE}",
            s["success_rate"] >= SUCCESS_RATE,
        ),
    ]


# --- outputs ----------------------------------------------------------------------------------
def plot_steps_by_episode(summaries: dict[str, dict[str, Any]], path: Path, title: str) -> Path:
    """Steps to goal (left) and success rate (right) against the episode index, per agent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_steps, ax_success) = plt.subplots(1, 2, figsize=(10, 4), dpi=120)
    for name, s in summaries.items():
        episodes = np.arange(1, len(s["steps_per_episode"]) + 1)
        ax_steps.errorbar(
            episodes,
            s["steps_per_episode"],
            yerr=s["steps_per_episode_ci95"],
            marker="o",
            capsize=3,
            label=name,
        )
        ax_success.plot(episodes, s["success_per_episode"], marker="o", label=name)
    any_summary = next(iter(summaries.values()))
    episodes = np.arange(1, len(any_summary["shortest_per_episode"]) + 1)
    ax_steps.plot(
        episodes, any_summary["shortest_per_episode"], "k--", lw=1, label="shortest path (mean)"
    )
    ax_steps.set_xlabel("episode of the trial (same goal)")
    ax_steps.set_ylabel("steps to goal (step limit if not reached)")
    ax_steps.set_ylim(bottom=0)
    ax_steps.set_xticks(episodes)
    ax_steps.grid(alpha=0.3)
    ax_steps.legend(fontsize=8)
    ax_success.set_xlabel("episode of the trial (same goal)")
    ax_success.set_ylabel("success rate (goal reached)")
    ax_success.set_ylim(0, 1.05)
    ax_success.set_xticks(episodes)
    ax_success.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_trajectories(
    results: list[EvalResult], family: OneGoalGridworld, goal: int, path: Path, trial: int = 0
) -> Path:
    """The path of each agent in each episode of one held-out trial (rows: agents)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num_episodes = int(results[0].episodes[trial][results[0].valid[trial]].max()) + 1
    fig, axes = plt.subplots(
        len(results),
        num_episodes,
        figsize=(2.2 * num_episodes, 2.3 * len(results)),
        dpi=120,
        squeeze=False,
    )
    goal_row, goal_column = divmod(int(goal), family.size)
    for row_axes, result in zip(axes, results, strict=True):
        valid = np.asarray(result.valid[trial], bool)
        cells = np.asarray(family.cell_of(np.asarray(result.observations[trial])))
        for episode, ax in enumerate(row_axes):
            mask = valid & (result.episodes[trial] == episode)
            visited = list(cells[mask])
            if result.rewards[trial][mask].max(initial=0.0) > 0.5:
                visited.append(int(goal))  # the move into the goal ends the episode
            rows, columns = np.divmod(np.asarray(visited), family.size)
            ax.plot(columns, rows, "-", color="tab:blue", lw=1.5, alpha=0.8)
            ax.plot(columns[:1], rows[:1], "o", color="tab:green", ms=7)
            ax.plot([goal_column], [goal_row], "*", color="tab:red", ms=12)
            ax.set_xlim(-0.5, family.size - 0.5)
            ax.set_ylim(family.size - 0.5, -0.5)
            ax.set_xticks(np.arange(family.size + 1) - 0.5, minor=True)
            ax.set_yticks(np.arange(family.size + 1) - 0.5, minor=True)
            ax.grid(which="minor", color="0.85")
            ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
            steps = int(mask.sum())
            ax.set_title(f"episode {episode + 1}: {steps} step{'s' * (steps != 1)}", fontsize=8)
        row_axes[0].set_ylabel(result.agent)
    fig.suptitle(f"held-out task {trial}: start (green dot), goal (red star)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _episode_markdown(summaries: dict[str, dict[str, Any]]) -> str:
    num_episodes = len(next(iter(summaries.values()))["steps_per_episode"])
    header = "| agent | " + " | ".join(f"episode {e + 1}" for e in range(num_episodes)) + " |"
    lines = [header, "|---|" + "---|" * num_episodes]
    for name, s in summaries.items():
        cells = [
            f"{m:.2f} ± {c:.2f} ({100 * p:.1f}%)"
            for m, c, p in zip(
                s["steps_per_episode"],
                s["steps_per_episode_ci95"],
                s["success_per_episode"],
                strict=True,
            )
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _summary_markdown(summaries: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| agent | episode 1 steps | episodes 2+ steps | drop (paired) | excess over shortest, "
        "episodes 2+ | success rate | trials |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in summaries.items():
        lines.append(
            f"| {name} | {s['episode1_steps']:.2f} ± {s['episode1_ci95']:.2f} | "
            f"{s['later_steps']:.2f} ± {s['later_ci95']:.2f} | "
            f"{s['drop']:.2f} ± {s['drop_ci95']:.2f} | "
            f"{s['later_excess']:.2f} ± {s['later_excess_ci95']:.2f} | "
            f"{s['success_rate']:.3f} | {s['num_trials']} |"
        )
    return "\n".join(lines)


def _rows(results: list[EvalResult], summaries: dict[str, dict[str, Any]]) -> list[dict]:
    """results.json rows. ``mean_regret`` is the trial's steps beyond the shortest path, summed
    over its episodes (the family has no per-step expected reward, so no pseudo-regret)."""
    rows = []
    for result in results:
        row = result.summary()
        s = summaries[result.agent]
        row["mean_regret"] = s["total_excess"]
        row["regret_ci95"] = s["total_excess_ci95"]
        row.update({k: v for k, v in s.items() if k not in ("num_trials",)})
        rows.append(row)
    return rows


def _rich_table(summaries: dict[str, dict[str, Any]], title: str):
    from rich.table import Table

    table = Table(title=title)
    for column in ["agent", "episode 1", "episodes 2+", "excess 2+", "success"]:
        table.add_column(column, justify="left" if column == "agent" else "right")
    for name, s in summaries.items():
        table.add_row(
            name,
            f"{s['episode1_steps']:.2f} ± {s['episode1_ci95']:.2f}",
            f"{s['later_steps']:.2f} ± {s['later_ci95']:.2f}",
            f"{s['later_excess']:.2f}",
            f"{s['success_rate']:.3f}",
        )
    return table


def evaluate_agents(
    agents: list[Agent], family: OneGoalGridworld, num_episodes: int, num_test_tasks: int, console
) -> tuple[list[EvalResult], dict[str, dict[str, Any]]]:
    tasks = family.tasks(num_test_tasks, "test")
    goals = np.asarray(tasks.goal)
    key = jax.random.PRNGKey(EVAL_SEED)
    results, summaries = [], {}
    for agent in agents:
        tic = time.perf_counter()
        result = evaluate(agent, family, tasks, num_episodes, key, record_obs=True)
        summaries[agent.name] = summarize(episode_table(result, family, goals, num_episodes))
        results.append(result)
        if console is not None:
            console.print(
                f"  evaluated {agent.name:<14} on {num_test_tasks} held-out goals "
                f"({time.perf_counter() - tic:.1f}s)"
            )
    return results, summaries


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
    num_test_tasks = num_test_tasks or (1000 if quick else 5000)
    command = "learn2rl reproduce wang2016-navigation" + (" --quick" if quick else "")
    if console is not None:
        console.print(
            f"[bold]wang2016-navigation[/bold]: RL^2 on {config.task}, {config.num_episodes} "
            f"episodes per trial, {config.num_updates} updates x {config.num_tasks} tasks -> {out}"
        )
    if not isinstance(make(config.task), OneGoalGridworld):
        raise Learn2RLError(
            f"wang2016-navigation needs a gridworld/onegoal-* task, got {config.task!r}"
        )
    learner, state = train_rl2(config, out / "rl2", progress, console)
    family = learner.family
    agents = [learner.agent(state.params, name="rl2"), *reference_agents(family)]
    results, summaries = evaluate_agents(
        agents, family, config.num_episodes, num_test_tasks, console
    )
    title = (
        f"{family.family_id}: steps to goal per episode, {num_test_tasks} held-out goals, "
        f"{config.num_episodes} episodes per trial"
    )
    plot_steps_by_episode(summaries, out / "steps_by_episode.png", title)
    plot_training(read_metrics(out / "rl2" / "metrics.jsonl"), out / "training.png")
    # Show a typical search: the first held-out trial whose RL^2 episode 1 takes at least the
    # median number of steps (the first trial is often a lucky start next to the goal).
    goals = np.asarray(family.tasks(num_test_tasks, "test").goal)
    first_steps = episode_table(results[0], family, goals, config.num_episodes)["steps"][:, 0]
    shown_trial = int(np.argmax(first_steps >= np.median(first_steps)))
    shown = [r for r in results if r.agent in ("rl2", "search-return")]
    plot_trajectories(shown, family, int(goals[shown_trial]), out / "trajectories.png", shown_trial)
    table = findings(summaries)
    rows = _rows(results, summaries)
    seconds = time.perf_counter() - tic
    meta = checkpoint.load_meta(out / "rl2" / runner.CHECKPOINT_DIR)
    train_seconds = float(meta.get("train_seconds", 0.0))
    extra = {
        "config": config.to_dict(),
        "family": {
            "size": family.size,
            "episode_length": family.episode_length,
            "step_penalty": family.step_penalty,
            "observation": family.observation,
        },
        "findings": table,
        "seconds": round(seconds, 1),
        "train_seconds": round(train_seconds, 1),
    }
    write_results_json(rows, out / "results.json", extra)
    times = (seconds, train_seconds)
    _write_report(out, command, config, family, num_test_tasks, summaries, table, times)
    if console is not None:
        console.print(_rich_table(summaries, title))
    return {"rows": rows, "summaries": summaries, "findings": table}


def _write_report(out, command, config, family, num_test_tasks, summaries, table, times):
    oracle_summary = summaries["oracle"]
    lines = [
        "# Wang et al. 2016, one-shot navigation (gridworld analogue)",
        "",
        f"Command: `{command} --out {out}`",
        "",
        f"RL^2 ({config.cell.upper()}-{config.hidden_size}, {config.algorithm.upper()}, gamma "
        f"{config.gamma}) meta-trained for {config.num_updates} updates x {config.num_tasks} "
        f"trials on `{family.family_id}`: a {family.size}x{family.size} open grid whose goal "
        "cell is the task (hidden), a new random start (not the goal) at every episode, +1 on "
        f"entering the goal (ends the episode), step penalty {family.step_penalty}, at most "
        f"{family.episode_length} steps per episode, {config.num_episodes} episodes per trial, "
        f"observation = {family.observation} position. Evaluated on {num_test_tasks} held-out "
        "goals (test split), one trial each (1 seed), the same evaluation key for every agent; "
        "starts are drawn at each reset, so they differ between agents once their episodes end at "
        "different steps: every episode is therefore scored against its own shortest path.",
        "",
        "Steps to goal count the step limit for an episode that did not reach the goal; success "
        "rates are given beside them. ± is the 95% CI over trials (normal approximation); the drop "
        "is paired within each trial. In results.json, `mean_total_reward` is the trial's reward "
        f"(goals reached, minus {family.step_penalty} per other step) and `mean_regret` the steps "
        "beyond the shortest paths, summed over the trial's episodes.",
        "",
        _summary_markdown(summaries),
        "",
        "Per episode (mean steps ± 95% CI, success rate):",
        "",
        _episode_markdown(summaries),
        "",
        "Exact optimum of episodes 2+: the shortest path (Manhattan distance from each episode's "
        f"start), {oracle_summary['later_shortest']:.3f} steps on average here (what the oracle "
        f"takes); the tolerance tested is a mean excess of at most {EXCESS_TOLERANCE} step. "
        "Episode 1 has no such closed form (the optimal search is a travelling-salesman-like "
        "problem); the search-return agent is the hand-designed comparison.",
        "",
        "## Findings",
        "",
        findings_section(table),
        "",
        "![steps to goal by episode](steps_by_episode.png)",
        "",
        "One held-out trial, episode by episode (RL^2 above, search-return below; the first "
        "trial whose RL^2 episode 1 is at least the median length):",
        "",
        "![trajectories](trajectories.png)",
        "",
        "Training curve (mean trial return per update): ![training](training.png)",
        "",
        "Config: `" + config_text(config) + "`.",
        "",
        f"Wall time of this invocation (training or reloading, evaluation, outputs): "
        f"{times[0]:.0f} s; time spent in training chunks (summed over resumes, from the "
        f"checkpoint): {times[1]:.0f} s.",
        "",
        machine_line(),
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
