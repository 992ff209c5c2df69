"""What an experiment declares: ``Experiment``, the learners it trains and the findings it tests.

An experiment is data: the paper and section it reproduces, the learners it meta-trains (full and
``--quick`` configs), the classical agents it compares them with (baseline names of
``learn2rl.baselines``), how many held-out tasks and training seeds, and the paper's claims as
``Finding``s with numeric criteria. ``experiments.pipeline.run`` runs any spec: it trains every
(learner, seed) with caching and resume, evaluates every agent on the same held-out tasks and
reward draws, checks the findings and writes report.md, results.json and the plots.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the pipeline's result type, for annotations only
    from learn2rl.experiments.pipeline import Outcome


@dataclass(frozen=True)
class Learned:
    """A learner the experiment meta-trains. ``name`` labels its row; ``learner`` is its registry
    id (``learn2rl list``); ``config`` and ``quick`` are its full and ``--quick`` configs."""

    name: str
    learner: str
    config: Any
    quick: Any


@dataclass(frozen=True)
class Finding:
    """A claim of the paper with a numeric criterion.

    ``measure(outcome)`` returns ``(value, text)``: the number the criterion judges and how the
    report shows it; ``holds(value)`` says whether the claim holds here.
    """

    claim: str
    measure: Callable[[Outcome], tuple[float, str]]
    criterion: str
    holds: Callable[[float], bool]


@dataclass(frozen=True)
class Experiment:
    """One reproduction: ``learn2rl reproduce <id>``."""

    id: str
    paper: str  # "Wang et al. 2016 (arXiv 1611.05763)"
    section: str  # "Sec. 3.1.1"
    title: str  # the report's heading
    learned: tuple[Learned, ...]
    baselines: tuple[str, ...]
    findings: tuple[Finding, ...] = ()
    intro: str = ""  # what the report says before its table (setting, what is compared)
    num_test_tasks: int = 5000
    quick_test_tasks: int = 2000
    seeds: int = 3  # training seeds of a full run
    quick_seeds: int = 1
    reference: dict[str, float] | None = field(default=None)  # published number per row
