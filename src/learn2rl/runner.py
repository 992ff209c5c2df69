"""The Python loop around jitted training chunks: progress, logs, checkpoints, resume, divergence.

The runner talks to learners only through the ``types.Learner`` contract: ``init`` / ``place`` /
``train_chunk``, ``config`` (``num_updates``, ``updates_per_chunk``, ``to_dict``),
``steps_per_update``, ``progress_metric`` and ``devices``. Nothing here runs inside ``jit``. Each
chunk of ``updates_per_chunk`` updates is one compiled call; between chunks the loop checks the
chunk for NaN/inf, writes metrics (JSONL + TensorBoard), saves a checkpoint and updates the
progress bar. A run resumed from its checkpoint continues with the same
chunk boundaries, so it ends with the same parameters and metrics as an uninterrupted run.

A run records what it is before it computes anything: the update-0 checkpoint (config, learn2rl
version, git revision) is written before the first chunk, so even a run killed during its first
chunk can be identified and resumed. A chunk that produces a non-finite metric or state is never
logged or saved: training stops with a one-line error naming the first bad update, and the last
good checkpoint stays the newest one.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from learn2rl import checkpoint, distributed
from learn2rl.devices import describe_backend
from learn2rl.errors import Learn2RLError
from learn2rl.learners import get as get_learner
from learn2rl.logging import RunLogger
from learn2rl.provenance import run_info

CHECKPOINT_DIR = "checkpoint"


def build(learner_name: str, config: Any):
    """The learner object for a config: ``cls(config)`` of the registered learner (a learner of a
    task family builds the family from ``config.task``)."""
    _, learner_cls = get_learner(learner_name)
    return learner_cls(config)


def checkpoint_meta(
    learner_name: str,
    config: Any,
    update: int,
    train_seconds: float = 0.0,
    provenance: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Checkpoint metadata. ``train_seconds``: wall-clock time in training chunks, summed over
    resumes (not in metrics.jsonl, so a resumed run's log equals an uninterrupted run's).
    ``provenance``: one ``{"from_update", "learn2rl_version", "git_revision"}`` per stretch of
    training that ran different code (``provenance.run_info``); by default this process's."""
    if provenance is None:
        provenance = [{"from_update": update, **run_info()}]
    return {
        "learner": learner_name,
        "config": config.to_dict(),
        "update": update,
        "train_seconds": round(train_seconds, 3),
        "provenance": provenance,
    }


def load_learner(directory: str | Path, learner_name: str | None = None):
    """Rebuild ``(learner, train_state, meta)`` from a checkpoint directory."""
    directory = Path(directory)
    meta = checkpoint.load_meta(directory)
    name = meta.get("learner")
    if learner_name is not None and name != learner_name:
        raise Learn2RLError(f"checkpoint {directory} is for learner {name!r}, not {learner_name!r}")
    config_cls, _ = get_learner(name)
    if not isinstance(meta.get("config"), dict):
        raise Learn2RLError(f"corrupt checkpoint metadata in {directory}: no config")
    learner = build(name, config_cls.from_dict(meta["config"]))
    state, meta = _load_into(learner, directory, None)  # the name is checked above
    return learner, state, meta


def _load_into(learner: Any, directory: Path, learner_name: str | None) -> tuple[Any, Any]:
    """The train state of the checkpoint in ``directory``, restored into ``learner``'s own
    (``learner.init()`` gives the structure), and the checkpoint's metadata."""
    meta = checkpoint.load_meta(directory)
    if learner_name is not None and meta.get("learner") != learner_name:
        raise Learn2RLError(
            f"checkpoint {directory} is for learner {meta.get('learner')!r}, not {learner_name!r}"
        )
    state = checkpoint.load_state(directory, learner.init())
    if int(state.update) != meta.get("update"):
        raise Learn2RLError(f"corrupt checkpoint {directory}: update count disagrees with metadata")
    return learner.place(state), meta


def train(
    learner_name: str,
    config: Any,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    console=None,
    stop_at: int | None = None,
    keep: int = checkpoint.DEFAULT_KEEP,
    learner: Any = None,
) -> tuple[Any, Any]:
    """Meta-train ``config`` into ``out``; returns ``(learner, final_train_state)``.

    ``stop_at`` ends the run early, after the chunk that reaches that update (as if it had been
    killed there); ``resume=True`` continues it. ``keep``: how many of the newest checkpoints stay
    in ``out/checkpoint``. ``learner``: a learner object built with ``config`` to train instead of
    ``build(learner_name, config)`` (one on a family no task id names, e.g. skills as tasks); a
    resumed run restores its state into it. Raises ``Learn2RLError`` if training diverges (a NaN
    or inf in a metric or in the train state); the newest checkpoint is then the last good one.
    """
    out = Path(out)
    ckpt_dir = out / CHECKPOINT_DIR
    this_code = run_info()
    if learner is not None and learner.config != config:
        raise Learn2RLError("runner.train: the given learner was built with another config")
    # Every process decides from the same directory, before process 0 writes to it.
    found = checkpoint.exists(ckpt_dir)
    distributed.barrier("run directory read")
    if resume and found:
        if learner is None:
            learner, state, meta = load_learner(ckpt_dir, learner_name)
        else:  # the config is checked first: another one's state would not fit the learner
            state, meta = None, checkpoint.load_meta(ckpt_dir)
        if type(config).from_dict(meta["config"]) != config:
            diff = {k: v for k, v in config.to_dict().items() if meta["config"].get(k) != v}
            raise Learn2RLError(
                f"--resume: the run in {out} has a different config ({', '.join(sorted(diff))}); "
                "resume with the same settings or use a new --out"
            )
        if state is None:
            state, meta = _load_into(learner, ckpt_dir, learner_name)
        config = learner.config
        train_seconds = float(meta.get("train_seconds", 0.0))
        provenance = _continue_provenance(meta.get("provenance"), int(state.update), this_code)
    elif resume:
        raise Learn2RLError(f"--resume: no checkpoint in {ckpt_dir}")
    else:
        if found:
            raise Learn2RLError(
                f"{out} already holds a run; pass --resume to continue it or choose another --out"
            )
        learner = build(learner_name, config) if learner is None else learner
        state = learner.init()
        train_seconds = 0.0
        provenance = [{"from_update": 0, **this_code}]
    start = int(state.update)
    # Restored everywhere before process 0 opens the directory for writing (which tidies it).
    distributed.barrier("checkpoint restored")
    primary = distributed.is_primary()
    steps_per_update = learner.steps_per_update
    shown = learner.progress_metric
    with contextlib.ExitStack() as cleanup:
        # Only process 0 writes; the others train the same replicated state beside it.
        checkpoints = logger = None
        if primary:
            checkpoints = cleanup.enter_context(checkpoint.Checkpoints(ckpt_dir, keep))
            logger = RunLogger(out, resume_from_update=start if resume else None)
            cleanup.callback(logger.close)
        if primary and console is not None and start < config.num_updates:
            console.print(f"training on {describe_backend(len(learner.devices))}")
        bar = _Progress(
            config.num_updates, start, steps_per_update, shown, progress and primary, console
        )
        cleanup.callback(bar.close)
        if not resume:
            # Gathered by every process (a population may be split over them); process 0 saves.
            host_state = distributed.to_host(state)
            if primary:
                meta = checkpoint_meta(learner_name, config, start, train_seconds, provenance)
                checkpoints.save(host_state, meta)
        end = config.num_updates if stop_at is None else min(stop_at, config.num_updates)
        while int(state.update) < end:
            first = int(state.update)
            # Chunk boundaries are multiples of updates_per_chunk, whatever update we resumed at.
            size = min(
                config.updates_per_chunk - first % config.updates_per_chunk,
                config.num_updates - first,
            )
            tic = time.perf_counter()
            state, metrics = learner.train_chunk(state, size)
            metrics = {k: np.asarray(v) for k, v in distributed.to_host(metrics).items()}
            seconds = time.perf_counter() - tic
            host_state = distributed.to_host(state)
            problem = non_finite(first, metrics, host_state)
            if problem is not None:
                # `first` is the newest checkpoint: every chunk end and the start are saved.
                raise Learn2RLError(
                    f"training diverged {problem}; the last good checkpoint (update {first}) "
                    f"is in {ckpt_dir}"
                )
            train_seconds += seconds
            if not primary:
                continue
            # Metrics first, checkpoint second: the checkpoint is the commit point. A run killed
            # between the two resumes from the previous checkpoint, and the logger cuts the
            # chunk's rows back out before it is recomputed; the other order would lose them.
            logger.log_chunk(
                first, metrics, extra={"env_steps": int(state.update) * steps_per_update}
            )
            meta = checkpoint_meta(
                learner_name, config, int(state.update), train_seconds, provenance
            )
            checkpoints.save(host_state, meta)
            bar.advance(size, seconds, float(metrics[shown][-1]))
    # Every process returns once process 0 has committed the last checkpoint and its metrics, so
    # any of them may read the run directory next.
    distributed.barrier("run saved")
    return learner, state


def non_finite(first_update: int, metrics: dict[str, Any], state: Any) -> str | None:
    """Where a chunk that started after ``first_update`` first went non-finite, or ``None``.

    ``metrics`` hold one row per update, so a bad metric is pinned to its update ("at update 37:
    value_loss is nan"); the state is only seen at the chunk's end ("by update 40: ...").
    """
    first_bad: tuple[int, str] | None = None
    for name, values in metrics.items():
        values = np.asarray(values)
        if not np.issubdtype(values.dtype, np.inexact) or values.ndim == 0:
            continue
        bad_rows = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if bad_rows.any():
            row = int(np.argmax(bad_rows))
            if first_bad is None or row < first_bad[0]:
                first_bad = (row, f"{name} is {_which_non_finite(values[row])}")
    if first_bad is not None:
        return f"at update {first_update + first_bad[0] + 1}: {first_bad[1]}"
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    for path, leaf in leaves:
        leaf = np.asarray(leaf)
        if np.issubdtype(leaf.dtype, np.inexact) and not np.isfinite(leaf).all():
            end = first_update + len(next(iter(metrics.values()), []))
            where = jax.tree_util.keystr(path)
            return f"by update {end}: the train state's {where} is {_which_non_finite(leaf)}"
    return None


def _which_non_finite(values: np.ndarray) -> str:
    values = np.asarray(values)
    if np.isnan(values).any():
        return "nan"
    return "inf" if (values == np.inf).any() else "-inf"


def _continue_provenance(
    recorded: Any, update: int, this_code: dict[str, Any]
) -> list[dict[str, Any]]:
    """The provenance list of a resumed run: a new entry only if this process runs other code
    than the stretch before it (a checkpoint from before provenance existed starts unknown)."""
    history = list(recorded) if isinstance(recorded, list) else []
    if not history:
        history = [{"from_update": 0, "learn2rl_version": None, "git_revision": None}]
    last = history[-1] if isinstance(history[-1], dict) else {}
    if any(last.get(k) != v for k, v in this_code.items()):
        history.append({"from_update": update, **this_code})
    return history


class _Progress:
    """A rich progress bar with steps/s (``steps_per_update``: env steps, or examples) and the
    latest value of the learner's ``progress_metric`` (shown as ``return`` for the trial return)."""

    def __init__(
        self,
        total: int,
        done: int,
        steps_per_update: int,
        metric_name: str,
        enabled: bool,
        console=None,
    ):
        self.steps_per_update = steps_per_update
        self.enabled = enabled
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        label = "return" if metric_name == "trial_return" else metric_name
        self.progress = Progress(
            # Fits an 80-column terminal: "train ━━━ 1200/5000 0:00:41 1.03M steps/s return 63.54"
            TextColumn("[bold]train"),
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn(f"{{task.fields[rate]}} steps/s {label} {{task.fields[metric]}}"),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(
            "train", total=total, completed=done, rate="-", metric="-"
        )
        self.progress.start()

    def advance(self, updates: int, seconds: float, metric: float):
        if self.enabled:
            rate = updates * self.steps_per_update / max(seconds, 1e-9)
            # Two decimals for returns; small values (a loss of 0.003) keep four digits.
            shown = f"{metric:.2f}" if abs(metric) >= 1 else f"{metric:.4g}"
            self.progress.update(
                self.task, advance=updates, rate=f"{rate / 1e6:.2f}M", metric=shown
            )

    def close(self):
        if self.enabled:
            self.progress.stop()
