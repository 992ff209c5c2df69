"""Wang et al. 2016 (arXiv 1611.05763): RL^2 on the two-step task shows model-based behaviour.

Task: ``twostep/daw2011`` (``learn2rl.tasks.two_step``): Daw et al. 2011's two-step task, common
transition 0.75, the good second-stage state pays 0.9 (the other 0.1) and swaps with probability
0.025 per two-step trial; one RL^2 trial = one episode of 100 two-step trials (200 steps).
("Two-step trial" is Daw's trial; an RL^2 trial is a whole run on one task.)

Wang et al. meta-trained an LSTM A2C agent on this task and found that its choices show the
signature of model-based control in the classic analysis of Daw et al.: the probability of
repeating the previous first-stage choice ("stay") depends on the *interaction* of reward and
transition type (stay more after a rewarded common or an unrewarded rare transition), not only on
reward, as a model-free learner's would.

Reference agents (random, oracle, model-free, model-based, ideal-observer; what each knows and
how it learns is in ``learn2rl.baselines.two_step``) run on the same held-out tasks and draws as
RL^2.

``learn2rl reproduce wang2016-twostep [--quick] --out DIR``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from learn2rl.baselines.two_step import reference_agents
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import EvalResult, ci95, evaluate
from learn2rl.experiments.common import (
    EVAL_SEED,
    finding,
    tested_findings_footer,
    train_rl2,
)
from learn2rl.learners.rl2 import Config
from learn2rl.report import write_results_json
from learn2rl.tasks.two_step import STATE_A, TwoStepTask

TASK = "twostep/daw2011"
CONFIG = Config(
    task=TASK,
    num_episodes=1,  # one episode = 100 two-step trials = 200 steps
    algorithm="a2c",
    cell="gru",
    hidden_size=48,
    num_tasks=128,
    num_updates=2000,
    updates_per_chunk=50,
    learning_rate=5e-3,
    final_learning_rate=5e-4,
    gamma=0.9,
    gae_lambda=1.0,
    entropy_coef=0.05,
    final_entropy_coef=0.0,
)
QUICK_CONFIG = CONFIG.replace(num_updates=400)
CELLS = ("rewarded, common", "rewarded, rare", "unrewarded, common", "unrewarded, rare")
NUM_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0


# --- the stay-probability analysis ----------------------------------------------------------
def two_step_trials(result: EvalResult, good: np.ndarray) -> dict[str, np.ndarray]:
    """Per-two-step-trial arrays [episodes, num_trials] from an evaluation with ``record_obs``.

    ``good`` is the tasks' schedule ``[num_tasks, num_trials]`` (``tasks.good``). Returns the
    first-stage action, the second-stage state (0 = A, 1 = B), whether it was rewarded, whether the
    transition was common, and whether the first-stage choice was *correct* (its common state was
    the good one in that two-step trial).
    """
    if result.observations is None:
        raise Learn2RLError("the two-step analysis needs evaluate(..., record_obs=True)")
    good = np.asarray(good)
    num_tasks, num_trials = good.shape
    rows, steps = result.actions.shape
    per_episode = 2 * num_trials
    if steps % per_episode or rows != num_tasks * result.num_seeds:
        raise Learn2RLError(
            f"results of shape {result.actions.shape} do not match {num_tasks} tasks of "
            f"{num_trials} two-step trials x {result.num_seeds} seed(s)"
        )
    episodes_per_row = steps // per_episode
    episodes = rows * episodes_per_row
    actions = result.actions.reshape(episodes, num_trials, 2)
    rewards = result.rewards.reshape(episodes, num_trials, 2)
    locations = result.observations.reshape(episodes, num_trials, 2, -1).argmax(axis=-1)
    # Rows are seed-major (seed s, task i -> row s * num_tasks + i); each episode of a row
    # replays its task's schedule from the start.
    good = np.repeat(np.tile(good, (result.num_seeds, 1)), episodes_per_row, axis=0)
    first = actions[:, :, 0]
    second_state = locations[:, :, 1] - STATE_A
    return {
        "first_action": first,
        "second_state": second_state,
        "rewarded": rewards[:, :, 1] > 0,
        "common": second_state == first,
        "correct": first == good,
    }


def stay_counts(trials: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per episode: stays and counts after each of the four CELLS, arrays [episodes, 4]."""
    first = trials["first_action"]
    stay = first[:, 1:] == first[:, :-1]
    rewarded, common = trials["rewarded"][:, :-1], trials["common"][:, :-1]
    masks = [rewarded & common, rewarded & ~common, ~rewarded & common, ~rewarded & ~common]
    stays = np.stack([(stay & m).sum(axis=1) for m in masks], axis=1)
    counts = np.stack([m.sum(axis=1) for m in masks], axis=1)
    return stays, counts


def _effects(p: np.ndarray) -> dict[str, np.ndarray]:
    """Reward and transition main effects and their interaction from P(stay) per CELL
    (last axis). interaction = [P(rc) - P(rr)] - [P(uc) - P(ur)]: positive for model-based."""
    rc, rr, uc, ur = (p[..., i] for i in range(4))
    return {
        "reward": 0.5 * ((rc + rr) - (uc + ur)),
        "transition": 0.5 * ((rc + uc) - (rr + ur)),
        "interaction": (rc - rr) - (uc - ur),
    }


REGRESSORS = ("intercept", "reward", "transition", "reward x transition", "correct")
RIDGE = 1.0  # L2 penalty on the logistic coefficients (not the intercept): keeps a deterministic
# agent's fit finite; negligible next to the ~10^4-10^5 stay decisions of a test set


# The regressors take 8 patterns (reward, transition, correct each yes/no), so the regression runs
# on per-episode counts of stays and decisions per pattern instead of one row per decision.
_PATTERNS = np.array([[r, c, k] for r in (0, 1) for c in (0, 1) for k in (0, 1)], bool)


def _pattern_design() -> np.ndarray:
    reward, common, correct = (2.0 * _PATTERNS[:, i] - 1.0 for i in range(3))
    return np.stack([np.ones(8), reward, common, reward * common, correct], axis=1)


def pattern_counts(trials: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per episode: stays and decisions after each of the 8 (reward, transition, correct)
    patterns of the previous two-step trial, arrays [episodes, 8]."""
    first = trials["first_action"]
    stay = first[:, 1:] == first[:, :-1]
    index = (
        4 * trials["rewarded"][:, :-1] + 2 * trials["common"][:, :-1] + trials["correct"][:, :-1]
    )
    stays = np.stack([(stay & (index == k)).sum(axis=1) for k in range(8)], axis=1)
    counts = np.stack([(index == k).sum(axis=1) for k in range(8)], axis=1)
    return stays, counts


def _logistic_fit(x, stays, counts, start=None, iterations=50):
    """Binomial ridge logistic regression (``stays`` of ``counts`` per design row) by Newton's
    method."""
    beta = np.zeros(x.shape[1]) if start is None else start.copy()
    ridge = RIDGE * np.diag([0.0] + [1.0] * (x.shape[1] - 1))
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        hessian = x.T @ ((counts * p * (1 - p))[:, None] * x) + ridge
        step = np.linalg.solve(hessian, x.T @ (stays - counts * p) - ridge @ beta)
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def stay_regression(
    trials: dict[str, np.ndarray], num_bootstrap: int = NUM_BOOTSTRAP, seed: int = BOOTSTRAP_SEED
) -> dict[str, Any]:
    """Logistic regression of stay on reward, transition, their interaction and whether the
    previous choice was correct (Akam, Costa & Dayan 2015, PLoS Comput. Biol. 11:e1004648), all
    coded +-1.

    Why the "correct" regressor: with reversals, a model-free learner's values track the good
    action, and whether its last choice was the good one is correlated with the reward x transition
    cells (rewarded-common and unrewarded-rare happen mostly after correct choices), so the raw
    stay plot credits it with a spurious interaction. Controlling for correctness leaves a
    model-free learner with only the reward effect and a model-based one with the interaction.
    Coefficients with 95% percentile-bootstrap CIs over test episodes.
    """
    stays, counts = pattern_counts(trials)
    x = _pattern_design()
    beta = _logistic_fit(x, stays.sum(0), counts.sum(0))
    episodes = stays.shape[0]
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(episodes, np.full(episodes, 1.0 / episodes), size=num_bootstrap)
    boot_stays, boot_counts = draws @ stays, draws @ counts
    boot = np.stack(
        [_logistic_fit(x, s, n, beta) for s, n in zip(boot_stays, boot_counts, strict=True)]
    )
    low, high = np.percentile(boot, [2.5, 97.5], axis=0)
    return {
        name: {"coef": float(beta[i]), "ci95": [float(low[i]), float(high[i])]}
        for i, name in enumerate(REGRESSORS)
    }


def stay_analysis(
    result: EvalResult,
    good: np.ndarray,
    num_bootstrap: int = NUM_BOOTSTRAP,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, Any]:
    """The classic analysis (Daw et al. 2011; Wang et al. 2016's bar plot): stay probabilities
    after each (reward x transition) cell, pooled over test episodes, with 95%
    percentile-bootstrap CIs over episodes, the reward and transition main effects and the
    reward x transition interaction; plus ``stay_regression``."""
    trials = two_step_trials(result, good)
    stays, counts = stay_counts(trials)
    episodes = stays.shape[0]
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(episodes, np.full(episodes, 1.0 / episodes), size=num_bootstrap)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = stays.sum(0) / counts.sum(0)
        boot = (weights @ stays) / (weights @ counts)

    def interval(samples):
        low, high = np.nanpercentile(samples, [2.5, 97.5], axis=0)
        return np.stack([low, high], axis=-1).tolist()

    effects, boot_effects = _effects(p), _effects(boot)
    return {
        "agent": result.agent,
        "cells": list(CELLS),
        "stay_probability": p.tolist(),
        "stay_ci95": interval(boot),
        "counts": counts.sum(0).tolist(),
        "effects": {k: float(v) for k, v in effects.items()},
        "effects_ci95": {k: interval(v) for k, v in boot_effects.items()},
        "regression": stay_regression(trials, num_bootstrap, seed),
        "episodes": int(episodes),
    }


def reward_per_trial(result: EvalResult) -> tuple[float, float]:
    """Mean reward per two-step trial and its 95% CI half-width (over test tasks x seeds)."""
    per_task = result.total_rewards / (result.rewards.shape[1] // 2)
    return float(per_task.mean()), ci95(per_task)


# --- plots ----------------------------------------------------------------------------------
def plot_stay_probabilities(analyses: list[dict], path: Path) -> Path:
    """The classic bar plot: P(stay) after rewarded / unrewarded x common / rare, per agent."""
    from learn2rl.plots import plt

    fig, axes = plt.subplots(1, len(analyses), figsize=(3.0 * len(analyses), 3.4), dpi=120)
    axes = np.atleast_1d(axes)
    for ax, analysis in zip(axes, analyses, strict=True):
        p = np.asarray(analysis["stay_probability"])
        ci = np.asarray(analysis["stay_ci95"])
        x = np.array([0.0, 1.0])
        for offset, (cells, color, label) in enumerate(
            [((0, 2), "tab:blue", "common"), ((1, 3), "tab:red", "rare")]
        ):
            idx = list(cells)
            err = np.abs(ci[idx].T - p[idx])
            ax.bar(x + (offset - 0.5) * 0.38, p[idx], 0.36, yerr=err, color=color, label=label)
        ax.set_xticks(x, ["rewarded", "unrewarded"])
        ax.set_ylim(0, 1.2)
        ax.set_title(
            f"{analysis['agent']}\ninteraction {analysis['effects']['interaction']:+.2f}",
            fontsize=9,
        )
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("P(repeat first-stage choice)")
    axes[0].legend(fontsize=8, loc="upper center", ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# --- the experiment -------------------------------------------------------------------------
def _fmt_ci(ci) -> str:
    return f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def run(
    out: Path,
    quick: bool = False,
    progress: bool = True,
    console=None,
    config: Config | None = None,
    num_test_tasks: int | None = None,
) -> dict:
    out = Path(out)
    config = config or (QUICK_CONFIG if quick else CONFIG)
    num_test_tasks = num_test_tasks or (500 if quick else 2000)
    if console is not None:
        console.print(
            f"[bold]wang2016-twostep[/bold]: RL^2 on {config.task}, {config.num_updates} updates "
            f"x {config.num_tasks} trials -> {out}"
        )
    tic = time.perf_counter()
    learner, state = train_rl2(config, out / "rl2", progress, console)
    train_seconds = time.perf_counter() - tic
    family: TwoStepTask = learner.family
    num_trials = family.num_trials
    agents = [learner.agent(state.params, name="rl2"), *reference_agents(family)]
    tasks = family.tasks(num_test_tasks, "test")
    key = jax.random.PRNGKey(EVAL_SEED)
    good = np.asarray(tasks.good)
    results, analyses = [], {}
    tic = time.perf_counter()
    for agent in agents:
        result = evaluate(agent, family, tasks, config.num_episodes, key, record_obs=True)
        results.append(result)
        analyses[agent.name] = stay_analysis(result, good)
    eval_seconds = time.perf_counter() - tic
    by_name = {r.agent: r for r in results}
    rows = []
    for result in results:
        row = result.summary()
        mean, half = reward_per_trial(result)
        row.update(reward_per_two_step_trial=mean, reward_per_two_step_trial_ci95=half)
        row["stay"] = analyses[result.agent]
        rows.append(row)
    rows.sort(key=lambda r: -r["mean_total_reward"])

    rl2 = analyses["rl2"]
    rl2_reward, rl2_half = reward_per_trial(by_name["rl2"])
    ideal_reward, _ = reward_per_trial(by_name["ideal-observer"])
    value_good, value_bad = family.trial_value
    random_value = 0.5 * (value_good + value_bad)
    inter, inter_ci = rl2["effects"]["interaction"], rl2["effects_ci95"]["interaction"]
    reg = rl2["regression"]
    reg_inter, reg_reward = reg["reward x transition"], reg["reward"]
    mf_reg = analyses["model-free"]["regression"]
    mb_reg = analyses["model-based"]["regression"]
    gap_closed = (rl2_reward - random_value) / (ideal_reward - random_value)
    findings = [
        finding(
            "RL^2 shows the model-based signature in the stay plot: stay after rewarded-common "
            "and unrewarded-rare is higher (reward x transition interaction > 0)",
            f"interaction {inter:+.3f}, 95% bootstrap CI {_fmt_ci(inter_ci)} over "
            f"{rl2['episodes']} test episodes",
            "CI lower bound > 0",
            inter_ci[0] > 0,
        ),
        finding(
            "The interaction survives controlling for choice correctness (logistic regression, "
            "Akam et al. 2015), which removes the model-free agent's spurious one",
            f"RL^2 coefficient {reg_inter['coef']:+.2f} {_fmt_ci(reg_inter['ci95'])}; "
            f"model-free {mf_reg['reward x transition']['coef']:+.2f} "
            f"{_fmt_ci(mf_reg['reward x transition']['ci95'])}",
            "RL^2 CI lower bound > 0",
            reg_inter["ci95"][0] > 0,
        ),
        finding(
            "RL^2 is model-based rather than model-free: its interaction coefficient dominates "
            "its reward coefficient (the model-free agent: the reverse)",
            f"RL^2 interaction {reg_inter['coef']:+.2f} vs reward {reg_reward['coef']:+.2f}; "
            f"model-free {mf_reg['reward x transition']['coef']:+.2f} vs "
            f"{mf_reg['reward']['coef']:+.2f}; model-based "
            f"{mb_reg['reward x transition']['coef']:+.2f} vs {mb_reg['reward']['coef']:+.2f}",
            "RL^2 interaction > 2 x abs(reward)",
            reg_inter["coef"] > 2 * abs(reg_reward["coef"]),
        ),
        finding(
            "RL^2 earns more than chance per two-step trial",
            f"{rl2_reward:.3f} ± {rl2_half:.3f} (random {random_value:.2f})",
            f"CI lower bound > {random_value:.2f}",
            rl2_reward - rl2_half > random_value,
        ),
        finding(
            "RL^2 approaches the best achievable reward (the oracle knows the good state; the "
            "ideal observer is the best agent that does not)",
            f"RL^2 {rl2_reward:.3f}, ideal observer {ideal_reward:.3f}, oracle {value_good:.2f}: "
            f"{100 * gap_closed:.0f}% of the random-to-ideal gap closed",
            ">= 80% of the gap closed",
            gap_closed >= 0.8,
        ),
    ]

    plot_stay_probabilities(
        [analyses[name] for name in ("rl2", "model-based", "model-free", "ideal-observer")],
        out / "stay_probability.png",
    )
    from learn2rl.logging import read_metrics
    from learn2rl.plots import plot_training

    plot_training(read_metrics(out / "rl2" / "metrics.jsonl"), out / "training.png")
    extra = {
        "config": config.to_dict(),
        "findings": findings,
        "quick": quick,
        "num_trials_per_episode": num_trials,
        "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "oracle_reward_per_two_step_trial": value_good,
        "random_reward_per_two_step_trial": random_value,
    }
    write_results_json(rows, out / "results.json", extra)
    _write_report(out, quick, config, num_test_tasks, family, rows, findings, train_seconds)
    if console is not None:
        _print_table(console, rows)
    return {"rows": rows, "findings": findings}


def _write_report(out, quick, config, num_test_tasks, family, rows, findings, train_seconds):
    value_good, value_bad = family.trial_value
    lines = [
        "# Wang et al. 2016: the two-step task (Daw et al. 2011)",
        "",
        f"Command: `learn2rl reproduce wang2016-twostep{' --quick' if quick else ''} --out DIR`.",
        "",
        f"RL^2 ({config.cell.upper()}-{config.hidden_size}, {config.algorithm.upper()}, gamma "
        f"{config.gamma}) meta-trained for {config.num_updates} updates of {config.num_tasks} "
        f"RL^2 trials ({train_seconds:.0f} s of wall time in this call, including compilation; "
        f"0 if the run was already there). One RL^2 trial = one episode of {family.num_trials} "
        f"two-step trials (Daw's trials; {family.episode_length} environment steps). Task: "
        f"`{family.family_id}`: common transition {family.p_common}, good state pays "
        f"{family.p_good}, the other {family.p_bad}; the good state swaps with probability "
        f"{family.swap_prob} before each two-step trial (the schedule is part of the task, so all "
        f"agents face the same reversals). Every agent runs once (one seed) on each of "
        f"{num_test_tasks} held-out test tasks with the same evaluation key.",
        "",
        f"Exact references: the oracle (privileged) earns {value_good:.2f} per two-step trial "
        f"({family.p_common} x {family.p_good} + {1 - family.p_common:.2f} x {family.p_bad}), a "
        f"random agent {0.5 * (value_good + value_bad):.2f}; the tests check the oracle and "
        "random agents within two 95%-CI half-widths of these values. The ideal observer "
        "(Bayesian belief over which state is good, greedy choice) is the best an agent without "
        "the task parameters can do.",
        "",
        "| agent | reward / two-step trial | 95% CI | total reward | mean regret | "
        "P(stay) rc / rr / uc / ur | interaction [95% CI] | reward effect [95% CI] | "
        "regression: interaction [95% CI] | regression: reward [95% CI] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        s = row["stay"]
        reg = s["regression"]
        p = " / ".join(f"{v:.2f}" for v in s["stay_probability"])
        lines.append(
            f"| {row['agent']} | {row['reward_per_two_step_trial']:.3f} | "
            f"±{row['reward_per_two_step_trial_ci95']:.3f} | {row['mean_total_reward']:.2f} | "
            f"{row['mean_regret']:.2f} | {p} | {s['effects']['interaction']:+.3f} "
            f"{_fmt_ci(s['effects_ci95']['interaction'])} | {s['effects']['reward']:+.3f} "
            f"{_fmt_ci(s['effects_ci95']['reward'])} | "
            f"{reg['reward x transition']['coef']:+.2f} "
            f"{_fmt_ci(reg['reward x transition']['ci95'])} | {reg['reward']['coef']:+.2f} "
            f"{_fmt_ci(reg['reward']['ci95'])} |"
        )
    lines += [
        "",
        "rc / rr / uc / ur: after a rewarded-common, rewarded-rare, unrewarded-common, "
        "unrewarded-rare two-step trial. interaction = [P(rc) - P(rr)] - [P(uc) - P(ur)]; reward "
        "effect = mean over transitions of P(stay | rewarded) - P(stay | unrewarded). CIs: 95% "
        f"percentile bootstrap over test episodes ({NUM_BOOTSTRAP} resamples). Regression: "
        "logistic regression of stay on reward, transition, reward x "
        "transition and previous-choice-correct, all coded +-1, ridge "
        f"{RIDGE} (Akam, Costa & Dayan 2015): with reversals a model-free learner shows a spurious "
        "interaction in the raw plot, because rewarded-common and unrewarded-rare outcomes follow "
        "mostly correct choices, which it repeats; the correct regressor takes that out. Regret is "
        "pseudo-regret against the oracle, credited to first-stage choices (0.4 per choice of the "
        "action whose common state is bad).",
        "",
        "![stay probabilities](stay_probability.png)",
        "",
        *tested_findings_footer(findings, config),
    ]
    (out / "report.md").write_text("\n".join(lines))


def _print_table(console, rows):
    from rich.table import Table

    table = Table(title="two-step task: reward per two-step trial and stay probabilities")
    for column in ["agent", "reward/trial", "95% CI", "interaction", "reward effect"]:
        table.add_column(column, justify="left" if column == "agent" else "right")
    for row in rows:
        effects = row["stay"]["effects"]
        table.add_row(
            row["agent"],
            f"{row['reward_per_two_step_trial']:.3f}",
            f"±{row['reward_per_two_step_trial_ci95']:.3f}",
            f"{effects['interaction']:+.3f}",
            f"{effects['reward']:+.3f}",
        )
    console.print(table)
