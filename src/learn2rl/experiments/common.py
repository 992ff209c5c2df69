"""Shared pieces of the named experiments: evaluate agents side by side and write the outputs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from learn2rl import baselines
from learn2rl.evaluation import EvalResult, ci95, evaluate
from learn2rl.plots import plot_regret
from learn2rl.report import (
    machine_line,
    markdown_table,
    rich_table,
    write_results_json,
)
from learn2rl.tasks.base import TaskFamily
from learn2rl.types import Agent

EVAL_SEED = 1234  # the evaluation key; the same for every agent, so they face the same draws


def baseline_agents(
    family: TaskFamily,
    num_pulls: int,
    names: Sequence[str] | None = None,
) -> list[Agent]:
    names = baselines.applicable(family) if names is None else names
    return [baselines.get(name, family, num_pulls) for name in names]


def compare(
    agents: Sequence[Agent], family: TaskFamily, num_episodes: int, num_tasks: int, console=None
) -> list[EvalResult]:
    """Evaluate every agent on the same first ``num_tasks`` test-split tasks with the same key."""
    tasks = family.tasks(num_tasks, "test")
    key = jax.random.PRNGKey(EVAL_SEED)
    results = []
    for agent in agents:
        tic = time.perf_counter()
        results.append(evaluate(agent, family, tasks, num_episodes, key))
        if console is not None:
            console.print(
                f"  evaluated {agent.name:<14} on {num_tasks} held-out tasks "
                f"({time.perf_counter() - tic:.1f}s)"
            )
    return results


ACTION_SELECTION_TASKS = 500  # training-split tasks RL^2's test-time action choice is made on


def rl2_action_selection(learner, state, name: str, family):
    """A trained RL^2 agent that acts by sampling its policy or by its most likely action,
    whichever earns more on ``ACTION_SELECTION_TASKS`` tasks of the *training* split (never test
    tasks), with a note of the choice and both scores (an ``Experiment.learned_agent``).

    An RL^2 policy that keeps some randomness after training can do better acting greedily: its
    exploration is meant to live in the recurrent state, and the leftover sampling noise then
    only costs reward (docs/learners/rl2.md measures both)."""
    tasks = family.tasks(ACTION_SELECTION_TASKS, "train")
    key = jax.random.PRNGKey(EVAL_SEED + 1)
    agents = {
        mode: learner.agent(state.params, greedy=mode == "greedy", name=name)
        for mode in ("sampled", "greedy")
    }
    scores = {
        mode: float(
            evaluate(agent, family, tasks, learner.config.num_episodes, key).total_rewards.mean()
        )
        for mode, agent in agents.items()
    }
    chosen = max(scores, key=scores.get)
    return agents[chosen], {"actions": chosen, "scores": scores}


def scores_result(name: str, task: str, scores) -> EvalResult:
    """Per-run scores (final returns, fresh episodes' returns) as an ``EvalResult`` of one
    one-step trial per score, for experiments that score agents without a task family."""
    values = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    return EvalResult(
        agent=name,
        task=task,
        rewards=values,
        regrets=np.full_like(values, np.nan),
        valid=np.ones(values.shape, bool),
        actions=np.zeros(values.shape, np.int32),
        num_tasks=len(values),
        num_seeds=1,
    )


def paired_difference(a: EvalResult, b: EvalResult) -> tuple[float, float]:
    """Mean and 95% CI of total reward a - b on the same tasks (far tighter than either alone)."""
    diff = a.total_rewards - b.total_rewards
    return float(diff.mean()), ci95(diff)


def write_outputs(
    out: Path,
    results: Sequence[EvalResult],
    title: str,
    intro: str,
    extra_sections: Sequence[str] = (),
    extra_json: dict[str, Any] | None = None,
    reference: dict[str, float] | None = None,
    console=None,
    rows: Sequence[dict[str, Any]] | None = None,
    regret_plot: bool = True,
) -> list[dict]:
    """results.json, report.md and regret.png in ``out``; prints the table to ``console``.
    ``rows`` replaces the results' own summaries (e.g. rows with intervals over seeds)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = rows if rows is not None else [r.summary() for r in results]
    rows = sorted(rows, key=lambda row: -row["mean_total_reward"])
    write_results_json(rows, out / "results.json", extra_json)
    if regret_plot:
        plot_regret(results, out / "regret.png")
    lines = [
        f"# {title}",
        "",
        intro,
        "",
        markdown_table(rows, reference),
        "",
        "![cumulative regret](regret.png)" if regret_plot else "",
        "",
        *extra_sections,
        "",
        machine_line(),
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    if console is not None:
        console.print(rich_table(rows, title))
    return rows


def train_learner(name: str, config, out: Path, progress: bool = True, console=None, learner=None):
    """Meta-train learner ``name`` with ``config`` into ``out``; returns ``(learner, state)``.

    A run already in ``out`` is continued (or, if it finished, just reloaded), so re-running an
    experiment re-evaluates instead of retraining; a run there with another config is an error.
    ``learner``: a prebuilt learner object to train (``runner.train``'s).
    """
    from learn2rl import checkpoint, runner

    out = Path(out)
    resume = checkpoint.exists(out / runner.CHECKPOINT_DIR)
    if resume and console is not None:
        console.print(f"  {out} holds a run: continuing it")
    return runner.train(
        name, config, out, resume=resume, progress=progress, console=console, learner=learner
    )


def findings_section(findings: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of tested claims: ``{"claim", "measured", "criterion", "passed"}`` each."""
    lines = ["| finding (paper) | measured | criterion | holds |", "|---|---|---|---|"]
    for f in findings:
        lines.append(
            f"| {f['claim']} | {f['measured']} | {f['criterion']} | "
            f"{'yes' if f['passed'] else '**no**'} |"
        )
    return "\n".join(lines)


def finding(claim: str, measured: str, criterion: str, passed: bool) -> dict[str, Any]:
    """One tested claim of a reproduction (reports show them with ``findings_section``)."""
    return {"claim": claim, "measured": measured, "criterion": criterion, "passed": bool(passed)}
