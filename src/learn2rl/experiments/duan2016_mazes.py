"""RL^2 Table 3 (Duan et al. 2016, arXiv 1611.02779, Sec. 3.3): navigating unseen mazes, twice.

A trial is two episodes in the same maze with the same hidden target. Duan et al. report, on
held-out mazes, the success rate of each episode and the mean length of the *successful* episodes:
52.4 steps in episode 1 and 39.1 in episode 2 on 5x5 mazes (success 99.3% / 99.6%), 180.1 ->
151.8 on 9x9 mazes: the agent remembers where the target was and goes there faster the second
time. Here the mazes are ``learn2rl.tasks.maze`` (a gridworld with a first-person symbolic view
instead of ViZDoom pixels; docs/tasks/mazes.md), so lengths are in other units: we compare the
*drop* from episode 1 to episode 2 and the distance to the shortest path, not raw lengths
(``learn2rl.analysis.episodes``). RL^2 (GRU, A2C) runs once on each test-pool maze (never seen in
training) beside the maze baselines ``oracle`` (shortest paths, privileged) and ``random``.

``learn2rl reproduce duan2016-mazes [--quick] [--seeds N] --out DIR``.
"""

from __future__ import annotations

import jax
import numpy as np

from learn2rl import plots
from learn2rl.analysis import episodes
from learn2rl.errors import Learn2RLError
from learn2rl.experiments.spec import Analysis, Experiment, Figure, Finding, Learned
from learn2rl.learners.rl2 import Config
from learn2rl.report import episodes_markdown, markdown_grid
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


def episode_table(outcome, result) -> dict[str, np.ndarray]:
    """``episodes.episode_table`` of one agent's result against each maze's shortest path (the
    same in both episodes, which start from the same cell and heading)."""
    if not isinstance(outcome.family, maze.Maze):
        raise Learn2RLError(f"duan2016-mazes needs a maze/* task, got {outcome.family}")
    tasks = outcome.tasks
    distances = np.asarray(jax.jit(jax.vmap(maze.action_distances))(tasks))
    shortest = distances[np.arange(len(distances)), tasks.start, tasks.start_heading]
    return episodes.episode_table(result, outcome.num_episodes, shortest)


def _summaries(outcome) -> dict[str, dict]:
    """Every agent's summary over successful episodes (Table 3's lengths), seeds pooled."""
    tables = {name: episode_table(outcome, outcome.merged(name)) for name in outcome.results}
    return {name: episodes.summarize(t, successful_only=True) for name, t in tables.items()}


def _success(outcome):
    ep1, ep2 = outcome.analyses["episodes"]["rl2"]["success_per_episode"]
    return min(ep1, ep2), f"success {ep1:.3f} / {ep2:.3f}"


def _drop(outcome):
    s = outcome.analyses["episodes"]["rl2"]
    return s["drop"] - s["drop_ci95"], (
        f"{s['first_steps']:.1f} -> {s['later_steps']:.1f} steps; paired drop {s['drop']:.1f} ± "
        f"{s['drop_ci95']:.1f} on the {s['paired_fraction']:.1%} of trials where both episodes "
        "succeeded"
    )


def _directed(outcome):
    s = outcome.analyses["episodes"]
    ours, walk = s["rl2"]["success_per_episode"][0], s["random"]["success_per_episode"][0]
    return ours - walk, f"RL^2 success {ours:.3f} vs random {walk:.3f}"


def _lengths_figure(outcome, path):
    title = f"{outcome.family.family_id}: held-out mazes, 2 episodes per trial"
    plots.plot_episodes(outcome.analyses["episodes"], path, title, "mean successful length",
                        "episode of the trial (same maze, same target)")  # fmt: skip


def _sections(outcome) -> list[str]:
    family, s = outcome.family, outcome.analyses["episodes"]
    rl2, paper = s["rl2"], PAPER.get(family.size)
    lines = [
        f"## Episode lengths\n\nRL^2 is meta-trained on the {family.num_train_layouts} training "
        f"mazes of `{family.family_id}` and evaluated on *test-pool* mazes. A trial is 2 episodes "
        "from the same start in the same maze with the same hidden target; an episode ends at the "
        f"target or after {family.episode_length} actions. Lengths count actions (a move or a "
        "90-degree turn), only over episodes that reached the target; the paired drop counts only "
        "trials where both did. The table's mean regret is the trial's actions beyond the "
        "shortest path, summed over both episodes (a failed episode counts the step limit).\n",
        *episodes_markdown(s),
        "\nShortest path (the oracle's length in both episodes): "
        f"{rl2['shortest_per_episode'][0]:.2f} actions on average. RL^2's successful episodes "
        f"take {rl2['excess_per_episode'][0]:.1f} actions beyond it in episode 1 and "
        f"{rl2['excess_per_episode'][1]:.1f} in episode 2; "
        f"ratio episode 2 / episode 1: {rl2['ratio']:.2f}.\n",
    ]
    if paper is not None:
        header = ["paper (ViZDoom)", "success ep 1", "success ep 2", "length ep 1",
                  "length ep 2", "drop", "ratio"]  # fmt: skip
        row = [*paper, round(paper[2] - paper[3], 1), round(paper[3] / paper[2], 2)]
        lines += [markdown_grid(header, [["RL^2, Duan et al. 2016", *row]]), ""]
    return lines


FINDINGS = (
    Finding("RL^2 finds the target in unseen mazes (paper: 99.3% / 99.6% on 5x5)", _success,
            f">= {MIN_SUCCESS} in both episodes", lambda low: low >= MIN_SUCCESS),
    Finding("the second visit is shorter (paper: 52.4 -> 39.1 steps on 5x5)", _drop,
            "paired drop > 0 (95% CI above 0)", lambda low: low > 0),
    Finding("episode 1 is a directed search, not a random walk", _directed,
            "RL^2 success higher by at least 0.2", lambda gap: gap >= 0.2),
)  # fmt: skip

SPEC = Experiment(
    id="duan2016-mazes",
    paper="Duan et al. 2016 (arXiv 1611.02779)",
    section="Table 3",
    title="RL^2 Table 3: maze navigation, two episodes per maze",
    learned=(Learned("rl2", "rl2", CONFIG, QUICK_CONFIG),),
    baselines=("oracle", "random"),
    findings=FINDINGS,
    intro=(
        "RL^2 (GRU-128, A2C, gamma 0.99) against the shortest-path oracle and a uniformly random "
        "policy (the scale of an agent that neither explores nor remembers). Mean total reward is "
        "the trial's reward: +1 at the target, -0.04 per action and a penalty per wall bump."
    ),
    num_test_tasks=1000,
    quick_test_tasks=1000,
    analyses=(Analysis("episodes", _summaries),),
    figures=(Figure("lengths.png", "Lengths and success by episode", _lengths_figure),),
    sections=_sections,
    regret=lambda outcome, result: episode_table(outcome, result)["excess"].sum(axis=1),
    regret_plot=False,
)
