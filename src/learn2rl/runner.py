"""The Python loop around jitted training chunks: progress, logs, checkpoints, resume.

Nothing here runs inside ``jit``. Each chunk of ``updates_per_chunk`` updates is one compiled call;
between chunks the loop writes metrics (JSONL + TensorBoard), saves a checkpoint and updates the
progress bar. A run resumed from its checkpoint continues with the same chunk boundaries, so it ends
with the same parameters and metrics as an uninterrupted run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from learn2rl import checkpoint
from learn2rl.errors import Learn2RLError
from learn2rl.learners import get as get_learner
from learn2rl.logging import RunLogger
from learn2rl.tasks import make

CHECKPOINT_DIR = "checkpoint"


def build(learner_name: str, config: Any):
    """The learner object for a config (builds the task family from ``config.task``)."""
    _, learner_cls = get_learner(learner_name)
    return learner_cls(config, make(config.task))


def checkpoint_meta(
    learner_name: str, config: Any, update: int, train_seconds: float = 0.0
) -> dict[str, Any]:
    """Checkpoint metadata. ``train_seconds``: wall-clock time in training chunks, summed over
    resumes (not in metrics.jsonl, so a resumed run's log equals an uninterrupted run's)."""
    return {
        "learner": learner_name,
        "config": config.to_dict(),
        "update": update,
        "train_seconds": round(train_seconds, 3),
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
    config = config_cls.from_dict(meta["config"])
    learner = build(name, config)
    state = checkpoint.load_state(directory, learner.init())
    if int(state.update) != meta.get("update"):
        raise Learn2RLError(f"corrupt checkpoint {directory}: update count disagrees with metadata")
    return learner, learner.place(state), meta


def train(
    learner_name: str,
    config: Any,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    console=None,
    stop_at: int | None = None,
) -> tuple[Any, Any]:
    """Meta-train ``config`` into ``out``; returns ``(learner, final_train_state)``.

    ``stop_at`` ends the run early, after the chunk that reaches that update (as if it had been
    killed there); ``resume=True`` continues it.
    """
    out = Path(out)
    ckpt_dir = out / CHECKPOINT_DIR
    if resume and checkpoint.exists(ckpt_dir):
        learner, state, meta = load_learner(ckpt_dir, learner_name)
        if learner.config != config:
            diff = {k: v for k, v in config.to_dict().items() if meta["config"].get(k) != v}
            raise Learn2RLError(
                f"--resume: the run in {out} has a different config ({', '.join(sorted(diff))}); "
                "resume with the same settings or use a new --out"
            )
        config = learner.config
        train_seconds = float(meta.get("train_seconds", 0.0))
    elif resume:
        raise Learn2RLError(f"--resume: no checkpoint in {ckpt_dir}")
    else:
        if checkpoint.exists(ckpt_dir):
            raise Learn2RLError(
                f"{out} already holds a run; pass --resume to continue it or choose another --out"
            )
        learner = build(learner_name, config)
        state = learner.init()
        train_seconds = 0.0
    start = int(state.update)
    logger = RunLogger(out, resume_from_update=start if resume else None)
    steps_per_update = config.num_tasks * learner.trial.max_steps
    bar = _Progress(config.num_updates, start, steps_per_update, progress, console)
    try:
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
            metrics = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
            seconds = time.perf_counter() - tic
            train_seconds += seconds
            # Metrics first, checkpoint second: the checkpoint is the commit point. A run killed
            # between the two resumes from the previous checkpoint, and the logger cuts the
            # chunk's rows back out before it is recomputed; the other order would lose them.
            logger.log_chunk(
                first, metrics, extra={"env_steps": int(state.update) * steps_per_update}
            )
            meta = checkpoint_meta(learner_name, config, int(state.update), train_seconds)
            checkpoint.save(ckpt_dir, state, meta)
            bar.advance(size, seconds, float(metrics["trial_return"][-1]))
    finally:
        bar.close()
        logger.close()
    return learner, state


class _Progress:
    """A rich progress bar with env-steps/s and the latest mean trial return."""

    def __init__(self, total: int, done: int, steps_per_update: int, enabled: bool, console=None):
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

        self.progress = Progress(
            # Fits an 80-column terminal: "train ━━━ 1200/5000 0:00:41 1.03M steps/s return 63.54"
            TextColumn("[bold]train"),
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[rate]} steps/s return {task.fields[metric]}"),
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
            self.progress.update(
                self.task, advance=updates, rate=f"{rate / 1e6:.2f}M", metric=f"{metric:.2f}"
            )

    def close(self):
        if self.enabled:
            self.progress.stop()
