"""Wang et al. 2016 (arXiv 1611.05763), Sec. 3.1: restless bandits with varying volatility.

After Behrens et al. 2007: the reward probabilities of two arms (p and 1 - p) jump to fresh values
at random times, at a hazard rate that differs from task to task (``learn2rl.tasks.restless``:
h in {0.01, 0.03, 0.1, 0.3} per pull, 100 pulls). The paper's analysis fits a Rescorla-Wagner
(delta-rule) learner to the meta-trained agent's choices and finds that the agent's effective
learning rate is higher when the world is more volatile: the recurrent network has learned to set
its own learning rate from the statistics of the rewards it sees.

What runs:
1. RL^2 (GRU 48, A2C) meta-trained on the family (one trial = one 100-pull episode).
2. Reference agents (``learn2rl.baselines.restless``): the exact Bayes-optimal change-point filter,
   the best fixed-alpha delta rule (alpha and choice rule tuned on *training-split* tasks), the
   delta rule with the alpha tuned for each volatility level (privileged: it is told the level),
   UCB1, random, and the oracle that knows the current best arm.
3. The analysis: per volatility level, a maximum-likelihood fit of (alpha, beta) of a softmax delta
   rule to each agent's choices, with bootstrap 95% CIs over test trials
   (``fit_rescorla_wagner``); the total reward of every agent per level.

``learn2rl reproduce wang2016-restless [--quick] --out DIR``.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from learn2rl import checkpoint  # noqa: E402
from learn2rl.baselines import restless as agents_lib  # noqa: E402
from learn2rl.errors import Learn2RLError  # noqa: E402
from learn2rl.evaluation import EvalResult, ci95, run_trial  # noqa: E402
from learn2rl.experiments.common import (  # noqa: E402
    EVAL_SEED,
    compare,
    finding,
    findings_section,
    paired_difference,
    train_rl2,
    write_outputs,
)
from learn2rl.learners.rl2 import Config  # noqa: E402
from learn2rl.logging import read_metrics  # noqa: E402
from learn2rl.plots import plot_training  # noqa: E402
from learn2rl.report import config_text
from learn2rl.tasks import make  # noqa: E402
from learn2rl.tasks.restless import RestlessBandit  # noqa: E402
from learn2rl.trial import Trial  # noqa: E402

TASK = "bandit/restless-2arm"

# RL^2: the known-good bandit settings (GRU 48, A2C, 256 tasks per update, gamma 0.9).
CONFIG = Config(
    task=TASK,
    num_episodes=1,  # one episode of 100 pulls: the arm probabilities live in the episode
    algorithm="a2c",
    cell="gru",
    hidden_size=48,
    num_tasks=256,
    num_updates=10_000,
    updates_per_chunk=100,
    learning_rate=5e-3,
    final_learning_rate=5e-4,
    gamma=0.9,
    gae_lambda=1.0,
    entropy_coef=0.05,
    final_entropy_coef=0.0,
)
QUICK_CONFIG = CONFIG.replace(num_updates=2_500)

# Delta-rule tuning on training tasks: learning rates x choice rules (None = greedy).
TUNING_ALPHAS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0)
TUNING_BETAS = (None, 5.0, 10.0, 20.0)
TUNING_TASKS = 2000

# Maximum-likelihood fit: grids uniform in logit(alpha) and log(beta), refined by a parabola.
FIT_ALPHAS = jax.nn.sigmoid(jnp.linspace(-5.0, 5.0, 61))
FIT_BETAS = jnp.exp(jnp.linspace(np.log(0.25), np.log(200.0), 41))
NUM_BOOTSTRAP = 200


# --------------------------------------------------------------------------------------------
# Tuning the fixed-alpha delta rule (training split only)
# --------------------------------------------------------------------------------------------


@partial(jax.jit, static_argnums=0)
def _grid_totals(family: RestlessBandit, keys, tasks, grid_alpha, grid_beta) -> jax.Array:
    trial = Trial(family, 1)

    def totals(alpha, beta):
        # beta = inf reaches the agent as a traced value: it then chooses greedily.
        agent = agents_lib.rescorla_wagner_agent(family, alpha, beta)
        rewards = jax.vmap(lambda k, p: run_trial(agent, trial, k, p)[0])(keys, tasks)
        return rewards.sum(axis=1)

    return jax.vmap(totals)(grid_alpha, grid_beta)


def rescorla_wagner_grid_rewards(
    family: RestlessBandit, tasks, key: jax.Array, alphas, betas
) -> np.ndarray:
    """Total reward of the delta rule on each task for each (alpha, beta) in one ``vmap``:
    [len(alphas), len(betas), num_tasks]; beta None is greedy. Task i gets the key ``evaluate``
    gives it (seed 0), so the grid sees the same reward draws as ``evaluate`` would."""
    num_tasks = int(jax.tree.leaves(tasks)[0].shape[0])
    seed_key = jax.random.fold_in(key, 0)
    keys = jax.vmap(lambda i: jax.random.fold_in(seed_key, i))(jnp.arange(num_tasks))
    grid_alpha = jnp.asarray([a for a in alphas for _ in betas], jnp.float32)
    grid_beta = jnp.asarray(
        [jnp.inf if b is None else b for _ in alphas for b in betas], jnp.float32
    )
    out = _grid_totals(family, keys, tasks, grid_alpha, grid_beta)
    return np.asarray(out).reshape(len(alphas), len(betas), num_tasks)


def tune_rescorla_wagner(family: RestlessBandit, num_tasks: int = TUNING_TASKS) -> dict:
    """The best fixed (alpha, choice rule) over all training tasks, and the best greedy alpha for
    each volatility level, by mean total reward on ``num_tasks`` training-split tasks."""
    tasks = family.tasks(num_tasks, "train")
    totals = rescorla_wagner_grid_rewards(
        family, tasks, jax.random.PRNGKey(EVAL_SEED + 1), TUNING_ALPHAS, TUNING_BETAS
    )
    levels = np.asarray(tasks.level)
    overall = totals.mean(axis=2)
    i, j = np.unravel_index(np.argmax(overall), overall.shape)
    greedy = TUNING_BETAS.index(None)
    per_level = []
    for level in range(len(family.hazards)):
        scores = totals[:, greedy, levels == level].mean(axis=1)
        per_level.append(TUNING_ALPHAS[int(np.argmax(scores))])
    return {
        "alpha": TUNING_ALPHAS[i],
        "beta": TUNING_BETAS[j],
        "score": float(overall[i, j]),
        "per_level_alphas": per_level,
        "grid": {
            "alphas": list(TUNING_ALPHAS),
            "betas": ["greedy" if b is None else b for b in TUNING_BETAS],
            "mean_total_reward": overall.round(3).tolist(),
        },
        "num_tasks": num_tasks,
    }


# --------------------------------------------------------------------------------------------
# Maximum-likelihood fit of a softmax delta rule to choices
# --------------------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("coupled", "chunk"))
def _log_likelihood_chunks(actions, rewards, valid, alphas, betas, coupled: bool, chunk: int):
    """[N, A, B] log-likelihoods; inputs padded to a multiple of ``chunk`` trials, and each trial
    with its own grids ``alphas`` [N, A] and ``betas`` [N, B]."""

    def one_trial(a, r, v, trial_alphas, trial_betas):
        def per_alpha(alpha):
            values = agents_lib.rescorla_wagner_values(a, r, alpha, coupled)  # [T, 2]
            chosen = jnp.take_along_axis(values, a[:, None], axis=1)[:, 0]
            return 2.0 * chosen - values.sum(axis=1)  # Q(chosen) - Q(other)

        diff = jax.vmap(per_alpha)(trial_alphas)  # [A, T]
        ll = jax.nn.log_sigmoid(trial_betas[None, :, None] * diff[:, None, :])  # [A, B, T]
        return jnp.sum(ll * v[None, None, :], axis=2)

    inputs = (actions, rewards, valid, alphas, betas)
    shaped = [x.reshape((x.shape[0] // chunk, chunk) + x.shape[1:]) for x in inputs]
    out = jax.lax.map(lambda xs: jax.vmap(one_trial)(*xs), shaped)
    return out.reshape((actions.shape[0],) + out.shape[2:])


def trial_log_likelihoods(
    actions: np.ndarray,
    rewards: np.ndarray,
    valid: np.ndarray,
    coupled: bool,
    alphas=FIT_ALPHAS,
    betas=FIT_BETAS,
    chunk: int = 16,
) -> np.ndarray:
    """log P(choices of trial n | alpha_i, beta_j) for a softmax delta rule: [N, A, B].

    ``alphas`` / ``betas`` are grids shared by all trials ([A], [B]) or one grid per trial
    ([N, A], [N, B]). The delta rule's values depend on alpha only, so they are computed once per
    (trial, alpha); for two arms the softmax is a logistic function of beta times the value
    difference.
    """
    num = np.asarray(actions).shape[0]
    alphas = np.broadcast_to(np.asarray(alphas, np.float32), (num, np.shape(alphas)[-1]))
    betas = np.broadcast_to(np.asarray(betas, np.float32), (num, np.shape(betas)[-1]))
    padded = -(-num // chunk) * chunk

    def pad(x, dtype):
        x = np.asarray(x, dtype)
        return jnp.asarray(np.concatenate([x, np.repeat(x[:1] * 0, padded - num, axis=0)]))

    out = _log_likelihood_chunks(
        pad(actions, np.int32),
        pad(rewards, np.float32),
        pad(valid, np.float32),
        pad(alphas, np.float32),
        pad(betas, np.float32),
        coupled=bool(coupled),
        chunk=chunk,
    )
    return np.asarray(out)[:num]


def _refined_argmax(surface: np.ndarray) -> tuple[float, float, bool]:
    """Fractional grid indices of the maximum of an [A, B] surface: the grid maximum, refined by a
    quadratic fitted to its 3 x 3 neighbourhood (1-D parabolas at an edge of the grid). The flag
    says whether the grid maximum lies on the grid's edge."""
    i, j = np.unravel_index(np.argmax(surface), surface.shape)
    rows, cols = surface.shape
    interior = 0 < i < rows - 1 and 0 < j < cols - 1
    if interior:
        dx, dy = np.meshgrid([-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0], indexing="ij")
        dx, dy = dx.ravel(), dy.ravel()
        design = np.stack([np.ones(9), dx, dy, dx * dx, dx * dy, dy * dy], axis=1)
        coef = np.linalg.lstsq(design, surface[i - 1 : i + 2, j - 1 : j + 2].ravel(), rcond=None)[0]
        hessian = np.array([[2 * coef[3], coef[4]], [coef[4], 2 * coef[5]]])
        if np.all(np.linalg.eigvalsh(hessian) < 0):
            step = np.linalg.solve(hessian, -coef[1:3])
            if np.all(np.abs(step) <= 1.0):
                return i + float(step[0]), j + float(step[1]), False

    def offset(left, mid, right):
        curvature = left - 2.0 * mid + right
        if curvature >= 0:
            return 0.0
        return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))

    di = offset(*surface[i - 1 : i + 2, j]) if 0 < i < rows - 1 else 0.0
    dj = offset(*surface[i, j - 1 : j + 2]) if 0 < j < cols - 1 else 0.0
    return i + di, j + dj, not interior


def _estimate(surface, logit_grid, log_grid) -> tuple[float, float, bool]:
    """(alpha, beta, on_edge) at the refined maximum of a log-likelihood surface."""
    i, j, on_edge = _refined_argmax(surface)
    logit = float(np.interp(i, np.arange(len(logit_grid)), logit_grid))
    log_beta = float(np.interp(j, np.arange(len(log_grid)), log_grid))
    return 1.0 / (1.0 + np.exp(-logit)), float(np.exp(log_beta)), on_edge


FINE_POINTS = 25  # points per axis of the local grid around each group's coarse maximum
FINE_HALF_WIDTH = 1.5  # in coarse grid steps


def fit_rescorla_wagner(
    actions: np.ndarray,
    rewards: np.ndarray,
    valid: np.ndarray,
    groups: np.ndarray,
    coupled: bool,
    num_bootstrap: int = NUM_BOOTSTRAP,
    seed: int = 0,
) -> list[dict]:
    """Maximum-likelihood (alpha, beta) of a softmax delta rule, pooled over the trials of each
    group (e.g. volatility level), with percentile-bootstrap 95% CIs (resampling trials).

    Two grids: a coarse one uniform in logit(alpha) over [0.007, 0.993] and log(beta) over
    [0.25, 200], then, around each group's coarse maximum, a fine one (+-1.5 coarse steps, 25 x 25
    points), each refined by a local quadratic. The fine grid matters: with thousands of choices
    the likelihood peak is far narrower than a coarse step, and a quadratic over coarse cells is
    biased. A bootstrap resample whose maximum falls off the fine grid uses the coarse one.

    Returns one dict per group value (sorted): ``group, alpha, beta, alpha_ci, beta_ci,
    num_trials, log_likelihood``.
    """
    groups = np.asarray(groups)
    coarse = trial_log_likelihoods(actions, rewards, valid, coupled)
    coarse_logit = np.log(np.asarray(FIT_ALPHAS)) - np.log1p(-np.asarray(FIT_ALPHAS))
    coarse_log = np.log(np.asarray(FIT_BETAS))
    offsets = np.linspace(-FINE_HALF_WIDTH, FINE_HALF_WIDTH, FINE_POINTS)
    names = np.unique(groups)
    fine_logit, fine_log = {}, {}
    for name in names:
        i, j = np.unravel_index(np.argmax(coarse[groups == name].sum(axis=0)), coarse.shape[1:])
        fine_logit[name] = coarse_logit[i] + offsets * (coarse_logit[1] - coarse_logit[0])
        fine_log[name] = coarse_log[j] + offsets * (coarse_log[1] - coarse_log[0])
    trial_logit = np.stack([fine_logit[g] for g in groups])
    trial_log = np.stack([fine_log[g] for g in groups])
    fine = trial_log_likelihoods(
        actions, rewards, valid, coupled, 1.0 / (1.0 + np.exp(-trial_logit)), np.exp(trial_log)
    )
    rng = np.random.default_rng(seed)
    fits = []
    for name in names:
        members = groups == name
        n = int(members.sum())

        def estimate(weights, members=members, name=name):
            alpha, beta, off = _estimate(
                np.tensordot(weights, fine[members], axes=1), fine_logit[name], fine_log[name]
            )
            if off:
                alpha, beta, _ = _estimate(
                    np.tensordot(weights, coarse[members], axes=1), coarse_logit, coarse_log
                )
            return alpha, beta

        alpha, beta = estimate(np.ones(n))
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=num_bootstrap).astype(np.float64)
        boot = np.array([estimate(c) for c in counts])
        fits.append(
            {
                "group": name.item() if hasattr(name, "item") else name,
                "alpha": float(alpha),
                "beta": float(beta),
                "alpha_ci": [float(np.percentile(boot[:, 0], q)) for q in (2.5, 97.5)],
                "beta_ci": [float(np.percentile(boot[:, 1], q)) for q in (2.5, 97.5)],
                "num_trials": n,
                "log_likelihood": float(fine[members].sum(axis=0).max()),
            }
        )
    return fits


def spearman(x, y) -> float:
    """Spearman rank correlation (no ties expected)."""
    rx = np.argsort(np.argsort(np.asarray(x)))
    ry = np.argsort(np.argsort(np.asarray(y)))
    if len(rx) < 2 or rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def learning_rate_rises(fits: list[dict]) -> dict:
    """The test of the paper's claim on per-level fits (sorted by increasing volatility): the
    fitted alpha at the highest level exceeds the one at the lowest with non-overlapping 95% CIs,
    and the rank correlation of alpha with volatility is positive."""
    low, high = fits[0], fits[-1]
    rho = spearman(range(len(fits)), [f["alpha"] for f in fits])
    separated = high["alpha_ci"][0] > low["alpha_ci"][1]
    return {
        "lowest": low["alpha"],
        "highest": high["alpha"],
        "separated": bool(separated),
        "spearman": rho,
        "rises": bool(separated and rho > 0),
    }


# --------------------------------------------------------------------------------------------
# Per-level rewards
# --------------------------------------------------------------------------------------------


def per_level_rewards(result: EvalResult, levels: np.ndarray) -> list[dict]:
    levels = np.tile(levels, result.num_seeds)
    rows = []
    for level in np.unique(levels):
        totals = result.total_rewards[levels == level]
        rows.append(
            {
                "level": int(level),
                "mean_total_reward": float(totals.mean()),
                "ci95": ci95(totals),
                "num_tasks": int(totals.size),
            }
        )
    return rows


def paired_by_level(a: EvalResult, b: EvalResult, levels: np.ndarray) -> list[tuple[float, float]]:
    """Mean and 95% CI of total reward a - b on the same tasks, per level."""
    diff = a.total_rewards - b.total_rewards
    levels = np.tile(levels, a.num_seeds)
    return [
        (float(diff[levels == level].mean()), ci95(diff[levels == level]))
        for level in np.unique(levels)
    ]


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _plot_learning_rates(hazards, fits: dict[str, list[dict]], tuned: list[float], path: Path):
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=120)
    for name, agent_fits in fits.items():
        alpha = np.array([f["alpha"] for f in agent_fits])
        lo = alpha - np.array([f["alpha_ci"][0] for f in agent_fits])
        hi = np.array([f["alpha_ci"][1] for f in agent_fits]) - alpha
        ax.errorbar(hazards, alpha, yerr=[lo, hi], marker="o", capsize=3, label=f"{name} (fit)")
    ax.plot(hazards, tuned, "k--", marker="x", label="best greedy alpha per level (tuned)")
    ax.set_xscale("log")
    ax.set_xlabel("volatility: hazard rate of a change per pull")
    ax.set_ylabel("fitted learning rate alpha")
    highest = max([max(tuned)] + [f["alpha_ci"][1] for agent in fits.values() for f in agent])
    ax.set_ylim(0, min(1.05, 1.15 * highest))
    ax.set_title("effective learning rate vs volatility (95% bootstrap CIs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_rewards(hazards, by_level: dict[str, list[dict]], path: Path):
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=120)
    names = list(by_level)
    width = 0.8 / len(names)
    x = np.arange(len(hazards))
    for k, name in enumerate(names):
        means = [r["mean_total_reward"] for r in by_level[name]]
        cis = [r["ci95"] for r in by_level[name]]
        offset = (k - (len(names) - 1) / 2) * width
        ax.errorbar(x + offset, means, yerr=cis, fmt="o", capsize=2, ms=4, label=name)
    ax.set_xticks(x, [f"h = {h:g}" for h in hazards])
    ax.set_xlabel("volatility (hazard rate of a change per pull)")
    ax.set_ylabel("mean total reward (100 pulls)")
    ax.set_title("total reward per volatility level (95% CIs)")
    ax.grid(alpha=0.3, axis="y")
    # Between random (~50) and the learners (>= 60) the plot is empty: the legend goes there.
    ax.legend(fontsize=7, ncol=4, loc="center left", bbox_to_anchor=(0.0, 0.25))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# The experiment
# --------------------------------------------------------------------------------------------

FIT_AGENTS = ("rl2", "bayes-optimal")


def _train_seconds(out: Path) -> float:
    """Training seconds recorded in the RL^2 checkpoint under ``out`` (0 if there is none)."""
    directory = Path(out) / "rl2" / "checkpoint"
    if not checkpoint.exists(directory):
        return 0.0
    return float(checkpoint.load_meta(directory).get("train_seconds", 0.0))


def run(
    out: Path,
    quick: bool = False,
    progress: bool = True,
    console=None,
    config: Config | None = None,
    num_test_tasks: int | None = None,
    tuning_tasks: int = TUNING_TASKS,
    num_bootstrap: int = NUM_BOOTSTRAP,
) -> dict:
    tic = time.perf_counter()
    out = Path(out)
    config = config or (QUICK_CONFIG if quick else CONFIG)
    num_test_tasks = num_test_tasks or (2000 if quick else 8000)
    family = make(config.task)
    if not isinstance(family, RestlessBandit) or family.arms != "dependent":
        raise Learn2RLError(
            f"wang2016-restless needs a dependent-arm restless task, got {config.task}"
        )
    if config.num_episodes != 1:
        raise Learn2RLError(
            "wang2016-restless runs one episode per trial (the arm probabilities change within "
            f"the episode); got config.num_episodes={config.num_episodes}"
        )
    if console is not None:
        console.print(
            f"[bold]wang2016-restless[/bold]: RL^2 ({config.cell.upper()}-{config.hidden_size}, "
            f"{config.algorithm.upper()}) on {config.task}, {config.num_updates} updates x "
            f"{config.num_tasks} tasks -> {out}"
        )
    trained_before = _train_seconds(out)
    learner, state = train_rl2(config, out / "rl2", progress, console)
    plot_training(read_metrics(out / "rl2" / "metrics.jsonl"), out / "training.png")

    tuned = tune_rescorla_wagner(family, tuning_tasks)
    if console is not None:
        rule = "greedy" if tuned["beta"] is None else f"softmax beta {tuned['beta']}"
        console.print(
            f"  tuned delta rule on {tuning_tasks} training tasks: alpha {tuned['alpha']}, {rule};"
            f" per level {tuned['per_level_alphas']}"
        )
    rw_best = agents_lib.rescorla_wagner_agent(
        family, tuned["alpha"], tuned["beta"], name="rw-best-fixed"
    )
    agents = [
        learner.agent(state.params, name="rl2"),
        agents_lib.bayes_optimal_agent(family),
        rw_best,
        agents_lib.rescorla_wagner_per_level_agent(family, tuned["per_level_alphas"]),
        agents_lib.ucb1_agent(family),
        agents_lib.random_agent(family),
        agents_lib.oracle_agent(family),
    ]
    results = compare(agents, family, 1, num_test_tasks, console=console)
    by_name = {r.agent: r for r in results}
    tasks = family.tasks(num_test_tasks, "test")
    levels = np.asarray(tasks.level)
    hazards = list(family.hazards)

    fit_tic = time.perf_counter()
    fits = {}
    for name in FIT_AGENTS:
        r = by_name[name]
        fits[name] = fit_rescorla_wagner(
            r.actions, r.rewards, r.valid, np.tile(levels, r.num_seeds), True, num_bootstrap
        )
        for f in fits[name]:
            f["hazard"] = hazards[int(f["group"])]
    if console is not None:
        console.print(f"  fitted delta rules ({time.perf_counter() - fit_tic:.1f}s)")
    rises = {name: learning_rate_rises(fits[name]) for name in FIT_AGENTS}
    by_level = {name: per_level_rewards(r, levels) for name, r in by_name.items()}

    rl2 = by_name["rl2"]
    vs_rw = paired_difference(rl2, by_name["rw-best-fixed"])
    vs_ucb = paired_by_level(rl2, by_name["ucb1"], levels)
    vs_ucb_all = paired_difference(rl2, by_name["ucb1"])
    vs_rw_levels = paired_by_level(rl2, by_name["rw-best-fixed"], levels)
    vs_bayes = paired_difference(rl2, by_name["bayes-optimal"])

    def alphas_text(name):
        return ", ".join(
            f"{f['alpha']:.2f} [{f['alpha_ci'][0]:.2f}, {f['alpha_ci'][1]:.2f}]" for f in fits[name]
        )

    findings = [
        finding(
            "RL^2's effective learning rate is higher when volatility is higher",
            f"fitted alpha at h = {', '.join(f'{h:g}' for h in hazards)}: {alphas_text('rl2')}",
            "alpha(highest h) > alpha(lowest h), 95% CIs disjoint",
            rises["rl2"]["separated"],
        ),
        finding(
            "... and rises with volatility across all levels",
            f"Spearman rank correlation {rises['rl2']['spearman']:+.2f}",
            "> 0",
            rises["rl2"]["spearman"] > 0,
        ),
        finding(
            "(implied) adapting the learning rate beats the best fixed one (delta rule tuned on "
            "training tasks)",
            f"RL^2 - rw-best-fixed {vs_rw[0]:+.2f} ± {vs_rw[1]:.2f} total reward (paired); by "
            "level " + ", ".join(f"{d:+.2f} ± {c:.2f}" for d, c in vs_rw_levels),
            "difference - CI > 0",
            vs_rw[0] - vs_rw[1] > 0,
        ),
        finding(
            "RL^2 beats UCB1, a learner built for stationary arms",
            f"{vs_ucb_all[0]:+.2f} ± {vs_ucb_all[1]:.2f} total reward (paired); by level "
            + ", ".join(
                f"h {h:g}: {d:+.2f} ± {c:.2f}" for h, (d, c) in zip(hazards, vs_ucb, strict=True)
            ),
            "difference - CI > 0",
            vs_ucb_all[0] - vs_ucb_all[1] > 0,
        ),
        finding(
            "(control, not a paper claim) the Bayes-optimal learner's fitted alpha also rises",
            f"{alphas_text('bayes-optimal')}",
            "alpha(highest h) > alpha(lowest h), 95% CIs disjoint",
            rises["bayes-optimal"]["separated"],
        ),
    ]

    out.mkdir(parents=True, exist_ok=True)
    _plot_learning_rates(hazards, fits, tuned["per_level_alphas"], out / "learning_rate.png")
    _plot_rewards(hazards, by_level, out / "reward_by_level.png")
    seconds = time.perf_counter() - tic
    train_seconds = _train_seconds(out)
    command = "learn2rl reproduce wang2016-restless" + (" --quick" if quick else "")
    level_counts = np.bincount(levels, minlength=len(hazards)).tolist()
    fit_table = [
        "| agent | " + " | ".join(f"h = {h:g}" for h in hazards) + " |",
        "|---|" + "---|" * len(hazards),
    ]
    for name in FIT_AGENTS:
        fit_table.append(
            f"| {name} alpha | "
            + " | ".join(
                f"{f['alpha']:.3f} [{f['alpha_ci'][0]:.3f}, {f['alpha_ci'][1]:.3f}]"
                for f in fits[name]
            )
            + " |"
        )
        fit_table.append(
            f"| {name} beta | "
            + " | ".join(
                f"{f['beta']:.1f} [{f['beta_ci'][0]:.1f}, {f['beta_ci'][1]:.1f}]"
                for f in fits[name]
            )
            + " |"
        )
    fit_table.append(
        "| tuned greedy alpha | " + " | ".join(f"{a:g}" for a in tuned["per_level_alphas"]) + " |"
    )
    reward_table = [
        "| agent | " + " | ".join(f"h = {h:g}" for h in hazards) + " |",
        "|---|" + "---|" * len(hazards),
    ]
    for name, rows in by_level.items():
        reward_table.append(
            f"| {name} | "
            + " | ".join(f"{r['mean_total_reward']:.2f} ± {r['ci95']:.2f}" for r in rows)
            + " |"
        )
    rule = "greedy" if tuned["beta"] is None else f"softmax, beta = {tuned['beta']}"
    sections = [
        "## Reference agents",
        "",
        f"`rw-best-fixed`: coupled delta rule with alpha = {tuned['alpha']}, {rule}: the best of "
        f"{len(TUNING_ALPHAS)} learning rates x {len(TUNING_BETAS)} choice rules on "
        f"{tuning_tasks} training-split tasks (mean total reward {tuned['score']:.2f} there). "
        f"`rw-per-level` (privileged: told the level) uses the best greedy alpha of each level, "
        f"{tuned['per_level_alphas']}. `bayes-optimal`: exact change-point posterior over (level, "
        "run length), greedy on the posterior mean (optimal here, see "
        "`learn2rl.baselines.restless`). `ucb1`: c = 1, sample means. "
        f"RL^2 - Bayes-optimal: {vs_bayes[0]:+.2f} ± {vs_bayes[1]:.2f} total reward (paired).",
        "",
        "## Total reward per volatility level",
        "",
        *reward_table,
        "",
        f"Test tasks per level: {level_counts}.",
        "",
        "![reward per volatility level](reward_by_level.png)",
        "",
        "## Fitted learning rates",
        "",
        "Maximum likelihood of a softmax delta rule (coupled: one estimate of p, the observation "
        "about p is r after arm 0 and 1 - r after arm 1), pooled over each level's test trials; "
        f"[2.5%, 97.5%] percentiles of {num_bootstrap} bootstrap resamples of trials.",
        "",
        *fit_table,
        "",
        "![fitted learning rate vs volatility](learning_rate.png)",
        "",
        "## Findings",
        "",
        findings_section(findings),
        "",
        "Training curve: ![training](training.png). Config: `" + config_text(config) + "`.",
        "",
        f"Wall time of this invocation: {seconds:.0f} s, of which RL^2 training "
        f"{train_seconds - trained_before:.0f} s; RL^2 training of the run in `rl2/` took "
        f"{train_seconds:.0f} s in all (checkpoint metadata; a finished run is reloaded, not "
        "retrained).",
    ]
    intro = (
        f"Command: `{command}`. RL^2 meta-trained for {config.num_updates} updates of "
        f"{config.num_tasks} trials (one trial = one episode of {family.num_pulls} pulls on one "
        f"task), then run once on each of {num_test_tasks} held-out test tasks "
        f"({level_counts} per hazard level h = {hazards}), 1 seed, beside the reference agents. "
        "Regret is pseudo-regret against the arm that is best at each pull."
    )
    extra = {
        "hazards": hazards,
        "tuned_rescorla_wagner": tuned,
        "fits": fits,
        "learning_rate_rises": rises,
        "per_level_rewards": by_level,
        "paired": {
            "rl2_minus_rw_best_fixed": list(vs_rw),
            "rl2_minus_rw_best_fixed_by_level": [list(x) for x in vs_rw_levels],
            "rl2_minus_ucb1": list(vs_ucb_all),
            "rl2_minus_ucb1_by_level": [list(x) for x in vs_ucb],
            "rl2_minus_bayes_optimal": list(vs_bayes),
        },
        "findings": findings,
        "config": config.to_dict(),
        "quick": quick,
        "wall_seconds": round(seconds, 1),
        "train_seconds": round(train_seconds, 1),
    }
    rows = write_outputs(
        out,
        results,
        "Wang et al. 2016: restless bandits, learning rate vs volatility",
        intro,
        sections,
        extra,
        console=console,
    )
    return {"rows": rows, "findings": findings, "fits": fits}
