"""Wang et al. 2016 (arXiv 1611.05763), Sec. 3.1: restless bandits with varying volatility.

After Behrens et al. 2007: the reward probabilities of two arms (p and 1 - p) jump to fresh values
at random times, at a hazard rate that differs from task to task (``learn2rl.tasks.restless``:
h in {0.01, 0.03, 0.1, 0.3} per pull, 100 pulls). The paper fits a Rescorla-Wagner (delta-rule)
learner to the meta-trained agent's choices and finds its effective learning rate higher when the
world is more volatile: the network has learned to set its own learning rate.

RL^2 (GRU 48, A2C) against the exact Bayes-optimal change-point filter, the best fixed delta rule
and the delta rule tuned per level (privileged), both tuned on training tasks, UCB1, random and
the oracle; per level, the maximum-likelihood (alpha, beta) of a softmax delta rule fitted to the
choices of RL^2 and of the Bayes-optimal agent (``learn2rl.analysis.restless``).

``learn2rl reproduce wang2016-restless [--quick] [--seeds N] --out DIR``.
"""

from __future__ import annotations

from functools import lru_cache

import jax
import numpy as np

from learn2rl.analysis import restless as rw
from learn2rl.baselines import restless as agents_lib
from learn2rl.experiments.common import EVAL_SEED
from learn2rl.experiments.demo import DEMO_CONFIG
from learn2rl.experiments.spec import Analysis, Experiment, Figure, Finding, Learned
from learn2rl.plots import figure, plot_intervals
from learn2rl.report import markdown_grid

# RL^2: the demo's known-good bandit settings (GRU 48, A2C, 256 tasks per update, gamma 0.9); one
# episode of 100 pulls per trial, since the arm probabilities live in the episode.
CONFIG = DEMO_CONFIG.replace(task="bandit/restless-2arm", num_episodes=1, num_updates=10_000)
QUICK_CONFIG = CONFIG.replace(num_updates=2_500)
# Delta-rule tuning on training tasks: learning rates x choice rules (None = greedy).
TUNING_ALPHAS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0)
TUNING_BETAS = (None, 5.0, 10.0, 20.0)
TUNING_TASKS = 2000
NUM_BOOTSTRAP = 200
FIT_AGENTS = ("rl2", "bayes-optimal")


@lru_cache(maxsize=4)  # the agents and the report's analysis share one tuning
def _tuned(family, num_tasks, alphas, betas) -> dict:
    key = jax.random.PRNGKey(EVAL_SEED + 1)  # not the test key: tuning never sees test draws
    return rw.tune_rescorla_wagner(family, num_tasks, key, alphas, betas)


def tuned(family) -> dict:
    return _tuned(family, TUNING_TASKS, TUNING_ALPHAS, TUNING_BETAS)


def _delta_rules(family, num_episodes):
    """The delta rules tuned on training tasks. (One episode per trial: the registered baselines
    are built for 100 pulls, and ``evaluate`` refuses a longer trial.)"""
    best = tuned(family)
    return [
        agents_lib.rescorla_wagner_agent(family, best["alpha"], best["beta"], name="rw-best-fixed"),
        agents_lib.rescorla_wagner_per_level_agent(family, best["per_level_alphas"]),
    ]


def _levels(outcome, name):
    """The hazard level of each of ``name``'s trials (seed-major, as ``Outcome.merged``)."""
    return np.tile(np.asarray(outcome.tasks.level), len(outcome.results[name]))


def _fits(outcome):
    """Per agent of ``FIT_AGENTS``: the delta rule fitted at each level, and the claim's test."""
    fits = {}
    for name in FIT_AGENTS:
        r, levels = outcome.merged(name), _levels(outcome, name)
        per_level = rw.fit_rescorla_wagner(
            r.actions, r.rewards, r.valid, levels, True, NUM_BOOTSTRAP
        )
        for f in per_level:
            f["hazard"] = outcome.family.hazards[int(f["group"])]
        fits[name] = {"levels": per_level, **rw.learning_rate_rises(per_level)}
    return fits


def _per_level(outcome):
    """Total reward of every agent per level, and RL^2's paired differences per level."""
    totals = {name: outcome.merged(name).total_rewards for name in outcome.results}
    rewards = {name: rw.group_means(v, _levels(outcome, name)) for name, v in totals.items()}
    paired = {
        f"rl2_minus_{name}": totals["rl2"] - np.tile(totals[name], outcome.num_seeds)
        for name in ("rw-best-fixed", "ucb1", "bayes-optimal")
    }
    levels = _levels(outcome, "rl2")
    paired = {key: rw.group_means(diff, levels) for key, diff in paired.items()}
    return {"rewards": rewards, "paired": paired}


def _interval(f, key, fmt=".2f"):
    return f"{f[key]:{fmt}} [{f[key + '_ci'][0]:{fmt}}, {f[key + '_ci'][1]:{fmt}}]"


def _rises(name: str, claim: str) -> Finding:
    def measure(outcome):
        fits = outcome.analyses["fits"][name]["levels"]
        text = ", ".join(f"h {f['hazard']:g}: {_interval(f, 'alpha')}" for f in fits)
        return fits[-1]["alpha_ci"][0] - fits[0]["alpha_ci"][1], f"fitted alpha at {text}"

    criterion = "alpha(highest h) > alpha(lowest h), 95% CIs disjoint"
    return Finding(claim, measure, criterion, lambda gap: gap > 0)


def _spearman(outcome):
    rho = outcome.analyses["fits"]["rl2"]["spearman"]
    return rho, f"Spearman rank correlation {rho:+.2f}"


def _beats(other: str, claim: str) -> Finding:
    def measure(outcome):
        diff, half = outcome.difference("rl2", other)
        levels = outcome.analyses["per_level"]["paired"][f"rl2_minus_{other}"]
        by_level = ", ".join(f"{g['mean']:+.2f} ± {g['ci95']:.2f}" for g in levels)
        return diff - half, f"{diff:+.2f} ± {half:.2f} total reward (paired); by level {by_level}"

    return Finding(claim, measure, "difference - CI > 0", lambda low: low > 0)


def _sections(outcome):
    best, hazards = outcome.analyses["tuned_rescorla_wagner"], outcome.family.hazards
    header = ["agent", *(f"h = {h:g}" for h in hazards)]
    rule = "greedy" if best["beta"] is None else f"softmax, beta = {best['beta']}"
    diff, half = outcome.difference("rl2", "bayes-optimal")
    rewards = [
        [name] + [f"{g['mean']:.2f} ± {g['ci95']:.2f}" for g in rows]
        for name, rows in outcome.analyses["per_level"]["rewards"].items()
    ]
    fits = [
        [f"{name} {p}"] + [_interval(f, p, fmt) for f in fit["levels"]]
        for name, fit in outcome.analyses["fits"].items()
        for p, fmt in (("alpha", ".3f"), ("beta", ".1f"))
    ]
    fits.append(["tuned greedy alpha", *(f"{a:g}" for a in best["per_level_alphas"])])
    counts = np.bincount(np.asarray(outcome.tasks.level), minlength=len(hazards)).tolist()
    return [
        "## Reference agents\n",
        f"`rw-best-fixed`: coupled delta rule with alpha = {best['alpha']}, {rule}: the best of "
        f"{len(TUNING_ALPHAS)} learning rates x {len(TUNING_BETAS)} choice rules on "
        f"{best['num_tasks']} training-split tasks (mean total reward {best['score']:.2f} there). "
        f"`rw-per-level` (privileged: told the level) uses the best greedy alpha of each level, "
        f"{best['per_level_alphas']}. `bayes-optimal`: exact change-point posterior over (level, "
        "run length), greedy on the posterior mean (optimal here, see "
        "`learn2rl.baselines.restless`). `ucb1`: c = 1, sample means. RL^2 - Bayes-optimal: "
        f"{diff:+.2f} ± {half:.2f} total reward (paired). Regret is pseudo-regret against the arm "
        "that is best at each pull.\n",
        "## Total reward per volatility level\n",
        markdown_grid(header, rewards) + "\n",
        f"Test tasks per level: {counts}; 95% intervals over tasks (and training seeds).\n",
        "## Fitted learning rates\n",
        "Maximum likelihood of a softmax delta rule (coupled: one estimate of p, the observation "
        "about p is r after arm 0 and 1 - r after arm 1), pooled over each level's test trials; "
        f"[2.5%, 97.5%] percentiles of {NUM_BOOTSTRAP} bootstrap resamples of trials.\n",
        markdown_grid(header, fits) + "\n",
    ]


def _draw_learning_rates(outcome, path):
    fits = {f"{n} (fit)": fit["levels"] for n, fit in outcome.analyses["fits"].items()}
    alphas = {n: [f["alpha"] for f in levels] for n, levels in fits.items()}
    bounds = {n: np.transpose([f["alpha_ci"] for f in levels]) for n, levels in fits.items()}
    hazards = outcome.family.hazards
    with figure(path, size=(6.5, 4.2)) as ax:
        ax.set_xscale("log")
        plot_intervals(
            ax, alphas, bounds, hazards, "hazard rate of a change per pull", "fitted alpha"
        )
        tuned_alphas = outcome.analyses["tuned_rescorla_wagner"]["per_level_alphas"]
        ax.plot(hazards, tuned_alphas, "k--", marker="x", label="best greedy alpha (tuned)")
        ax.legend(fontsize=8)


def _draw_rewards(outcome, path):
    by_level = outcome.analyses["per_level"]["rewards"]
    means = {n: [g["mean"] for g in rows] for n, rows in by_level.items()}
    bounds = {
        n: [[g["mean"] + s * g["ci95"] for g in rows] for s in (-1, 1)]
        for n, rows in by_level.items()
    }
    hazards = outcome.family.hazards
    with figure(path, size=(8, 4.2)) as ax:
        plot_intervals(
            ax, means, bounds, ylabel="mean total reward (100 pulls)", dodge=0.8, lines=False
        )
        ax.set_xticks(range(len(hazards)), [f"h = {h:g}" for h in hazards])
        # Between random (~50) and the learners (>= 60) the plot is empty: the legend goes there.
        ax.legend(fontsize=7, ncol=4, loc="center left", bbox_to_anchor=(0.0, 0.25))


SPEC = Experiment(
    id="wang2016-restless",
    paper="Wang et al. 2016 (arXiv 1611.05763)",
    section="Sec. 3.1",
    title="Wang et al. 2016: restless bandits, learning rate vs volatility",
    learned=(Learned("rl2", "rl2", CONFIG, QUICK_CONFIG),),
    baselines=("bayes-optimal", "ucb1", "random", "oracle"),
    agents=_delta_rules,
    analyses=(
        Analysis("tuned_rescorla_wagner", lambda outcome: tuned(outcome.family)),
        Analysis("fits", _fits),
        Analysis("per_level", _per_level),
    ),
    findings=(
        _rises("rl2", "RL^2's effective learning rate is higher when volatility is higher"),
        Finding(
            "... and rises with volatility across all levels", _spearman, "> 0", lambda rho: rho > 0
        ),
        _beats(
            "rw-best-fixed",
            "(implied) adapting the learning rate beats the best fixed one "
            "(delta rule tuned on training tasks)",
        ),
        _beats("ucb1", "RL^2 beats UCB1, a learner built for stationary arms"),
        _rises(
            "bayes-optimal",
            "(control, not a paper claim) the Bayes-optimal learner's fitted alpha also rises",
        ),
    ),
    intro="RL^2 (GRU-48, A2C) is meta-trained on training tasks (one trial = one episode of 100 "
    "pulls) and run once on each held-out task beside the reference agents.",
    figures=(
        Figure("reward_by_level.png", "Total reward per volatility level", _draw_rewards),
        Figure("learning_rate.png", "Fitted learning rate vs volatility", _draw_learning_rates),
    ),
    sections=_sections,
    num_test_tasks=8000,
    quick_test_tasks=2000,
)
