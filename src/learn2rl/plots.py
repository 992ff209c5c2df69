"""Plots written as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from learn2rl.evaluation import EvalResult  # noqa: E402


def plot_regret(results: Sequence[EvalResult], path: str | Path, title: str | None = None) -> Path:
    """Mean cumulative pseudo-regret against pulls (steps of the trial), one line per agent."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for result in sorted(results, key=lambda r: -r.total_regrets.mean()):
        curve = result.regret_curve()
        steps = np.arange(1, len(curve) + 1)
        per_trial = np.cumsum(result.regrets * result.valid, axis=1)
        half = 1.96 * per_trial.std(axis=0, ddof=1) / np.sqrt(per_trial.shape[0])
        (line,) = ax.plot(steps, curve, label=f"{result.agent} ({curve[-1]:.2f})", lw=1.8)
        ax.fill_between(steps, curve - half, curve + half, color=line.get_color(), alpha=0.15)
    ax.set_xlabel("pull (step of the trial)")
    ax.set_ylabel("cumulative regret")
    first = results[0]
    ax.set_title(
        title or f"{first.task}: {first.num_tasks} held-out tasks x {first.num_seeds} seed(s)"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_training(rows: Sequence[dict], path: str | Path, metric: str = "trial_return") -> Path:
    """A training curve from metrics.jsonl rows."""
    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot([r["update"] for r in rows], [r[metric] for r in rows], lw=1)
    ax.set_xlabel("update")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
