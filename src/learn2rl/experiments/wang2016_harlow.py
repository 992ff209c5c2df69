"""Wang et al. 2016 (arXiv 1611.05763): learning to learn on the Harlow task.

Task: ``harlow/vectors`` (``learn2rl.tasks.harlow``). A task is a pair of novel objects (random
8-dimensional feature vectors; one is rewarded); an RL^2 trial shows the pair 6 times, each time
in random left/right places (one presentation = one episode of one step; Harlow called a
presentation a "trial"). Picking the rewarded object pays 1, the other 0.

Harlow (1949) found that monkeys, after many such problems, solve a new one after a single
presentation: presentation 1 is a guess (50%), presentations 2-6 are near 100% correct. Wang et
al. reproduced this with a meta-trained recurrent agent, and showed the learning-to-learn curve:
across meta-training, accuracy on presentations 2-6 rises while presentation 1 stays at chance.
Here RL^2 is evaluated at several points of meta-training (the training is run in stages with
``runner.train(stop_at=...)``) and, at the end, beside

- ``random``: a coin flip (50% on every presentation);
- ``wsls-objects``: win-stay, lose-shift on *objects*, the optimal agent: a guess on presentation
  1, then always the rewarded object (expected total 0.5 + 5 = 5.5);
- ``wsls-sides``: win-stay, lose-shift on *sides* (a position habit): 50% on every presentation,
  since the places are reshuffled; it shows that the task needs memory of object identity.

The reference agents live in ``learn2rl.baselines.harlow``.

``learn2rl reproduce wang2016-harlow [--quick] --out DIR``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np

from learn2rl import checkpoint, runner
from learn2rl.baselines.harlow import reference_agents
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import EvalResult, ci95, evaluate
from learn2rl.experiments.common import (
    EVAL_SEED,
    finding,
    tested_findings_footer,
    train_rl2,
)
from learn2rl.learners.rl2 import Config
from learn2rl.logging import read_metrics
from learn2rl.plots import plot_training
from learn2rl.report import write_results_json
from learn2rl.tasks.harlow import HarlowTask

TASK = "harlow/vectors"
PRESENTATIONS = 6  # per RL^2 trial (Harlow 1949; Wang et al. 2016)
CONFIG = Config(
    task=TASK,
    num_episodes=PRESENTATIONS,
    algorithm="a2c",
    cell="gru",
    hidden_size=128,  # GRU-48 did not leave chance in 1500 updates (docs/results)
    num_tasks=128,
    num_updates=8000,
    updates_per_chunk=250,
    learning_rate=2e-3,
    final_learning_rate=5e-4,
    gamma=0.9,
    gae_lambda=1.0,
    entropy_coef=0.05,
    final_entropy_coef=0.0,
)
QUICK_CONFIG = CONFIG.replace(num_updates=3000)
# Updates after which RL^2 is evaluated during meta-training (multiples of updates_per_chunk).
STOPS = (0, 250, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000, 8000)
CURVE_FILE = "learning_curve.json"


# --- analysis --------------------------------------------------------------------------------
def accuracy_by_presentation(result: EvalResult, family: HarlowTask) -> dict:
    """Fraction of correct choices at each presentation (one per episode of the RL^2 trial), and
    on presentation 1 vs presentations 2.., with 95% CIs over test tasks x seeds."""
    if result.episodes is None:
        raise Learn2RLError("accuracy_by_presentation needs EvalResult.episodes")
    correct = (result.rewards >= family.correct_reward) & result.valid
    presentations = int(result.episodes.max()) + 1
    # One step per episode, so step k is presentation k + 1.
    per_step = correct[:, :presentations].astype(np.float64)
    rest = per_step[:, 1:].mean(axis=1)
    return {
        "agent": result.agent,
        "accuracy": per_step.mean(axis=0).tolist(),
        "ci95": [ci95(per_step[:, k]) for k in range(presentations)],
        "first": float(per_step[:, 0].mean()),
        "first_ci95": ci95(per_step[:, 0]),
        "rest": float(rest.mean()),
        "rest_ci95": ci95(rest),
        "num_trials": int(per_step.shape[0]),
    }


def _evaluate(agent, family, tasks, num_episodes):
    return evaluate(agent, family, tasks, num_episodes, jax.random.PRNGKey(EVAL_SEED))


# --- plots ----------------------------------------------------------------------------------
def plot_presentations(accuracies: list[dict], path: Path) -> Path:
    from learn2rl.plots import plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for acc in accuracies:
        x = np.arange(1, len(acc["accuracy"]) + 1)
        ax.errorbar(x, acc["accuracy"], yerr=acc["ci95"], marker="o", capsize=3, label=acc["agent"])
    ax.axhline(0.5, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("presentation of the object pair (Harlow's trial)")
    ax.set_ylabel("fraction correct")
    ax.set_ylim(0.3, 1.03)
    ax.set_title("Harlow task: held-out object pairs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_learning_curve(curve: list[dict], path: Path) -> Path:
    from learn2rl.plots import plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    updates = np.array([point["update"] for point in curve])
    for key, label in [("first", "presentation 1"), ("rest", "presentations 2-6")]:
        mean = np.array([point[key] for point in curve])
        half = np.array([point[f"{key}_ci95"] for point in curve])
        (line,) = ax.plot(updates, mean, marker="o", label=label)
        ax.fill_between(updates, mean - half, mean + half, color=line.get_color(), alpha=0.2)
    ax.axhline(0.5, color="gray", lw=0.8, ls="--")
    ax.set_xlabel("meta-training updates")
    ax.set_ylabel("fraction correct (held-out pairs)")
    ax.set_ylim(0.3, 1.03)
    ax.set_title("learning to learn: RL^2 across meta-training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# --- the experiment -------------------------------------------------------------------------
def learning_curve(
    config: Config,
    directory: Path,
    stops,
    num_tasks: int,
    progress: bool = True,
    console=None,
    curve_path: Path | None = None,
) -> list[dict]:
    """Meta-train in stages (``runner.train(stop_at=...)``) and evaluate RL^2 on ``num_tasks``
    held-out pairs after each stage. Points already stored in ``curve_path`` are kept, so running
    again continues; a stop that an earlier, interrupted run passed without evaluating is skipped.
    """
    stored = {}
    if curve_path is not None and curve_path.exists():
        stored = {point["update"]: point for point in json.loads(curve_path.read_text())}
    ckpt_dir = directory / runner.CHECKPOINT_DIR
    family = None
    tasks = None
    for stop in sorted({s for s in stops if s <= config.num_updates} | {config.num_updates}):
        if stop in stored:
            continue
        done = int(checkpoint.load_meta(ckpt_dir)["update"]) if checkpoint.exists(ckpt_dir) else 0
        if done > stop:
            continue
        learner, state = runner.train(
            "rl2",
            config,
            directory,
            resume=checkpoint.exists(ckpt_dir),
            progress=progress,
            console=console,
            stop_at=stop,
        )
        if family is None:
            family = learner.family
            tasks = family.tasks(num_tasks, "test")
        result = _evaluate(learner.agent(state.params), family, tasks, config.num_episodes)
        point = {"update": int(state.update), **accuracy_by_presentation(result, family)}
        stored[point["update"]] = point
        if console is not None:
            console.print(
                f"  update {point['update']:>5}: presentation 1 {point['first']:.3f}, "
                f"presentations 2-{config.num_episodes} {point['rest']:.3f}"
            )
        if curve_path is not None:
            curve_path.write_text(json.dumps([stored[k] for k in sorted(stored)], indent=1))
    return [stored[k] for k in sorted(stored)]


def run(
    out: Path,
    quick: bool = False,
    progress: bool = True,
    console=None,
    config: Config | None = None,
    num_test_tasks: int | None = None,
    num_curve_tasks: int | None = None,
    stops=STOPS,
) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config = config or (QUICK_CONFIG if quick else CONFIG)
    num_test_tasks = num_test_tasks or (2000 if quick else 5000)
    num_curve_tasks = num_curve_tasks or (1000 if quick else 2000)
    if console is not None:
        console.print(
            f"[bold]wang2016-harlow[/bold]: RL^2 on {config.task}, {config.num_episodes} "
            f"presentations, {config.num_updates} updates x {config.num_tasks} pairs -> {out}"
        )
    tic = time.perf_counter()
    curve = learning_curve(
        config, out / "rl2", stops, num_curve_tasks, progress, console, out / CURVE_FILE
    )
    # The last stop is the end of training: this only reloads the finished run.
    learner, state = train_rl2(config, out / "rl2", progress=False)
    stage_seconds = time.perf_counter() - tic
    meta = checkpoint.load_meta(out / "rl2" / runner.CHECKPOINT_DIR)
    family: HarlowTask = learner.family
    tasks = family.tasks(num_test_tasks, "test")
    agents = [learner.agent(state.params, name="rl2"), *reference_agents(family)]
    results = [_evaluate(agent, family, tasks, config.num_episodes) for agent in agents]
    accuracies = {r.agent: accuracy_by_presentation(r, family) for r in results}
    rows = []
    for result in results:
        row = result.summary()
        row["presentations"] = accuracies[result.agent]
        rows.append(row)
    rows.sort(key=lambda r: -r["mean_total_reward"])

    rl2 = accuracies["rl2"]
    optimum = 0.5 * family.correct_reward + 0.5 * family.incorrect_reward
    optimum += (config.num_episodes - 1) * family.correct_reward
    first, rest = curve[0], curve[-1]
    worst_first = max(curve, key=lambda p: abs(p["first"] - 0.5))
    findings = [
        finding(
            "After one presentation of a new pair RL^2 picks the rewarded object: accuracy on "
            "presentations 2-6 is far above presentation 1",
            f"presentations 2-{config.num_episodes}: {rl2['rest']:.3f} ± {rl2['rest_ci95']:.3f}; "
            f"presentation 1: {rl2['first']:.3f} ± {rl2['first_ci95']:.3f}",
            "2+ CI lower bound > 0.9",
            rl2["rest"] - rl2["rest_ci95"] > 0.9,
        ),
        finding(
            "Presentation 1 is at chance (nothing can be known about a new pair yet)",
            f"{rl2['first']:.3f} ± {rl2['first_ci95']:.3f}",
            "CI contains 0.5",
            abs(rl2["first"] - 0.5) <= rl2["first_ci95"],
        ),
        finding(
            "Learning to learn: across meta-training, accuracy on presentations 2-6 rises from "
            "chance while presentation 1 stays at chance",
            f"2+: {first['rest']:.3f} at update {first['update']} -> {rest['rest']:.3f} at update "
            f"{rest['update']}; presentation 1 furthest from 0.5: {worst_first['first']:.3f} "
            f"(update {worst_first['update']})",
            "2+ rises by > 0.3; presentation 1 within 0.05 of 0.5 at every point",
            rest["rest"] - first["rest"] > 0.3 and abs(worst_first["first"] - 0.5) < 0.05,
        ),
    ]
    plot_presentations(
        [accuracies[name] for name in ("rl2", "wsls-objects", "wsls-sides", "random")],
        out / "presentations.png",
    )
    plot_learning_curve(curve, out / "learning_curve.png")
    plot_training(read_metrics(out / "rl2" / "metrics.jsonl"), out / "training.png")
    extra = {
        "config": config.to_dict(),
        "findings": findings,
        "quick": quick,
        "learning_curve": curve,
        "optimal_total_reward": optimum,
        "train_seconds": meta.get("train_seconds"),
        "seconds_in_this_call_before_final_eval": round(stage_seconds, 1),
    }
    write_results_json(rows, out / "results.json", extra)
    _write_report(out, quick, config, family, rows, curve, findings, optimum, meta, num_curve_tasks)
    if console is not None:
        _print_table(console, rows)
    return {"rows": rows, "findings": findings, "learning_curve": curve}


def _write_report(out, quick, config, family, rows, curve, findings, optimum, meta, curve_tasks):
    n = config.num_episodes
    num_tasks = rows[0]["num_tasks"]
    lines = [
        "# Wang et al. 2016: the Harlow task (learning to learn)",
        "",
        f"Command: `learn2rl reproduce wang2016-harlow{' --quick' if quick else ''} --out DIR`.",
        "",
        f"RL^2 ({config.cell.upper()}-{config.hidden_size}, {config.algorithm.upper()}, gamma "
        f"{config.gamma}) meta-trained for {config.num_updates} updates of {config.num_tasks} "
        f"object pairs ({meta.get('train_seconds', 0):.0f} s in training chunks, compilation "
        f"included). Task `{family.family_id}`: each pair is two objects of "
        f"{family.num_features} N(0,1) features; {n} presentations per pair, each in random "
        f"left/right places (one presentation = one episode of one step); reward "
        f"{family.correct_reward:g} for the rewarded object, {family.incorrect_reward:g} for the "
        f"other. Every agent runs once (one seed) on each of {num_tasks} held-out pairs with the "
        f"same evaluation key; the learning curve uses the first {curve_tasks} of them.",
        "",
        f"Exact optimum: {optimum:g} expected total reward (presentation 1 is a coin flip, then "
        "always right); the tests check the win-stay-lose-shift-on-objects agent against it "
        "within two 95%-CI half-widths, and random / win-stay-lose-shift-on-sides against 50% "
        "per presentation.",
        "",
        "| agent | total reward | 95% CI | presentation 1 | presentations 2-"
        f"{n} | per presentation 1..{n} |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        acc = row["presentations"]
        per = " / ".join(f"{a:.2f}" for a in acc["accuracy"])
        lines.append(
            f"| {row['agent']} | {row['mean_total_reward']:.3f} | ±{row['ci95']:.3f} | "
            f"{acc['first']:.3f} ± {acc['first_ci95']:.3f} | {acc['rest']:.3f} ± "
            f"{acc['rest_ci95']:.3f} | {per} |"
        )
    lines += [
        "",
        "Accuracy = fraction of correct choices; ± = 95% CI (normal approximation over pairs).",
        "",
        "![accuracy per presentation](presentations.png)",
        "",
        "## Across meta-training",
        "",
        f"| update | presentation 1 | presentations 2-{n} |",
        "|---|---|---|",
        *(
            f"| {p['update']} | {p['first']:.3f} ± {p['first_ci95']:.3f} | {p['rest']:.3f} ± "
            f"{p['rest_ci95']:.3f} |"
            for p in curve
        ),
        "",
        "![learning to learn](learning_curve.png)",
        "",
        *tested_findings_footer(findings, config),
    ]
    (out / "report.md").write_text("\n".join(lines))


def _print_table(console, rows):
    from rich.table import Table

    table = Table(title="Harlow task: fraction correct on held-out object pairs")
    for column in ["agent", "total reward", "presentation 1", "presentations 2+"]:
        table.add_column(column, justify="left" if column == "agent" else "right")
    for row in rows:
        acc = row["presentations"]
        table.add_row(
            row["agent"],
            f"{row['mean_total_reward']:.3f} ± {row['ci95']:.3f}",
            f"{acc['first']:.3f} ± {acc['first_ci95']:.3f}",
            f"{acc['rest']:.3f} ± {acc['rest_ci95']:.3f}",
        )
    console.print(table)
