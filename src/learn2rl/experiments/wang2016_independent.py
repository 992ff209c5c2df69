"""Wang et al. 2016 (arXiv 1611.05763), Sec. 3.1.1: independent two-armed Bernoulli bandits.

p_i ~ U[0, 1], 100 pulls per trial. The paper plots RL^2's cumulative regret across the trial beside
Gittins, Thompson sampling and UCB1 on the same held-out tasks, and finds RL^2's curve close to the
Gittins curve and below Thompson sampling's and UCB1's. Here the Bayes-optimal policy (exact dynamic
programming, 64.918 expected total reward; docs/baselines.md) stands beside the discounted Gittins
index policy (gamma 0.9) the paper used.

``learn2rl reproduce wang2016-independent [--quick] [--seeds N] --out DIR``.
"""

from __future__ import annotations

from pathlib import Path

from learn2rl import baselines
from learn2rl.experiments import pipeline
from learn2rl.experiments.demo import DEMO_CONFIG
from learn2rl.experiments.spec import Experiment, Finding, Learned

CONFIG = DEMO_CONFIG  # Wang et al.'s setting is the demo's: 2 arms, 100 pulls, gamma 0.9, A2C
QUICK_CONFIG = DEMO_CONFIG.replace(num_updates=1500)
AGENTS = ("bayes-optimal", "gittins", "thompson", "ucb1", "greedy", "random", "oracle")
TOLERANCE = 0.6  # how far below Bayes-optimal (total reward, paired) the full run may land
EXACT = baselines.bayes_optimal_value(2, CONFIG.num_episodes)


def _beats(other: str) -> Finding:
    def measure(outcome):
        diff, half = outcome.difference("rl2", other)
        return diff - half, f"RL^2 - {other} total reward {diff:+.2f} ± {half:.2f}"

    return Finding(
        f"RL^2 ends with less regret than {other}",
        measure,
        "difference > 0 (95% interval above 0)",
        lambda low: low > 0,
    )


def _near_optimal(outcome):
    diff, half = outcome.difference("rl2", "bayes-optimal")
    text = f"RL^2 - Bayes-optimal {diff:+.2f} ± {half:.2f} (exact optimum {EXACT:.3f})"
    return diff, text


def _flattens(outcome):
    regrets = [r.regrets for r in outcome.results["rl2"]]
    early = sum(r[:, :10].mean() for r in regrets) / len(regrets) * 10
    late = sum(r[:, -10:].mean() for r in regrets) / len(regrets) * 10
    return late - early / 3, f"regret in pulls 1-10: {early:.2f}, in pulls 91-100: {late:.2f}"


SPEC = Experiment(
    id="wang2016-independent",
    paper="Wang et al. 2016 (arXiv 1611.05763)",
    section="Sec. 3.1.1",
    title="Wang et al. 2016: independent two-armed bandits, 100 pulls",
    learned=(Learned("rl2", "rl2", CONFIG, QUICK_CONFIG),),
    baselines=AGENTS,
    findings=(
        _beats("thompson"),
        _beats("ucb1"),
        Finding(
            "RL^2 is close to the Bayes-optimal (Gittins-like) curve",
            _near_optimal,
            f"difference > -{TOLERANCE}",
            lambda diff: diff > -TOLERANCE,
        ),
        Finding(
            "RL^2's regret flattens as it learns within the trial",
            _flattens,
            "late < early / 3",
            lambda margin: margin < 0,
        ),
    ),
    intro=(
        "RL^2 (GRU-48, A2C, gamma 0.9) is meta-trained on training tasks and run once on each "
        "held-out task beside the classical algorithms. Regret is pseudo-regret against the "
        "oracle. Gittins is the discounted index (gamma 0.9) Wang et al. plotted; Bayes-optimal "
        "is exact. Quick runs train for 1500 updates instead of 5000 and may miss the "
        "Bayes-optimal tolerance."
    ),
    num_test_tasks=5000,
    quick_test_tasks=2000,
)


def run(out: Path, quick: bool = False, progress: bool = True, console=None, **options) -> dict:
    return pipeline.run(SPEC, out, quick=quick, progress=progress, console=console, **options)
