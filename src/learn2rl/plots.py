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
    _label(ax, xlabel, ylabel, title)


def plot_episodes(
    summaries: Mapping[str, Mapping[str, Any]],
    path: str | Path,
    title: str,
    steps_label: str = "steps to goal",
    episode_label: str = "episode of the trial (same goal)",
    shortest: Sequence[float] | None = None,
) -> Path:
    """Steps (left, with 95% bands) and success rate (right) against the episode of a trial, one
    line per agent, from ``analysis.episodes.summarize`` summaries; ``shortest`` adds the mean
    shortest path per episode as a dashed line."""
    with figure(path, ncols=2, size=(10, 4)) as (left, right):
        steps = {name: s["steps_per_episode"] for name, s in summaries.items()}
        bands = {name: s["steps_per_episode_ci95"] for name, s in summaries.items()}
        if shortest is not None:
            steps["shortest path (mean)"] = shortest
        styles = {"shortest path (mean)": {"color": "k", "ls": "--"}}
        plot_lines(left, steps, None, episode_label, steps_label, bands=bands, styles=styles)
        success = {name: s["success_per_episode"] for name, s in summaries.items()}
        plot_lines(right, success, xlabel=episode_label, ylabel="success rate (goal reached)")
        left.set_ylim(bottom=0)
        right.set_ylim(0, 1.05)
        for ax in (left, right):
            ax.set_xticks(np.arange(1, len(next(iter(success.values()))) + 1))
        left.figure.suptitle(title)
    return Path(path)


def plot_intervals(
    ax,
    values: Mapping[str, Any],
    intervals: Mapping[str, Any],
    x: Sequence[float] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    dodge: float = 0.0,
    lines: bool = True,
) -> None:
    """Points with error bars on ``ax``, one series per label of ``values`` (x defaults to 0, 1,
    ...); ``intervals[label]`` is ``(lower bounds, upper bounds)``, one pair per point. ``dodge``
    spreads the series side by side over that width (for categorical x), so bars don't overlap;
    ``lines=False`` leaves the points unconnected."""
    for k, (label, points) in enumerate(values.items()):
        points = np.asarray(points, dtype=float)
        xs = np.arange(len(points)) if x is None else np.asarray(x, dtype=float)
        shift = (k - (len(values) - 1) / 2) * dodge / len(values)
        yerr = np.abs(np.asarray(intervals[label], dtype=float) - points)
        style = {"ls": "-" if lines else "none", "marker": "o", "ms": 4, "capsize": 3}
        ax.errorbar(xs + shift, points, yerr=yerr, label=label, **style)
    _label(ax, xlabel, ylabel, title)


def plot_shares(
    ax,
    shares: Mapping[str, Any],
    categories: Sequence[str],
    colors: Sequence[str] | None = None,
    xlabel: str = "step",
    ylabel: str = "share of trials",
    title: str | None = None,
) -> None:
    """Stacked bars of the share of each category at each step (x = 1, 2, ...), one bar per label
    of ``shares`` (a [steps, categories] array each) side by side; the first label is drawn solid
    and outlined, the others faded (a learned agent beside its references)."""
    width = 0.8 / len(shares)
    for k, share in enumerate(shares.values()):
        share = np.asarray(share, dtype=float)
        steps = np.arange(1, len(share) + 1) + (k - (len(shares) - 1) / 2) * width
        bottom = np.zeros(len(share))
        style = {"edgecolor": "black" if k == 0 else "none", "alpha": 1.0 if k == 0 else 0.45}
        for c, category in enumerate(categories):
            style["color"] = None if colors is None else colors[c]
            label = category if k == 0 else None
            ax.bar(steps, share[:, c], width * 0.95, bottom=bottom, label=label, **style)
            bottom += share[:, c]
    ax.set_xlabel(f"{xlabel} (bars: {' | '.join(shares)})")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")


def plot_adaptation(
    rows: Sequence[Mapping[str, Any]],
    paper: Mapping[str, Sequence[float]],
    path: str | Path,
    title: str,
    xlabel: str = "adaptation steps",
) -> Path:
    """Return after 0, 1, ... adaptation steps: one line per ``analysis.adaptation`` row (its
    ``returns`` with a band of its ``ci95``) beside the published curves ``paper`` (black)."""
    curves = {row["agent"]: row["returns"] for row in rows}
    bands = {row["agent"]: row["ci95"] for row in rows}
    styles = {}
    for (name, values), style in zip(paper.items(), ("--", ":", "-."), strict=False):
        curves[name], styles[name] = values, {"ls": style, "color": "k", "alpha": 0.6}
    steps = np.arange(len(next(iter(curves.values()))))
    with figure(path, size=(6.5, 4.2)) as ax:
        plot_lines(ax, curves, steps, xlabel, "mean episode return", title, bands, styles)
        ax.set_xticks(steps)
    return Path(path)


def plot_meta_training(runs: Mapping[str, Sequence[dict]], path: str | Path) -> Path:
    """Meta-training curves of gradient-based learners from their metrics.jsonl rows: the return
    before the inner step (``pre_return``, dotted) and after it (``trial_return``), per learner."""
    with figure(path, size=(6.5, 4.0)) as ax:
        for i, (name, rows) in enumerate(runs.items()):
            updates = [r["update"] for r in rows]
            after, before = [r["trial_return"] for r in rows], [r["pre_return"] for r in rows]
            ax.plot(updates, after, color=f"C{i}", label=f"{name}: after 1 step")
            ax.plot(updates, before, color=f"C{i}", ls=":", label=f"{name}: before")
        ax.set(xlabel="meta-update", ylabel="mean episode return (training tasks)")
        ax.legend(fontsize=8)
    return Path(path)


def _label(ax, xlabel: str, ylabel: str, title: str | None) -> None:
    """Axis labels, an optional title and a small legend: the finish of every line plot."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
