"""Result tables: a rich table for the terminal, Markdown for reports, results.json for machines."""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULT_FIELDS = [
    "agent",
    "task",
    "mean_total_reward",
    "ci95",
    "mean_regret",
    "regret_ci95",
    "num_tasks",
    "num_seeds",
]


def environment_info() -> dict[str, str]:
    """The machine and versions a result came from."""
    import jax

    info = {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "machine": platform.machine(),
        "processor": platform.processor() or "?",
        "devices": ", ".join(sorted({d.device_kind for d in jax.devices()}))
        + f" x{jax.device_count()}",
    }
    try:
        import os

        info["cpu_count"] = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        pass
    return info


def machine_line() -> str:
    """The ``Machine: ...`` line every report ends with (``environment_info`` as one line)."""
    return "Machine: " + ", ".join(f"{k} {v}" for k, v in environment_info().items())


def config_text(config: Any) -> str:
    """A learner config as ``field=value, ...`` (for the reports' settings lines)."""
    return ", ".join(f"{k}={v}" for k, v in config.to_dict().items())


def markdown_table(
    rows: Sequence[dict[str, Any]], reference: dict[str, float] | None = None
) -> str:
    """Rows sorted as given; ``reference`` maps agent -> a published number shown beside ours.
    The regret columns are left out when no row has a regret (families without expected
    rewards)."""
    regret = _has_regret(rows)
    header = "| agent | mean total reward | 95% CI |"
    header += " mean regret | 95% CI |" if regret else ""
    header += " tasks x seeds |"
    sep = "|---|---|---|" + ("---|---|" if regret else "") + "---|"
    if reference is not None:
        header += " paper |"
        sep += "---|"
    lines = [header, sep]
    for row in rows:
        line = f"| {row['agent']} | {row['mean_total_reward']:.2f} | ±{row['ci95']:.2f} | "
        if regret:
            line += f"{row['mean_regret']:.2f} | ±{row['regret_ci95']:.2f} | "
        line += f"{row['num_tasks']} x {row['num_seeds']} |"
        if reference is not None:
            value = reference.get(row["agent"])
            line += f" {value} |" if value is not None else " |"
        lines.append(line)
    return "\n".join(lines)


def markdown_grid(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Any Markdown table: ``header`` names the columns, each row gives one cell per column
    (already formatted as wanted; other values are shown with ``str``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def console_grid(header: Sequence[str], rows: Sequence[Sequence[Any]], title: str):
    """The rich (terminal) twin of ``markdown_grid``."""
    from rich.table import Table

    table = Table(title=title)
    for i, column in enumerate(header):
        table.add_column(str(column), justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    return table


def rich_table(rows: Sequence[dict[str, Any]], title: str):
    from rich.table import Table

    table = Table(title=title)
    regret = _has_regret(rows)
    columns = ["agent", "mean total reward", "95% CI"]
    columns += ["mean regret", "95% CI"] if regret else []
    for column in [*columns, "tasks"]:
        table.add_column(column, justify="left" if column == "agent" else "right")
    for row in rows:
        cells = [row["agent"], f"{row['mean_total_reward']:.2f}", f"±{row['ci95']:.2f}"]
        if regret:
            cells += [f"{row['mean_regret']:.2f}", f"±{row['regret_ci95']:.2f}"]
        table.add_row(*cells, f"{row['num_tasks']} x {row['num_seeds']}")
    return table


def _has_regret(rows: Sequence[dict[str, Any]]) -> bool:
    """Whether any row has a regret (families without expected rewards have none)."""
    return any(math.isfinite(row["mean_regret"]) for row in rows)


def write_results_json(
    rows: Sequence[dict[str, Any]], path: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """``{"results": rows, "environment": ..., "provenance": ..., **extra}``. ``provenance`` (the
    learn2rl version and git revision, ``provenance.run_info``) says which code produced the
    numbers; callers put the config that produced them in ``extra["config"]``."""
    from learn2rl.checkpoint import atomic_write
    from learn2rl.provenance import run_info

    path = Path(path)
    payload = {
        "results": [
            {k: row[k] for k in RESULT_FIELDS if k in row}
            | {k: v for k, v in row.items() if k not in RESULT_FIELDS}
            for row in rows
        ],
        "environment": environment_info(),
        "provenance": run_info(),
    }
    if extra:
        payload.update(extra)
    # Whole or not at all: a suite run of other seeds into the same --out may be reading it.
    atomic_write(path, (json.dumps(payload, indent=2) + "\n").encode())
    return path


def episodes_markdown(summaries: dict[str, dict[str, Any]]) -> list[str]:
    """Two Markdown tables of ``analysis.episodes.summarize`` summaries, one row per agent:
    episode 1 against episodes 2+ (the paired drop, on which trials, how often episodes 2+ were
    shorter or as long, the excess over the shortest path), then mean steps ± 95% interval and
    success rate per episode."""

    def pm(mean, half):
        return f"{mean:.2f} ± {half:.2f}"

    header = ["agent", "episode 1 steps", "episodes 2+ steps", "drop (paired)", "paired trials",
              "2+ shorter / as long", "excess over shortest, 2+", "success", "trials"]  # fmt: skip
    rows = [
        [name, pm(s["first_steps"], s["first_ci95"]), pm(s["later_steps"], s["later_ci95"]),
         pm(s["drop"], s["drop_ci95"]), f"{s['paired_fraction']:.1%}",
         f"{s['shorter_later']:.1%} / {s['same_later']:.1%}",
         pm(s["later_excess"], s["later_excess_ci95"]), f"{s['success_rate']:.3f}",
         s["num_trials"]]
        for name, s in summaries.items()
    ]  # fmt: skip
    num_episodes = len(next(iter(summaries.values()))["steps_per_episode"])
    per_episode = [
        [name] + [f"{pm(m, c)} ({p:.1%})" for m, c, p in zip(s["steps_per_episode"],
                  s["steps_per_episode_ci95"], s["success_per_episode"], strict=True)]
        for name, s in summaries.items()
    ]  # fmt: skip
    episodes = [f"episode {e + 1}" for e in range(num_episodes)]
    return [
        markdown_grid(header, rows),
        "",
        "Per episode (mean steps ± 95% interval, success rate):",
        "",
        markdown_grid(["agent", *episodes], per_episode),
    ]
