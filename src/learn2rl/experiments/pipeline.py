"""The one pipeline that runs any ``Experiment`` spec.

1. Train every learner of the spec once per training seed (seed ``s`` is the config's seed + s)
   into ``out/<name>/seed-<s>``; a run already there is continued or, if finished, reloaded, so
   re-running an experiment re-evaluates instead of retraining.
2. Evaluate every seed's agent and every baseline on the same held-out tasks with the same key
   (common random numbers: where two agents act alike they get the same rewards).
3. Tabulate: a learned agent's row is the mean over seeds, with Student's t interval over seeds
   (``analysis.seeds``; the interval over tasks when there is one seed), its per-seed values and
   its best seed (labelled as such). Baselines have one row each.
4. Check the findings and write report.md, results.json and regret.png.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from learn2rl import checkpoint, learners, runner
from learn2rl.analysis.seeds import best_of, mean_and_interval
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import EvalResult, evaluate
from learn2rl.experiments.common import (
    EVAL_SEED,
    baseline_agents,
    finding,
    findings_section,
    paired_difference,
    train_learner,
    write_outputs,
)
from learn2rl.experiments.spec import Experiment
from learn2rl.learners.base import build_config
from learn2rl.report import config_text


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the findings of a spec see: every agent's results, one ``EvalResult`` per training
    seed for a learned agent (one for a baseline), all on the same tasks and draws."""

    results: dict[str, list[EvalResult]]
    num_seeds: int

    def per_seed(self, name: str) -> np.ndarray:
        """Mean total reward of agent ``name`` on the held-out tasks, one value per seed."""
        return np.array([r.total_rewards.mean() for r in self.results[name]])

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


def _merged(name: str, per_seed: list[EvalResult]) -> EvalResult:
    """One ``EvalResult`` holding every seed's trials (for curves and the tasks-x-seeds count)."""
    first = per_seed[0]
    arrays = {
        f: np.concatenate([getattr(r, f) for r in per_seed])
        for f in ("rewards", "regrets", "valid", "actions")
    }
    return dataclasses.replace(first, agent=name, num_seeds=len(per_seed), **arrays)


def _row(result: EvalResult, per_seed: list[EvalResult]) -> dict[str, Any]:
    row = result.summary()
    if len(per_seed) > 1:
        totals = [r.total_rewards.mean() for r in per_seed]
        regrets = [r.total_regrets.mean() for r in per_seed]
        row["mean_total_reward"], row["ci95"] = mean_and_interval(totals)
        row["mean_regret"], row["regret_ci95"] = mean_and_interval(regrets)
        row["seed_values"] = [float(v) for v in totals]
        row["best_seed"] = best_of(totals)
        row["interval"] = "t interval over training seeds"
    else:
        row["interval"] = "normal interval over held-out tasks"
    return row


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
) -> dict[str, Any]:
    """Train, evaluate, test the findings and write the report of ``spec`` into ``out``.

    ``seeds`` training seeds per learner (default: the spec's, fewer with ``quick``);
    ``overrides`` are ``--set FIELD=VALUE`` pairs and ``seed`` the first training seed, applied to
    every learner's config that has the field; ``num_test_tasks`` replaces the spec's count."""
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
    trained, train_seconds = {}, 0.0
    for learned in spec.learned:
        config = configs[learned.name]
        trained[learned.name] = []
        for s in range(num_seeds):
            where = out / learned.name / f"seed-{s}"
            learner, state = train_learner(
                learned.learner, config.replace(seed=config.seed + s), where, progress, console
            )
            trained[learned.name].append((learner, state))
            train_seconds += _train_seconds(where)
    learner = trained[spec.learned[0].name][0][0]
    family = learner.family
    num_episodes = learner.config.num_episodes
    tasks = family.tasks(num_tasks, "test")
    key = jax.random.PRNGKey(EVAL_SEED)
    results: dict[str, list[EvalResult]] = {}
    for name, runs in trained.items():
        results[name] = [
            evaluate(lrn.agent(st.params, name=name), family, tasks, num_episodes, key)
            for lrn, st in runs
        ]
    for agent in baseline_agents(family, num_episodes, spec.baselines):
        results[agent.name] = [evaluate(agent, family, tasks, num_episodes, key)]
    outcome = Outcome(results, num_seeds)
    findings = []
    for f in spec.findings:
        value, text = f.measure(outcome)
        findings.append(finding(f.claim, text, f.criterion, f.holds(value)))
    merged = {name: _merged(name, per_seed) for name, per_seed in results.items()}
    rows = {name: _row(merged[name], results[name]) for name in results}
    command = " ".join(
        ["learn2rl reproduce", spec.id]
        + (["--quick"] if quick else [])
        + ([f"--seeds {seeds}"] if seeds is not None else [])
        + ([f"--seed {seed}"] if seed is not None else [])
        + [f"--set {pair}" for pair in overrides]
    )
    intro = (
        f"Command: `{command}`. {spec.paper}, {spec.section}. {spec.intro} Learned agents: "
        f"{num_seeds} training seed(s) each, the table shows the mean over seeds with "
        f"{'a t interval over seeds' if num_seeds > 1 else 'an interval over tasks (one seed)'}; "
        f"every agent runs on the same {num_tasks} held-out tasks and reward draws."
    )
    sections = ["## Findings (tested)", "", findings_section(findings), ""]
    for name, per_seed in results.items():
        if name in trained and len(per_seed) > 1:
            values = ", ".join(f"{v:.2f}" for v in rows[name]["seed_values"])
            sections.append(
                f"{name} per training seed: {values} (best of {num_seeds} seeds, labelled as "
                f"such: {rows[name]['best_seed']:.2f})."
            )
    sections += [
        "",
        *(f"Config of {name}: `{config_text(c)}`." for name, c in configs.items()),
        f"Training time summed over seeds and resumes: {train_seconds:.0f} s.",
    ]
    table = write_outputs(
        out,
        [merged[name] for name in results],
        spec.title,
        intro,
        sections,
        {
            "experiment": spec.id,
            "quick": quick,
            "seeds": num_seeds,
            "configs": {name: c.to_dict() for name, c in configs.items()},
            "findings": findings,
            "train_seconds": round(train_seconds, 1),
        },
        reference=spec.reference,
        console=console,
        rows=list(rows.values()),
    )
    return {"rows": table, "findings": findings, "outcome": outcome}


def _train_seconds(run_dir: Path) -> float:
    return float(checkpoint.load_meta(run_dir / runner.CHECKPOINT_DIR).get("train_seconds", 0.0))
