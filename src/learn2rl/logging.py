"""Run logs: one JSON object per line (metrics.jsonl) and TensorBoard event files, side by side.

Logging happens between jitted chunks, never inside them. On ``--resume`` the JSONL log is cut back
to the checkpoint's update, so a resumed run's log equals the uninterrupted run's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

METRICS_FILE = "metrics.jsonl"


class RunLogger:
    def __init__(
        self, directory: str | Path, resume_from_update: int | None = None, tensorboard: bool = True
    ):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / METRICS_FILE
        if resume_from_update is None:
            self.path.write_text("")
        else:
            kept = [
                line for line in read_metrics(self.path) if line["update"] <= resume_from_update
            ]
            self.path.write_text("".join(json.dumps(line) + "\n" for line in kept))
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(str(self.directory / "tensorboard"))

    def log_chunk(
        self, first_update: int, metrics: dict[str, np.ndarray], extra: dict | None = None
    ):
        """Write one line per update of a chunk; ``metrics`` holds arrays of per-update values."""
        num = len(next(iter(metrics.values())))
        with open(self.path, "a") as f:
            for i in range(num):
                update = first_update + i + 1
                row: dict[str, Any] = {"update": update}
                row.update({k: float(v[i]) for k, v in metrics.items()})
                if extra and i == num - 1:
                    row.update(extra)
                f.write(json.dumps(row) + "\n")
                if self._tb is not None:
                    for k, v in metrics.items():
                        self._tb.add_scalar(f"train/{k}", float(v[i]), update)
        if self._tb is not None:
            self._tb.flush()

    def close(self):
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut short by a kill: everything after it is gone too
    return rows
