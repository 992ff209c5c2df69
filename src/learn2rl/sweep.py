"""``learn2rl sweep``: one learner over training seeds and a grid of config values, one report.

A sweep is a base config, a grid (``--set learning_rate=1e-3,3e-3 --set gamma=0.9,0.99`` gives
four settings, every combination) and ``--seeds N``. Each setting's seeds train in one of two ways:

* **side by side** (learners with ``train_members``: every registered one): the N train states
  are stacked and trained in one compiled program, so the seeds share a compilation. Learners
  with a batch (tasks, functions, ES or agent populations) ``jax.vmap`` the seeds inside their
  sharded program, each device stepping all of them on its share of the batch (of every host
  in a multi-process run); one-agent learners (``learners.base.SeedsOverDevices``) split the
  seeds over the devices instead;
* **one after another** otherwise (or with ``--queue``): N ordinary runs.

Settings run one after another; every setting is a run directory under ``--out`` with its own
checkpoints, so ``--resume`` continues a sweep where it stopped and skips settings that are done.
The report (``report.md``, ``results.json``, the console table) gives, per setting, the mean and
95% t interval over seeds of the final training metric (the learner's ``progress_metric``
averaged over the last tenth of the updates) and, for learners of a task family, of the mean
return on ``num_test_tasks`` held-out tasks; ``results.json`` also holds every run's numbers.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
import typing
from pathlib import Path
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from learn2rl import checkpoint, distributed, runner
from learn2rl.analysis.seeds import mean_and_interval
from learn2rl.errors import Learn2RLError
from learn2rl.learners.base import parse_overrides
from learn2rl.logging import read_metrics
from learn2rl.report import console_grid, environment_info, machine_line, markdown_grid

TUPLE_SEPARATOR = "/"  # between the values of a tuple field: hidden_sizes=64,64/128,128


@dataclasses.dataclass(frozen=True)
class Setting:
    """One point of the grid: its name (``learning_rate=0.003``) and config changes."""

    name: str
    changes: dict[str, Any]


def parse_grid(config_cls: type, pairs: list[str]) -> list[Setting]:
    """``["learning_rate=1e-3,3e-3", "cell=gru,lstm"]`` as the settings of their grid, in order
    (the last field varies fastest). Values of one field are separated by commas, or by ``/``
    for a field that is itself a tuple (``hidden_sizes=64,64/128,128``)."""
    hints = typing.get_type_hints(config_cls)
    fields: dict[str, list[tuple[str, Any]]] = {}
    for pair in pairs:
        if "=" not in pair:
            raise Learn2RLError(f"--set takes FIELD=VALUE[,VALUE...], got {pair!r}")
        name, raw = (part.strip() for part in pair.split("=", 1))
        name = name.replace("-", "_")
        if name == "seed":
            raise Learn2RLError("a sweep sets seeds with --seeds N and --seed FIRST, not --set")
        if name in fields:
            raise Learn2RLError(
                f"--set {name} is given twice; list its values once, comma-separated"
            )
        kind = hints.get(name)
        separator = TUPLE_SEPARATOR if typing.get_origin(kind) is tuple else ","
        raws = [r.strip() for r in raw.split(separator) if r.strip()]
        if not raws:
            raise Learn2RLError(f"--set {name}= has no values")
        values = [(r, parse_overrides(config_cls, [f"{name}={r}"])[name]) for r in raws]
        if len({repr(v) for _, v in values}) < len(values):
            raise Learn2RLError(f"--set {name} lists a value twice")
        fields[name] = values
    settings = []
    for combo in itertools.product(*fields.values()):
        named = list(zip(fields, combo, strict=True))
        changes = {name: value for name, (_, value) in named}
        # A field with one value changes the base config but does not name the settings.
        label = ",".join(f"{name}={raw}" for name, (raw, _) in named if len(fields[name]) > 1)
        settings.append(Setting(label or "base", changes))
    return settings


@flax.struct.dataclass
class MembersState:
    """The train states of one setting's seeds, stacked on a leading axis."""

    members: Any
    update: jax.Array


class Members:
    """A learner with ``train_members`` presented to ``runner.train`` as one learner whose train
    state is all the seeds' states: one checkpoint, one compiled chunk. Its metrics are the means
    over seeds, plus the progress metric of every seed (``trial_return/seed3``)."""

    def __init__(self, learner: Any, seeds: list[int]):
        self.learner, self.seeds = learner, list(seeds)
        self.config = learner.config
        # Learners of one agent split the seeds over the devices (``SeedsOverDevices``); the
        # others keep their own layout and step every seed on each of their devices.
        chunks = getattr(learner, "member_chunks", None)
        self.devices = chunks(len(self.seeds)).devices if chunks else learner.devices
        self.steps_per_update = learner.steps_per_update * len(self.seeds)
        self.progress_metric = learner.progress_metric

    def init(self, seed: int | None = None) -> MembersState:
        states = distributed.to_host([self.learner.init(s) for s in self.seeds])
        stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *states)
        return self.place(MembersState(stacked, jnp.int32(0)))

    def place(self, state: MembersState) -> MembersState:
        place = getattr(self.learner, "place_members", None)
        if place is None:
            return self.learner.place(state)
        return MembersState(place(state.members), jnp.asarray(state.update))

    def train_chunk(self, state: MembersState, num_updates: int):
        members, metrics = self.learner.train_members(state.members, num_updates)
        shown = {name: jnp.mean(values, axis=0) for name, values in metrics.items()}
        for i, seed in enumerate(self.seeds):
            shown[f"{self.progress_metric}/seed{seed}"] = metrics[self.progress_metric][i]
        return MembersState(members, state.update + num_updates), shown

    def member(self, state: MembersState, i: int) -> Any:
        """Seed ``i``'s own train state."""
        return jax.tree.map(lambda leaf: leaf[i], distributed.to_host(state.members))


def run(
    learner_name: str,
    base: Any,
    settings: list[Setting],
    seeds: int,
    first_seed: int,
    out: str | Path,
    queue: bool = False,
    num_test_tasks: int = 1000,
    resume: bool = False,
    progress: bool = True,
    console=None,
) -> dict[str, Any]:
    """Train every setting for ``seeds`` seeds into ``out`` and write the merged report."""
    from learn2rl import learners

    if seeds < 1:
        raise Learn2RLError(f"--seeds must be at least 1, got {seeds}")
    if num_test_tasks < 0:
        raise Learn2RLError(f"--num-test-tasks must be >= 0, got {num_test_tasks}")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not resume:
        raise Learn2RLError(f"{out} is not empty; pass --resume to continue its sweep")
    configs = [base.replace(**s.changes) for s in settings]  # invalid values fail before training
    _, learner_cls = learners.get(learner_name)
    side_by_side = not queue and hasattr(learner_cls, "train_members")
    seed_list = [first_seed + s for s in range(seeds)]
    tic = time.perf_counter()
    rows = []
    for index, (setting, config) in enumerate(zip(settings, configs, strict=True)):
        where = out / f"setting-{index}"
        if console is not None and distributed.is_primary():
            how = "side by side" if side_by_side else "one after another"
            console.print(
                f"[bold]setting {index + 1}/{len(settings)}[/bold] {setting.name}: "
                f"{seeds} seed(s) {how}"
            )
        if side_by_side:
            runs = _train_side_by_side(
                learner_name, config, seed_list, where, num_test_tasks, resume, progress, console
            )
        else:
            runs = [
                _train_one(
                    learner_name, config.replace(seed=s), where / f"seed-{s}", num_test_tasks,
                    resume, progress, console,
                )
                for s in seed_list
            ]  # fmt: skip
        rows.append({"setting": setting.name, "changes": _jsonable(setting.changes), "runs": runs})
    wall = time.perf_counter() - tic
    results = {
        "learner": learner_name,
        "base_config": base.to_dict(),
        "seeds": seed_list,
        "mode": "side-by-side" if side_by_side else "queued",
        "num_test_tasks": num_test_tasks,
        "wall_seconds": round(wall, 2),
        "settings": [{**row, "summary": _summary(row["runs"])} for row in rows],
        "environment": environment_info(),
    }
    if distributed.is_primary():
        _write_report(out, results, console)
    return results


def _train_side_by_side(name, config, seeds, where, num_test_tasks, resume, progress, console):
    learner = Members(runner.build(name, config), seeds)
    state, rows, seconds = _trained(name, config, where, learner, resume, progress, console)
    runs = []
    for i, seed in enumerate(seeds):
        column = f"{learner.progress_metric}/seed{seed}"
        params = learner.member(state, i).params
        runs.append(
            {
                "seed": seed,
                "final_metric": _final(rows, column),
                "test_return": _test_return(learner.learner, params, num_test_tasks, seed),
                "train_seconds": round(seconds / len(seeds), 3),
            }
        )
    return runs


def _train_one(name, config, where, num_test_tasks, resume, progress, console):
    learner = runner.build(name, config)
    state, rows, seconds = _trained(name, config, where, learner, resume, progress, console)
    return {
        "seed": config.seed,
        "final_metric": _final(rows, learner.progress_metric),
        "test_return": _test_return(learner, state.params, num_test_tasks, config.seed),
        "train_seconds": seconds,
    }


def _trained(name, config, where: Path, learner, resume, progress, console):
    """Train ``learner`` into ``where``, or restore its final state when the run there is
    already complete with this config; returns ``(state, metrics rows, training seconds)``."""
    directory = where / runner.CHECKPOINT_DIR
    found = checkpoint.exists(directory)
    meta = checkpoint.load_meta(directory) if found else {}
    if meta.get("config") == config.to_dict() and meta.get("update") == config.num_updates:
        state = learner.place(checkpoint.load_state(directory, learner.init()))
    else:
        _, state = runner.train(
            name,
            config,
            where,
            resume=resume and found,
            progress=progress,
            console=console,
            learner=learner,
        )
    seconds = checkpoint.load_meta(directory)["train_seconds"]
    return state, read_metrics(where / "metrics.jsonl"), seconds


def _final(rows: list[dict], column: str) -> float:
    """The mean of ``column`` over the last tenth of the updates (at least one)."""
    values = [row[column] for row in rows if column in row]
    if not values:
        raise Learn2RLError(f"no {column!r} in the run's metrics.jsonl")
    tail = values[-max(1, len(values) // 10) :]
    return float(np.mean(tail))


def _test_return(learner: Any, params: Any, num_test_tasks: int, seed: int) -> float | None:
    """Mean return of the trained learner on held-out tasks (None without a task family)."""
    if num_test_tasks == 0 or not hasattr(learner, "family"):
        return None
    from learn2rl.evaluation import evaluate

    family = learner.family
    result = evaluate(
        learner.agent(params),
        family,
        family.tasks(num_test_tasks, "test"),
        learner.episodes_per_trial,
        jax.random.PRNGKey(10_000 + seed),
    )
    return float(np.mean(result.total_rewards))


def _summary(runs: list[dict]) -> dict[str, Any]:
    out = {}
    for key in ("final_metric", "test_return"):
        values = [r[key] for r in runs if r[key] is not None]
        if values:
            mean, half = mean_and_interval(values)
            out[key] = {"mean": mean, "ci95": None if np.isnan(half) else half}
    return out


def _jsonable(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()}


def _text(summary: dict | None) -> str:
    if summary is None:
        return "-"
    half = summary["ci95"]
    return f"{summary['mean']:.3f}" + ("" if half is None else f" ± {half:.3f}")


def _write_report(out: Path, results: dict, console) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    metric = "final training metric"
    header = ["setting", "runs", metric, "held-out return"]
    table = [
        [
            s["setting"],
            str(len(s["runs"])),
            _text(s["summary"].get("final_metric")),
            _text(s["summary"].get("test_return")),
        ]
        for s in results["settings"]
    ]
    lines = [
        f"# Sweep: {results['learner']}",
        "",
        f"{len(results['settings'])} setting(s) x {len(results['seeds'])} seed(s) "
        f"({results['seeds'][0]}..{results['seeds'][-1]}), trained {results['mode']}, "
        f"in {results['wall_seconds']:.1f} s. Mean ± 95% t interval over seeds; the final "
        "training metric is the learner's progress metric averaged over the last tenth of the "
        f"updates; the held-out return is the mean trial return on {results['num_test_tasks']} "
        "test tasks. Every run's numbers are in results.json.",
        "",
        markdown_grid(header, table),
        "",
        machine_line(),
        "",
    ]
    (out / "report.md").write_text("\n".join(lines))
    if console is not None:
        console.print(console_grid(header, table, f"sweep of {results['learner']}"))
        console.print(f"wrote {out / 'report.md'}, {out / 'results.json'}")
