"""Statistics over training seeds: how far a result can move when the training seed changes.

A learned agent's table entry is the mean over its training seeds of the mean total reward over
held-out tasks. Its interval is Student's t interval over seeds (``scipy.stats``): with the 3-5
seeds a reproduction can afford, a bootstrap over seeds has too few distinct resamples to mean
anything, while the t interval is exact for normally distributed seed means and honestly wide
for few seeds. With a single seed there is no spread to measure, and the interval over tasks is
the only one available (reports say which one they show).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def mean_and_interval(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean of ``values`` (one per seed) and the half-width of its t interval (NaN for one)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"expected a non-empty 1-D array of per-seed values, got {values.shape}")
    mean = float(values.mean())
    if values.size < 2:
        return mean, float("nan")
    sem = values.std(ddof=1) / math.sqrt(values.size)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, values.size - 1) * sem)


def best_of(values) -> float:
    """The best per-seed value: what papers that report the best of N seeds show (label it)."""
    return float(np.max(np.asarray(values, dtype=np.float64)))
