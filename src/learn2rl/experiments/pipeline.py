"""The one pipeline that runs any ``Experiment`` spec (``run``) or grid of them (``run_suite``).

1. Train every learner of the spec once per training seed (the config's seed, + 1, ...) into
   ``out/<name>/seed-<seed>``, named by the training seed itself; a run already there is
   continued or, if finished, reloaded, so re-running an experiment re-evaluates instead of
   retraining, and seeds run apart (``--seed 3 --seeds 2`` in one process, ``--seeds 3`` in
   another, the same ``--out``) are all found by a later ``--seeds 5``.
2. Evaluate every seed's agent and every baseline on the same held-out tasks with the same key
   (common random numbers: where two agents act alike they get the same rewards). ``Tuned``
   baselines first choose their option on training-split tasks.
3. Run the spec's analyses, check its findings, draw its figures.
4. Tabulate: a learned agent's row is the mean over seeds, with Student's t interval over seeds
   (``analysis.seeds``; the interval over tasks when there is one seed), its per-seed values and
   its best seed (labelled as such). Baselines have one row each. Write report.md, results.json,
   regret.png and training.png.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from learn2rl import baselines, checkpoint, learners, runner
from learn2rl.analysis.seeds import best_of, mean_and_interval
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import EvalResult, ci95, evaluate
from learn2rl.experiments.common import (
    EVAL_SEED,
    finding,
    findings_section,
    paired_difference,
    train_learner,
    write_outputs,
)
from learn2rl.experiments.spec import Experiment, Suite, Tuned
from learn2rl.learners.base import build_config
from learn2rl.logging import read_metrics
from learn2rl.plots import plot_training
from learn2rl.report import config_text, machine_line, write_results_json
from learn2rl.tasks import make


@dataclasses.dataclass
class Outcome:
    """What analyses, findings, figures and sections of a spec see: every agent's results, one
    ``EvalResult`` per training seed for a learned agent (one for a baseline), all on the same
    ``tasks`` of ``family`` and the same draws; the trained ``(learner, state)`` per seed; the
    analyses computed so far and the option each ``Tuned`` baseline chose."""

    results: dict[str, list[EvalResult]]
    num_seeds: int
    family: Any = None
    tasks: Any = None
    num_episodes: int = 0
    trained: dict[str, list[tuple[Any, Any]]] = dataclasses.field(default_factory=dict)
    configs: dict[str, Any] = dataclasses.field(default_factory=dict)
    analyses: dict[str, Any] = dataclasses.field(default_factory=dict)
    tuned: dict[str, float] = dataclasses.field(default_factory=dict)
    notes: dict[str, list[Any]] = dataclasses.field(default_factory=dict)  # spec.learned_agent's
    train_dirs: dict[str, list[Path]] = dataclasses.field(default_factory=dict)  # run dir per seed

    def per_seed(self, name: str) -> np.ndarray:
        """Mean total reward of agent ``name`` on the held-out tasks, one value per seed."""
        return np.array([r.total_rewards.mean() for r in self.results[name]])

    def merged(self, name: str) -> EvalResult:
        """Agent ``name``'s results over every seed as one ``EvalResult`` (rows seed-major)."""
        return _merged(name, self.results[name])

    def difference(self, a: str, b: str) -> tuple[float, float]:
        """Mean total reward of ``a`` minus ``b``, paired on the same tasks and draws, and its 95%
        interval: over seeds when ``a`` or ``b`` has several, else over tasks."""
        pairs = [
            paired_difference(x, y) for x, y in zip(self._seeds(a), self._seeds(b), strict=True)
        ]
        if len(pairs) == 1:
            return pairs[0]
        return mean_and_interval([mean for mean, _ in pairs])

    def _seeds(self, name: str) -> list[EvalResult]:
        found = self.results[name]
        return found if len(found) == self.num_seeds else found * self.num_seeds


def configs_for(spec: Experiment, quick: bool, overrides: Sequence[str], seed: int | None):
    """The config of each learned agent: full or quick, then ``--set`` / ``--seed``. A ``--set``
    field goes to every learner that has it; one that no learner has is an error."""
    out = {}
    used = set()
    for learned in spec.learned:
        config_cls, _ = learners.get(learned.learner)
        fields = {f.name for f in dataclasses.fields(config_cls)}
        mine = [pair for pair in overrides if pair.split("=", 1)[0].replace("-", "_") in fields]
        used.update(mine)
        base = learned.quick if quick else learned.config
        out[learned.name] = build_config(config_cls, base, None, mine, seed=seed)
    unused = [pair for pair in overrides if pair not in used]
    if unused:
        names = ", ".join(sorted({learned.learner for learned in spec.learned}))
        raise Learn2RLError(f"--set {unused[0]}: no config field of {spec.id}'s learners ({names})")
    return out


def tune(tuned: Tuned, family, num_episodes: int, console=None) -> float:
    """The value of ``tuned.option`` in ``tuned.grid`` with the highest mean total reward on
    training-split tasks (a key of its own, so tuning never sees the test draws)."""
    tasks = family.tasks(tuned.num_tasks, "train")
    key = jax.random.PRNGKey(EVAL_SEED + 1)
    scores = {}
    for value in tuned.grid:
        agent = baselines.get(tuned.name, family, num_episodes, **{tuned.option: value})
        result = evaluate(agent, family, tasks, num_episodes, key)
        scores[value] = float(result.total_rewards.mean())
    best = max(scores, key=scores.get)
    if console is not None:
        console.print(f"  tuned {tuned.name} {tuned.option} = {best} on {tuned.num_tasks} tasks")
    return best


def train_seeds(spec, configs, num_seeds, train_dir: Path, progress=True, console=None):
    """Train (or reload) every learner x seed under ``train_dir``; returns ``(trained, dirs,
    seconds)``: the (learner, state) and run directory per seed of each learner, and the training
    time of each run directory (summed over its resumes)."""
    trained, dirs, seconds = {}, {}, {}
    for learned in spec.learned:
        config = configs[learned.name]
        trained[learned.name], dirs[learned.name] = [], []
        for s in range(num_seeds):
            seed = config.seed + s
            where = train_dir / learned.name / f"seed-{seed}"
            run = (spec.train or train_learner)(
                learned.learner, config.replace(seed=seed), where, progress, console
            )
            trained[learned.name].append(run)
            dirs[learned.name].append(where)
            meta = checkpoint.load_meta(where / runner.CHECKPOINT_DIR)
            seconds[str(where)] = float(meta.get("train_seconds", 0.0))
    return trained, dirs, seconds


def _evaluate(agent, outcome: Outcome, key, record_obs: bool, console) -> EvalResult:
    tic = time.perf_counter()
    family, tasks = outcome.family, outcome.tasks
    result = evaluate(agent, family, tasks, outcome.num_episodes, key, record_obs=record_obs)
    if console is not None:
        console.print(
            f"  evaluated {agent.name:<14} on {len(jax.tree.leaves(tasks)[0])} held-out tasks "
            f"({time.perf_counter() - tic:.1f}s)"
        )
    return result


def _evaluate_learned(spec: Experiment, outcome: Outcome, key, console) -> None:
    """Every trained seed's agent on the held-out tasks (``spec.learned_agent`` builds it when
    set, its notes kept in ``outcome.notes``)."""
    for name, runs in outcome.trained.items():
        agents, notes = [], []
        for learner, state in runs:
            if spec.learned_agent is None:
                agent, note = learner.agent(state.params, name=name), None
            else:
                agent, note = spec.learned_agent(learner, state, name, outcome.family)
            agents.append(agent)
            notes.append(note)
        if spec.learned_agent is not None:
            outcome.notes[name] = notes
        outcome.results[name] = [
            _evaluate(agent, outcome, key, spec.record_obs, console) for agent in agents
        ]


def _merged(name: str, per_seed: list[EvalResult]) -> EvalResult:
    """One ``EvalResult`` holding every seed's trials (for curves and the tasks-x-seeds count)."""
    if len(per_seed) == 1:
        return dataclasses.replace(per_seed[0], agent=name)
    first = per_seed[0]
    fields = ["rewards", "regrets", "valid", "actions"]
    fields += [f for f in ("episodes", "observations") if getattr(first, f) is not None]
    arrays = {f: np.concatenate([getattr(r, f) for r in per_seed]) for f in fields}
    return dataclasses.replace(first, agent=name, num_seeds=len(per_seed), **arrays)


def _row(result: EvalResult, per_seed: list[EvalResult], regret=None) -> dict[str, Any]:
    row = result.summary()
    if regret is not None:  # the spec's per-trial regret replaces the family's pseudo-regret
        values = np.asarray(regret(result), dtype=np.float64)
        row["mean_regret"], row["regret_ci95"] = float(values.mean()), ci95(values)
    if len(per_seed) > 1:
        per_trial = regret or (lambda r: r.total_regrets)
        totals = [r.total_rewards.mean() for r in per_seed]
        regrets = [np.mean(per_trial(r)) for r in per_seed]
        row["mean_total_reward"], row["ci95"] = mean_and_interval(totals)
        row["mean_regret"], row["regret_ci95"] = mean_and_interval(regrets)
        row["seed_values"] = [float(v) for v in totals]
        row["best_seed"] = best_of(totals)
        row["interval"] = "t interval over training seeds"
    else:
        row["interval"] = "normal interval over held-out tasks"
    return row


def _command(id_: str, quick: bool, seeds, seed, overrides) -> str:
    return " ".join(
        ["learn2rl reproduce", id_]
        + (["--quick"] if quick else [])
        + ([f"--seeds {seeds}"] if seeds is not None else [])
        + ([f"--seed {seed}"] if seed is not None else [])
        + [f"--set {pair}" for pair in overrides]
    )


def _training_figure(trained_dirs: dict[str, list[Path]], path: Path) -> bool:
    """training.png: the logged training return of every learner and seed, if they log one."""
    curves = {}
    for name, dirs in trained_dirs.items():
        for where in dirs:
            rows = (
                read_metrics(where / "metrics.jsonl") if (where / "metrics.jsonl").exists() else []
            )
            if rows and "trial_return" in rows[0]:
                curves[name if len(dirs) == 1 else f"{name} {where.name.replace('-', ' ')}"] = rows
    if curves:
        plot_training(curves, path)
    return bool(curves)


def run(
    spec: Experiment,
    out: Path,
    quick: bool = False,
    seeds: int | None = None,
    overrides: Sequence[str] = (),
    seed: int | None = None,
    progress: bool = True,
    console=None,
    num_test_tasks: int | None = None,
    train_dir: Path | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train, evaluate, analyse, test the findings and write the report of ``spec`` into ``out``.

    ``seeds`` training seeds per learner (default: the spec's, fewer with ``quick``);
    ``overrides`` are ``--set FIELD=VALUE`` pairs and ``seed`` the first training seed, applied to
    every learner's config that has the field; ``num_test_tasks`` replaces the spec's count;
    ``train_dir`` (default ``out``) is where the learners train (a suite shares one);
    ``command`` is what the report names as the command's experiment (default ``spec.id``; a
    suite's cell is ``<suite> --cells <cell>``)."""
    out = Path(out)
    num_seeds = seeds if seeds is not None else (spec.quick_seeds if quick else spec.seeds)
    if num_seeds <= 0:
        raise Learn2RLError(f"--seeds must be positive, got {num_seeds}")
    num_tasks = num_test_tasks or (spec.quick_test_tasks if quick else spec.num_test_tasks)
    configs = configs_for(spec, quick, overrides, seed)
    if console is not None:
        console.print(
            f"[bold]{spec.id}[/bold]: {', '.join(configs)} x {num_seeds} training seed(s), "
            f"{num_tasks} held-out tasks -> {out}"
        )
    train_dir = Path(train_dir) if train_dir is not None else out
    trained, train_dirs, run_seconds = train_seeds(
        spec, configs, num_seeds, train_dir, progress, console
    )
    first = configs[spec.learned[0].name]
    if spec.evaluate is None:
        family = make(spec.task or first.task)
        num_episodes = spec.num_episodes or first.num_episodes
        if callable(num_episodes):
            num_episodes = num_episodes(configs)
        tasks = family.tasks(num_tasks, "test")
    else:  # no task family (functions, not tasks): spec.evaluate scores the learners
        family, tasks, num_episodes = None, None, 0
    outcome = Outcome({}, num_seeds, family, tasks, num_episodes, trained, configs)
    outcome.train_dirs = train_dirs
    key = jax.random.PRNGKey(EVAL_SEED)
    if spec.evaluate is not None:
        outcome.results.update(spec.evaluate(outcome, num_tasks))
    else:
        _evaluate_learned(spec, outcome, key, console)
    for entry in spec.baselines:
        if isinstance(entry, Tuned):
            value = tune(entry, family, num_episodes, console)
            outcome.tuned[f"{entry.name}.{entry.option}"] = value
            agent = baselines.get(entry.name, family, num_episodes, **{entry.option: value})
        else:
            agent = baselines.get(entry, family, num_episodes)
        outcome.results[agent.name] = [_evaluate(agent, outcome, key, spec.record_obs, console)]
    for agent in spec.agents(family, num_episodes) if spec.agents else ():
        outcome.results[agent.name] = [_evaluate(agent, outcome, key, spec.record_obs, console)]
    for analysis in spec.analyses:
        outcome.analyses[analysis.name] = analysis.compute(outcome)
    findings = []
    for f in spec.findings:
        value, text = f.measure(outcome)
        findings.append(finding(f.claim, text, f.criterion, f.holds(value)))
    out.mkdir(parents=True, exist_ok=True)
    for figure in spec.figures:
        figure.draw(outcome, out / figure.file)
    merged = {name: outcome.merged(name) for name in outcome.results}
    regret = (lambda result: spec.regret(outcome, result)) if spec.regret else None
    rows = {name: _row(merged[name], outcome.results[name], regret) for name in outcome.results}
    train_seconds = sum(run_seconds.values())
    spread = "a t interval over seeds" if num_seeds > 1 else "an interval over tasks (one seed)"
    protocol = (
        f"Learned agents: {num_seeds} training seed(s) each, the table shows the mean over seeds "
        f"with {spread}; every agent runs on the same {num_tasks} held-out tasks and reward draws."
        if spec.evaluate is None
        else f"Learned agents: {num_seeds} training seed(s) each."
    )
    intro = (
        f"Command: `{_command(command or spec.id, quick, seeds, seed, overrides)}`. {spec.paper}, "
        f"{spec.section}. {spec.intro} {protocol}"
    )
    sections = ["## Findings (tested)", "", findings_section(findings), ""]
    sections += list(spec.sections(outcome)) if spec.sections else []
    sections += [f"{f.caption}:\n\n![{f.caption}]({f.file})\n" for f in spec.figures]
    for name, per_seed in outcome.results.items():
        if name in trained and len(per_seed) > 1:
            values = ", ".join(f"{v:.2f}" for v in rows[name]["seed_values"])
            sections.append(
                f"{name} per training seed: {values} (best of {num_seeds} seeds, labelled as "
                f"such: {rows[name]['best_seed']:.2f})."
            )
    if outcome.tuned:
        tuned = ", ".join(f"{k} = {v}" for k, v in outcome.tuned.items())
        sections.append(f"Options tuned on training-split tasks: {tuned}.")
    if _training_figure(outcome.train_dirs, out / "training.png"):
        sections.append("Training curves: ![training](training.png).")
    sections += [
        "",
        *(f"Config of {name}: `{config_text(c)}`." for name, c in configs.items()),
        f"Training time summed over seeds and resumes: {train_seconds:.0f} s.",
    ]
    table = write_outputs(
        out,
        [merged[name] for name in outcome.results],
        spec.title,
        intro,
        sections,
        {
            "experiment": spec.id,
            "quick": quick,
            "seeds": num_seeds,
            "num_test_tasks": num_tasks,
            "configs": {name: c.to_dict() for name, c in configs.items()},
            "tuned": outcome.tuned,
            **({"agent_notes": outcome.notes} if outcome.notes else {}),
            "findings": findings,
            "analyses": outcome.analyses,
            "train_seconds": round(train_seconds, 1),
            "train_runs": run_seconds,
        },
        reference=spec.reference,
        console=console,
        rows=list(rows.values()),
        regret_plot=spec.regret_plot,
    )
    return {"rows": table, "findings": findings, "outcome": outcome}


def _finished_cell(out: Path, cell: Experiment, quick, seeds, overrides, seed, num_tasks):
    """The results.json of a cell already run with the same configs, seeds and tasks, or None."""
    path = out / "results.json"
    if not path.exists():
        return None
    done = json.loads(path.read_text())
    num_seeds = seeds if seeds is not None else (cell.quick_seeds if quick else cell.seeds)
    configs = configs_for(cell, quick, overrides, seed)
    expected = {
        "configs": {name: c.to_dict() for name, c in configs.items()},
        "seeds": num_seeds,
        "num_test_tasks": num_tasks or (cell.quick_test_tasks if quick else cell.num_test_tasks),
    }
    return done if all(done.get(k) == v for k, v in expected.items()) else None


def run_suite(
    suite: Suite,
    out: Path,
    quick: bool = False,
    seeds: int | None = None,
    overrides: Sequence[str] = (),
    seed: int | None = None,
    progress: bool = True,
    console=None,
    num_test_tasks: int | None = None,
    cells: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run every cell of ``suite`` (or only the cell ids in ``cells``) with ``run``, keep cells
    finished before with the same settings, then test the suite's findings across cells and write
    its report.md and results.json (``{"cells": {id: results.json of the cell}}``)."""
    out = Path(out)
    specs = list(suite.cells(quick))
    if cells is not None:
        ids = [c.id for c in specs]
        unknown = [c for c in cells if c not in ids]
        if unknown:
            raise Learn2RLError(
                f"{suite.id} has no cell {', '.join(map(repr, unknown))}; its cells: "
                f"{', '.join(ids)}"
            )
    done: dict[str, dict] = {}
    train_dir = out / "train" if suite.shared_training else None
    for cell in specs:
        where = out / cell.id
        cached = _finished_cell(where, cell, quick, seeds, overrides, seed, num_test_tasks)
        if cells is not None and cell.id not in cells:
            if cached is not None:  # not asked for, but finished before: in the report
                done[cell.id] = cached
            continue
        if cached is not None:
            if console is not None:
                console.print(f"{cell.id}: finished before with these settings, kept ({where})")
            done[cell.id] = cached
            continue
        run(cell, where, quick, seeds, overrides, seed, progress, console, num_test_tasks,
            train_dir=train_dir, command=f"{suite.id} --cells {cell.id}")  # fmt: skip
        done[cell.id] = json.loads((where / "results.json").read_text())
    missing = [c.id for c in specs if c.id not in done]
    findings = []
    for f in suite.findings:
        try:
            value, text = f.measure(done)
        except KeyError:  # a finding across cells, some of them not run yet (--cells)
            if not missing:
                raise
            text = f"not measured: cells {', '.join(missing)} not run yet"
            findings.append(finding(f.claim, text, f.criterion, False))
            continue
        findings.append(finding(f.claim, text, f.criterion, f.holds(value)))
    if suite.cell_findings:
        findings += [f for cell in done.values() for f in cell.get("findings", [])]
    for figure in suite.figures:
        figure.draw(done, out / figure.file)
    runs = {k: v for cell in done.values() for k, v in cell.get("train_runs", {}).items()}
    lines = [
        f"# {suite.title}" + (" (quick)" if quick else ""),
        "",
        f"Command: `{_command(suite.id, quick, seeds, seed, overrides)}`. {suite.paper}, "
        f"{suite.section}. {suite.intro} Each cell's own report is in its directory.",
        "",
        *([f"Cells not run yet with these settings: {', '.join(missing)}.", ""] if missing else []),
        *(suite.sections(done) if suite.sections else ()),
        "",
        "## Findings (tested)",
        "",
        findings_section(findings),
        "",
        *(f"{f.caption}:\n\n![{f.caption}]({f.file})\n" for f in suite.figures),
        f"Training time summed over learners, seeds and resumes: {sum(runs.values()):.0f} s.",
        "",
        machine_line(),
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    rows = [row | {"cell": cid} for cid, cell in done.items() for row in cell["results"]]
    write_results_json(rows, out / "results.json", {"suite": suite.id, "quick": quick,
                       "findings": findings, "cells": done})  # fmt: skip
    if console is not None:
        console.print("\n".join(lines))
    return {"rows": rows, "findings": findings, "cells": done}
