"""A worked example of an experiment: RL^2 on 5-armed Bernoulli bandits with 10 pulls, beside
Thompson sampling and UCB1 (the setting of RL^2's Table 1, Duan et al. 2016, arXiv 1611.02779,
first row: RL^2 6.7, Thompson 5.7, UCB1 6.7, random 5.0).

An experiment is a spec: what to train (a learner id and its full and quick configs), what to
compare it with (baseline names, ``learn2rl list``), on how many held-out tasks and training
seeds, and the paper's claims as findings with numeric criteria. ``experiments.pipeline`` does the
rest: training with caching and resume, evaluation on shared tasks and reward draws, intervals
over seeds, report.md, results.json and regret.png. Register the module in
``experiments/__init__.py`` with ``_spec_runner`` and it runs as

    learn2rl reproduce example-bandits [--quick] [--seeds N] [--set FIELD=VALUE] --out DIR
"""

from __future__ import annotations

from learn2rl.experiments.spec import Experiment, Finding, Learned
from learn2rl.learners.rl2 import Config

CONFIG = Config(
    task="bandit/independent-5arm",
    num_episodes=10,  # pulls per trial
    hidden_size=48,
    num_tasks=256,
    num_updates=1500,
    updates_per_chunk=100,
    learning_rate=5e-3,
    final_learning_rate=5e-4,
    gamma=0.9,
    gae_lambda=1.0,
)
QUICK_CONFIG = CONFIG.replace(num_updates=300)


def _versus(other: str):
    """RL^2 minus ``other``: the paired difference of total reward and its 95% interval."""

    def measure(outcome):
        diff, half = outcome.difference("rl2", other)
        return diff, f"RL^2 - {other}: {diff:+.3f} ± {half:.3f}"

    return measure


SPEC = Experiment(
    id="example-bandits",
    paper="Duan et al. 2016 (arXiv 1611.02779)",
    section="Table 1, n = 10, k = 5",
    title="Worked example: RL^2 on 5-armed bandits, 10 pulls",
    learned=(Learned("rl2", "rl2", CONFIG, QUICK_CONFIG),),
    baselines=("thompson", "ucb1", "random"),
    findings=(
        Finding(
            "RL^2 collects more reward than Thompson sampling (paper: 6.7 vs 5.7)",
            _versus("thompson"),
            "difference > 0.3",
            lambda diff: diff > 0.3,
        ),
        Finding(
            "RL^2 is as good as UCB1 (paper: 6.7 vs 6.7)",
            _versus("ucb1"),
            "difference > -0.15",
            lambda diff: diff > -0.15,
        ),
    ),
    intro="RL^2 (GRU-48, A2C) against two classical bandit algorithms and random play.",
    reference={"rl2": 6.7, "thompson": 5.7, "ucb1": 6.7, "random": 5.0},
    num_test_tasks=5000,
    quick_test_tasks=2000,
    seeds=3,
    quick_seeds=2,
)
