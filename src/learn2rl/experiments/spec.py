"""What an experiment declares: ``Experiment``, the learners it trains and the findings it tests.

An experiment is data: the paper and section it reproduces, the learners it meta-trains (full and
``--quick`` configs), the classical agents it compares them with (baseline names of
``learn2rl.baselines``), how many held-out tasks and training seeds, the paper's claims as
``Finding``s with numeric criteria, the paper-specific ``Analysis``es (pure functions of
``learn2rl.analysis`` applied to the evaluation) and ``Figure``s. ``experiments.pipeline.run``
runs any spec: it trains every (learner, seed) with caching and resume, evaluates every agent on
the same held-out tasks and reward draws, runs the analyses, checks the findings and writes
report.md, results.json and the plots.

A ``Suite`` is a grid of experiments (one per table cell of a paper: RL^2's bandit table, the
transfer matrix of dependent bandits); ``pipeline.run_suite`` runs each cell, keeps finished cells,
and tests findings across cells.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the pipeline's result types, for annotations only
    from learn2rl.experiments.pipeline import Outcome
    from learn2rl.types import Agent


@dataclass(frozen=True)
class Learned:
    """A learner the experiment meta-trains. ``name`` labels its row; ``learner`` is its registry
    id (``learn2rl list``); ``config`` and ``quick`` are its full and ``--quick`` configs."""

    name: str
    learner: str
    config: Any
    quick: Any


@dataclass(frozen=True)
class Tuned:
    """A baseline whose option is chosen from ``grid`` by mean total reward on ``num_tasks``
    training-split tasks (never test tasks), as papers tuned UCB1's c or epsilon-greedy's
    epsilon. The chosen value is reported."""

    name: str
    option: str
    grid: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(11))
    num_tasks: int = 1000


@dataclass(frozen=True)
class Finding:
    """A claim of the paper with a numeric criterion.

    ``measure(outcome)`` returns ``(value, text)``: the number the criterion judges and how the
    report shows it; ``holds(value)`` says whether the claim holds here. In a ``Suite`` the
    measure gets the dict of finished cells (``{cell id: results.json content}``) instead.
    """

    claim: str
    measure: Callable[[Any], tuple[float, str]]
    criterion: str
    holds: Callable[[float], bool]


@dataclass(frozen=True)
class Analysis:
    """A computation on the evaluated outcome: ``compute(outcome)`` returns JSON-able data, kept
    as ``outcome.analyses[name]`` (for findings, figures and sections) and in results.json."""

    name: str
    compute: Callable[[Outcome], Any]


@dataclass(frozen=True)
class Figure:
    """A figure of the report: ``draw(outcome, path)`` writes ``file`` (a PNG name), shown in
    report.md under ``caption``. Draw it with ``learn2rl.plots``."""

    file: str
    caption: str
    draw: Callable[[Any, Path], Any]


@dataclass(frozen=True)
class Experiment:
    """One reproduction: ``learn2rl reproduce <id>``."""

    id: str
    paper: str  # "Wang et al. 2016 (arXiv 1611.05763)"
    section: str  # "Sec. 3.1.1"
    title: str  # the report's heading
    learned: tuple[Learned, ...]
    baselines: tuple[str | Tuned, ...] = ()
    findings: tuple[Finding, ...] = ()
    intro: str = ""  # what the report says before its table (setting, what is compared)
    num_test_tasks: int = 5000
    quick_test_tasks: int = 2000
    seeds: int = 3  # training seeds of a full run
    quick_seeds: int = 1
    reference: dict[str, float] | None = field(default=None)  # published number per row
    task: str | None = None  # the evaluation family; default: the first learner's training task
    # Episodes per evaluation trial: a number, or a function of the learned configs (by name)
    # when the trial follows a setting (a test batch); default: the first learner's.
    num_episodes: int | Callable[[dict[str, Any]], int] | None = None
    record_obs: bool = False  # keep every step's observation (analyses that need states)
    # Agents a baseline name cannot express (e.g. built from the trained learner); called with
    # (family, num_episodes) and appended after the named baselines.
    agents: Callable[[Any, int], Sequence[Agent]] | None = None
    analyses: tuple[Analysis, ...] = ()
    figures: tuple[Figure, ...] = ()
    # Paper-specific Markdown after the findings (its own tables); gets the Outcome.
    sections: Callable[[Outcome], Sequence[str]] | None = None
    regret_plot: bool = True  # regret.png: cumulative regret of every agent over the trial
    # Per-trial regret where the family defines no pseudo-regret (steps beyond the shortest path):
    # regret(outcome, result) -> one value per trial of ``result``; the table's mean regret uses it.
    regret: Callable[[Outcome, Any], Any] | None = None
    # An evaluation of its own for a learner without a task family (Hochreiter 2001 fits functions):
    # evaluate(outcome, num_tasks) -> {agent: [EvalResult per seed]} replaces the held-out-task
    # evaluation of the learned agents; ``baselines``/``agents`` must then be empty.
    evaluate: Callable[[Outcome, int], dict[str, list[Any]]] | None = None
    # The evaluated agent of a trained learner when ``learner.agent(params, name=name)`` will not
    # do (a meta-test option chosen on training tasks): learned_agent(learner, state, name,
    # family) -> (agent, note); the JSON-able notes go to ``outcome.notes[name]`` (one per seed).
    learned_agent: Callable[[Any, Any, str, Any], tuple[Agent, Any]] | None = None
    # How one (learner, seed) is trained when ``runner.train`` to the end (resumed if there) will
    # not do: train(learner id, config, run directory, progress, console) -> (learner, state),
    # e.g. in stages that keep checkpoints for a learning curve (``outcome.train_dirs``).
    train: Callable[..., tuple[Any, Any]] | None = None


@dataclass(frozen=True)
class Suite:
    """A grid of experiments reported as one table (``learn2rl reproduce <id>``).

    ``cells(quick)`` gives the cell experiments; each runs into ``out/<cell id>`` (a finished cell
    with the same configs is kept, an interrupted one resumes). ``shared_training`` trains every
    learner once under ``out/train`` for all cells that list it (a learner trained on one task and
    evaluated on several). ``findings`` and ``sections`` get ``{cell id: results.json content}``.
    """

    id: str
    paper: str
    section: str
    title: str
    cells: Callable[[bool], Sequence[Experiment]]
    findings: tuple[Finding, ...] = ()
    intro: str = ""
    sections: Callable[[dict[str, dict]], Sequence[str]] | None = None
    figures: tuple[Figure, ...] = ()
    shared_training: bool = False
    cell_findings: bool = False  # also list every cell's own findings in the suite's table
