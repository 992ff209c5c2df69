"""Wang et al. 2019 (POET): stepping stones solve courses that ES from scratch cannot.

"Paired Open-Ended Trailblazer (POET)" (arXiv 1901.01753), Sec. 4: environments created and
solved by POET are not solved by ES run directly on them with the same budget, and POET without
transfers gets less far. CPU-scale analogue on the point-mass obstacle courses
(``learn2rl.tasks.obstacle_course``; the learner: ``learn2rl.learners.poet``):

- ``poet``: POET from the flat course (``CONFIG``), one run per training seed;
- ``poet-no-transfer``: the same without transfers (a child keeps its parent's agent);
- ``es-direct``: for each POET run, the environment it solved that lies farthest from the flat
  course (Euclidean distance of the knobs, POET's own novelty metric), then ES from scratch on
  that environment alone with as many episodes as the whole POET run used (ES steps,
  evaluations, transfers and mutation rounds together). Cached beside the POET run
  (``<run>/es-direct``), so a rerun reuses it.

The table's rows are returns on those environments: POET's paired agent (its best score while the
environment was active) and ES from scratch (its best score over the run). Solved means a score
of at least 230 (POET's threshold; ``SOLVED_SCORE``).

``learn2rl reproduce wang2019-poet [--quick] [--seeds N] --out DIR``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from learn2rl import checkpoint, runner
from learn2rl.analysis.seeds import mean_and_interval
from learn2rl.experiments.common import scores_result, train_learner
from learn2rl.experiments.spec import Experiment, Figure, Finding, Learned
from learn2rl.learners.poet import Config
from learn2rl.plots import figure
from learn2rl.report import markdown_grid
from learn2rl.tasks.obstacle_course import SOLVED_SCORE

TASK = "poet/course"
# CPU scale: 4 active pairs, 64 perturbations, a mutation round every 25 iterations (official:
# 25 pairs, 512 perturbations, every 100-200 iterations); the thresholds are the official ones.
CONFIG = Config(
    capacity=4,
    population_size=64,
    num_updates=300,
    updates_per_chunk=50,
    mutation_interval=25,
    transfer_interval=25,
)
QUICK_CONFIG = CONFIG.replace(num_updates=200)
NAMES = ("poet", "poet-no-transfer")
ES_CHUNK = 100  # ES from scratch runs whole chunks: at least as many episodes as POET used


def _distance(knobs: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(knobs, np.float64), axis=-1)


def _summary(envs: dict) -> dict:
    """What a run created and solved: counts, the farthest solved course, every course."""
    solved = np.asarray(envs["solved"], bool)
    distance = _distance(envs["knobs"])
    farthest = int(np.argmax(np.where(solved, distance, -1.0))) if solved.any() else None
    return {
        "environments": len(solved),
        "solved": int(solved.sum()),
        "farthest_solved_distance": float(distance[farthest]) if farthest is not None else 0.0,
        "farthest_solved": None
        if farthest is None
        else {
            "knobs": [round(float(v), 3) for v in envs["knobs"][farthest]],
            "seed": int(envs["seeds"][farthest]),
            "best_score": float(envs["best_score"][farthest]),
            "admitted_at": int(envs["admitted_at"][farthest]),
        },
        # Per course: roughness, stump height, gap width, solved, best score, admission score.
        "courses": [
            [round(float(v), 3) for v in k] + [bool(s), round(float(b), 1), round(float(a), 1)]
            for k, s, b, a in zip(
                envs["knobs"], solved, envs["best_score"], envs["admission_score"], strict=True
            )
        ],
        "admitted_solved": int(np.sum(np.asarray(envs["admission_score"])[1:] >= SOLVED_SCORE)),
    }


def _es_direct(learner, state, target, where: Path, progress=False, console=None) -> dict:
    """ES from scratch on ``target``, the farthest course a POET run solved (its summary's
    ``farthest_solved``), with as many episodes as the run used."""
    c = learner.config
    if target is None:
        return {"target": None}
    budget = int(state.rollouts)
    chunk = ES_CHUNK
    config = c.replace(
        capacity=1,
        mutation_interval=0,
        start=tuple(target["knobs"]),
        start_seed=target["seed"],
        num_updates=chunk * max(1, math.ceil(budget / (c.population_size + 1) / chunk)),
        updates_per_chunk=chunk,
    )
    es, es_state = train_learner("poet", config, where, progress, console)
    archive = es.environments(es_state)
    meta = checkpoint.load_meta(where / runner.CHECKPOINT_DIR)
    return {
        "target": target,
        "episodes": int(es_state.rollouts),
        "poet_episodes": budget,
        "best_score": float(archive["best_score"][0]),
        "final_score": float(np.asarray(es_state.pairs.score)[0]),
        "solved": bool(archive["solved"][0]),
        "train_seconds": float(meta.get("train_seconds", 0.0)),
    }


def evaluate(outcome, num_tasks: int) -> dict:
    """Summaries of every run, then ES from scratch on each POET run's farthest solved course."""
    summaries = {
        name: [_summary(learner.environments(state)) for learner, state in outcome.trained[name]]
        for name in NAMES
    }
    direct = [
        _es_direct(learner, state, summary["farthest_solved"], where / "es-direct")
        for (learner, state), summary, where in zip(
            outcome.trained["poet"], summaries["poet"], outcome.train_dirs["poet"], strict=True
        )
    ]
    outcome.analyses["runs"] = summaries
    outcome.analyses["es_direct"] = direct
    poet = [d["target"]["best_score"] for d in direct if d["target"] is not None]
    es = [d["best_score"] for d in direct if d["target"] is not None]
    return {
        "poet": [scores_result("poet", TASK, poet)],
        "es-direct": [scores_result("es-direct", TASK, es)],
    }


# --- findings ----------------------------------------------------------------------------------
def _text(values) -> str:
    values = np.asarray(values, np.float64)
    mean, half = mean_and_interval(values)
    return f"{mean:.2f} ± {half:.2f}" if np.isfinite(half) else f"{mean:.2f}"


def _unsolved_by_es(outcome) -> tuple[float, str]:
    rows = [d for d in outcome.analyses["es_direct"] if d["target"] is not None]
    beaten = [d for d in rows if not d["solved"]]
    scores = ", ".join(f"{d['best_score']:.0f}" for d in rows)
    return float(len(beaten)), (
        f"{len(beaten)} of {len(rows)} runs: ES from scratch, with as many episodes as POET used, "
        f"does not solve the farthest course POET solved (ES best scores {scores})"
    )


def _fewer_without_transfers(outcome) -> tuple[float, str]:
    """Paired by training seed (the same first agent and random streams): the lower end of the
    95% t interval of the difference in the farthest solved course."""
    runs = outcome.analyses["runs"]
    with_t = np.array([r["farthest_solved_distance"] for r in runs["poet"]])
    without = np.array([r["farthest_solved_distance"] for r in runs["poet-no-transfer"]])
    solved_with = [r["solved"] for r in runs["poet"]]
    solved_without = [r["solved"] for r in runs["poet-no-transfer"]]
    mean, half = mean_and_interval(with_t - without)
    lower = mean - half if np.isfinite(half) else float("nan")
    return float(lower), (
        f"farthest solved course (distance of its knobs from flat, m): poet {_text(with_t)}, "
        f"without transfers {_text(without)}, paired difference {_text(with_t - without)}; "
        f"courses solved {_text(solved_with)} vs {_text(solved_without)}"
    )


def _sections(outcome) -> list[str]:
    runs, direct = outcome.analyses["runs"], outcome.analyses["es_direct"]
    rows = []
    for seed, (summary, es) in enumerate(zip(runs["poet"], direct, strict=True)):
        target = es["target"]
        rows.append(
            [
                str(seed),
                str(summary["environments"]),
                str(summary["solved"]),
                "-" if target is None else ", ".join(f"{v:g}" for v in target["knobs"]),
                "-" if target is None else f"{target['best_score']:.1f}",
                "-" if target is None else f"{es['best_score']:.1f} ({es['episodes']} episodes)",
                "-" if target is None else ("yes" if es["solved"] else "no"),
            ]
        )
    lines = [
        "### Per POET run: the farthest course it solved, and ES from scratch on it",
        "",
        "Knobs: roughness, stump height, gap width (m). Scores of 230 and more solve a course.",
        "",
        markdown_grid(
            [
                "seed",
                "courses admitted",
                "solved",
                "farthest solved (knobs)",
                "POET's agent",
                "ES from scratch (best)",
                "ES solves it",
            ],
            rows,
        ),
        "",
        "### With and without transfers",
        "",
    ]
    ablation = []
    for name in NAMES:
        summaries = runs[name]
        ablation.append(
            [
                name,
                _text([s["environments"] for s in summaries]),
                _text([s["solved"] for s in summaries]),
                _text([s["admitted_solved"] for s in summaries]),
                _text([s["farthest_solved_distance"] for s in summaries]),
            ]
        )
    lines += [
        markdown_grid(
            [
                "run",
                "courses admitted",
                "courses solved",
                "solved when admitted",
                "farthest solved (m from flat)",
            ],
            ablation,
        ),
        "",
        f"ES-from-scratch training time (not in the total below): "
        f"{sum(d.get('train_seconds', 0.0) for d in direct):.0f} s.",
        "",
    ]
    return lines


def _draw(outcome, path: Path) -> None:
    runs = outcome.analyses["runs"]
    with figure(path, ncols=2, size=(10, 4)) as axes:
        for ax, name in zip(axes, NAMES, strict=True):
            for summary in runs[name]:
                courses = np.asarray([c[:3] for c in summary["courses"]], np.float64)
                solved = np.asarray([c[3] for c in summary["courses"]], bool)
                ax.scatter(courses[solved, 2], courses[solved, 1], marker="o", alpha=0.6)
                ax.scatter(courses[~solved, 2], courses[~solved, 1], marker="x", color="k")
            ax.set_xlabel("gap width (m)")
            ax.set_ylabel("stump height (m)")
            ax.set_title(f"{name}: courses (o solved, x not)")


SPEC = Experiment(
    id="wang2019-poet",
    paper="Wang et al. 2019 (arXiv 1901.01753)",
    section="Sec. 4, ES from scratch on POET's courses; POET without transfers",
    title="POET: courses solved through stepping stones that ES from scratch does not solve",
    intro=(
        "POET (original algorithm) co-evolves point-mass obstacle courses (roughness, stump "
        "height, gap width, terrain seed) and their ES-trained runners, starting from the flat "
        "course; 4 active pairs, 64 perturbations per ES step, a mutation round every 25 "
        "iterations, transfers every 25. ES from scratch then trains a fresh runner on the "
        "farthest course each POET run solved, with as many episodes as the POET run used in "
        f"all. Rows: the best score on those courses (POET's paired agent; ES from scratch); "
        f"{SOLVED_SCORE:g} or more solves a course."
    ),
    learned=tuple(
        Learned(
            name,
            "poet",
            CONFIG.replace(transfers=transfers),
            QUICK_CONFIG.replace(transfers=transfers),
        )
        for name, transfers in zip(NAMES, (True, False), strict=True)
    ),
    evaluate=evaluate,
    regret_plot=False,
    findings=(
        Finding(
            "POET solves courses that ES from scratch does not solve with the same number of "
            "episodes",
            _unsolved_by_es,
            "at least one course",
            lambda count: count >= 1,
        ),
        Finding(
            "Without transfers POET gets less far",
            _fewer_without_transfers,
            "farthest solved course, poet - without transfers paired by seed: 95% interval above 0",
            lambda lower: lower > 0,
        ),
    ),
    sections=_sections,
    figures=(Figure("wang2019-poet-courses.png", "Courses created by each run", _draw),),
    seeds=5,
    quick_seeds=2,
    num_test_tasks=1,
    quick_test_tasks=1,
)
