"""Plots written as PNG files (matplotlib, Agg backend: no display needed).

Every figure of the package is drawn here or inside ``figure(path)``, which makes the axes and
saves and closes the file: ``plot_regret`` (cumulative regret of agents over a trial),
``plot_training`` (training curves), ``plot_lines`` (any per-agent curves with interval bands:
accuracy by presentation, steps by episode, return by gradient step) and the paper-specific
figures below them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from typing import Any  # noqa: E402

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


def plot_training(
    rows: Sequence[dict] | Mapping[str, Sequence[dict]],
    path: str | Path,
    metric: str = "trial_return",
) -> Path:
    """A training curve from metrics.jsonl rows, or one per label from ``{label: rows}``."""
    curves = dict(rows) if isinstance(rows, Mapping) else {"": rows}
    with figure(path, size=(6, 3.5)) as ax:
        for label, run in curves.items():
            ax.plot([r["update"] for r in run], [r[metric] for r in run], lw=1, label=label or None)
        ax.set_xlabel("update")
        ax.set_ylabel(metric)
        if len(curves) > 1:
            ax.legend(fontsize=8)
    return Path(path)


@contextlib.contextmanager
def figure(
    path: str | Path, ncols: int = 1, nrows: int = 1, size: tuple[float, float] | None = None
) -> Iterator[Any]:
    """``with figure(path, ncols=2) as (left, right): ...`` draws on fresh axes (one ``Axes``
    for a single panel) with a light grid, then lays out, saves ``path`` and closes the figure."""
    path = Path(path)
    size = size or (6.0 * ncols, 4.0 * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, dpi=120, squeeze=False)
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    try:
        yield axes.flat[0] if axes.size == 1 else tuple(axes.flat)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)


def plot_lines(
    ax,
    curves: Mapping[str, Any],
    x: Sequence[float] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    bands: Mapping[str, Any] | None = None,
    styles: Mapping[str, dict] | None = None,
) -> None:
    """One line per label of ``curves`` on ``ax`` (x defaults to 1, 2, ...), with a shaded
    interval where ``bands[label]`` gives a half-width (array or scalar) and matplotlib keyword
    styles per label (e.g. ``{"paper": {"ls": "--"}}``)."""
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        xs = np.arange(1, len(values) + 1) if x is None else np.asarray(x)
        (line,) = ax.plot(xs, values, marker="o", ms=3, lw=1.6, label=label,
                          **(styles or {}).get(label, {}))  # fmt: skip
        if bands is not None and label in bands:
            half = np.asarray(bands[label], dtype=float)
            ax.fill_between(xs, values - half, values + half, color=line.get_color(), alpha=0.15)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
