"""Restless bandits (Wang et al. 2016, arXiv 1611.05763, Sec. 3.1): the Rescorla-Wagner analysis.

The paper fits a delta rule (Rescorla-Wagner) to an agent's choices and compares the fitted
learning rate across volatility levels. Here:

- ``rescorla_wagner_grid_rewards`` / ``tune_rescorla_wagner``: total reward of the delta rule for
  a grid of (alpha, choice rule) in one ``vmap``, and the best fixed and per-level settings on
  training tasks (the reference agents ``rw-best-fixed`` and ``rw-per-level``);
- ``trial_log_likelihoods`` / ``fit_rescorla_wagner``: the maximum-likelihood (alpha, beta) of a
  softmax delta rule per group of trials, on a coarse then a fine grid refined by a quadratic
  (``refined_argmax``), with percentile-bootstrap intervals over trials (``scipy.stats``);
- ``learning_rate_rises``: the test of the claim on per-level fits; ``group_means``: a mean and
  its 95% interval per group (per level).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from learn2rl.baselines import restless
from learn2rl.evaluation import ci95, run_trial
from learn2rl.trial import Trial

# Maximum-likelihood fit: grids uniform in logit(alpha) and log(beta), refined by a parabola.
FIT_ALPHAS = jax.nn.sigmoid(jnp.linspace(-5.0, 5.0, 61))
FIT_BETAS = jnp.exp(jnp.linspace(np.log(0.25), np.log(200.0), 41))
FINE_POINTS = 25  # points per axis of the local grid around each group's coarse maximum
FINE_HALF_WIDTH = 1.5  # in coarse grid steps


@partial(jax.jit, static_argnums=0)
def _grid_totals(family, keys, tasks, grid_alpha, grid_beta) -> jax.Array:
    trial = Trial(family, 1)

    def totals(alpha, beta):
        # beta = inf reaches the agent as a traced value: it then chooses greedily.
        agent = restless.rescorla_wagner_agent(family, alpha, beta)
        rewards = jax.vmap(lambda k, p: run_trial(agent, trial, k, p)[0])(keys, tasks)
        return rewards.sum(axis=1)

    return jax.vmap(totals)(grid_alpha, grid_beta)


def rescorla_wagner_grid_rewards(family, tasks, key: jax.Array, alphas, betas) -> np.ndarray:
    """Total reward of the delta rule on each task for each (alpha, beta) in one ``vmap``:
    [len(alphas), len(betas), num_tasks]; beta None is greedy. Task i gets the key ``evaluate``
    gives it (seed 0), so the grid sees the same reward draws as ``evaluate`` would."""
    num_tasks = int(jax.tree.leaves(tasks)[0].shape[0])
    seed_key = jax.random.fold_in(key, 0)
    keys = jax.vmap(lambda i: jax.random.fold_in(seed_key, i))(jnp.arange(num_tasks))
    grid_alpha = jnp.asarray([a for a in alphas for _ in betas], jnp.float32)
    grid_beta = jnp.asarray([jnp.inf if b is None else b for _ in alphas for b in betas])
    out = _grid_totals(family, keys, tasks, grid_alpha, grid_beta.astype(jnp.float32))
    return np.asarray(out).reshape(len(alphas), len(betas), num_tasks)


def tune_rescorla_wagner(family, num_tasks: int, key: jax.Array, alphas, betas) -> dict:
    """The best fixed (alpha, choice rule) over ``num_tasks`` training-split tasks, and the best
    greedy alpha (``None`` must be among ``betas``) of each volatility level, by mean total
    reward."""
    tasks = family.tasks(num_tasks, "train")
    totals = rescorla_wagner_grid_rewards(family, tasks, key, alphas, betas)
    levels = np.asarray(tasks.level)
    overall = totals.mean(axis=2)
    i, j = np.unravel_index(np.argmax(overall), overall.shape)
    greedy = totals[:, list(betas).index(None)]
    per_level = [
        alphas[int(np.argmax(greedy[:, levels == level].mean(axis=1)))]
        for level in range(len(family.hazards))
    ]
    return {
        "alpha": alphas[i],
        "beta": betas[j],
        "score": float(overall[i, j]),
        "per_level_alphas": per_level,
        "grid": {
            "alphas": list(alphas),
            "betas": ["greedy" if b is None else b for b in betas],
            "mean_total_reward": overall.round(3).tolist(),
        },
        "num_tasks": num_tasks,
    }


@partial(jax.jit, static_argnames=("coupled", "chunk"))
def _log_likelihood_chunks(actions, rewards, valid, alphas, betas, coupled: bool, chunk: int):
    """[N, A, B] log-likelihoods; inputs padded to a multiple of ``chunk`` trials, and each trial
    with its own grids ``alphas`` [N, A] and ``betas`` [N, B]."""

    def one_trial(a, r, v, trial_alphas, trial_betas):
        def per_alpha(alpha):
            values = restless.rescorla_wagner_values(a, r, alpha, coupled)  # [T, 2]
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
    actions, rewards, valid, coupled: bool, alphas=FIT_ALPHAS, betas=FIT_BETAS, chunk: int = 16
) -> np.ndarray:
    """log P(choices of trial n | alpha_i, beta_j) for a softmax delta rule of two arms: [N, A, B].

    P(a_t) = sigmoid(beta (Q_t(a_t) - Q_t(other))), Q from ``baselines.restless.
    rescorla_wagner_values`` (coupled: one estimate of p). ``alphas`` / ``betas`` are grids shared
    by all trials ([A], [B]) or one grid per trial ([N, A], [N, B]); steps not ``valid`` count
    nothing. The values depend on alpha only, so they are computed once per (trial, alpha).
    """
    num = np.asarray(actions).shape[0]
    alphas = np.broadcast_to(np.asarray(alphas, np.float32), (num, np.shape(alphas)[-1]))
    betas = np.broadcast_to(np.asarray(betas, np.float32), (num, np.shape(betas)[-1]))
    padded = -(-num // chunk) * chunk

    def pad(x, dtype):
        x = np.asarray(x, dtype)
        return jnp.asarray(np.concatenate([x, np.repeat(x[:1] * 0, padded - num, axis=0)]))

    arrays = [pad(x, np.float32) for x in (rewards, valid, alphas, betas)]
    out = _log_likelihood_chunks(
        pad(actions, np.int32), *arrays, coupled=bool(coupled), chunk=chunk
    )
    return np.asarray(out)[:num]


def refined_argmax(surface: np.ndarray) -> tuple[float, float, bool]:
    """Fractional grid indices of the maximum of an [A, B] surface: the grid maximum, refined by a
    quadratic fitted to its 3 x 3 neighbourhood (1-D parabolas at an edge of the grid). The flag
    says whether the grid maximum lies on the grid's edge."""
    i, j = np.unravel_index(np.argmax(surface), surface.shape)
    rows, cols = surface.shape
    interior = 0 < i < rows - 1 and 0 < j < cols - 1
    if interior:
        dx, dy = (d.ravel() for d in np.meshgrid([-1.0, 0, 1], [-1.0, 0, 1], indexing="ij"))
        design = np.stack([np.ones(9), dx, dy, dx * dx, dx * dy, dy * dy], axis=1)
        coef = np.linalg.lstsq(design, surface[i - 1 : i + 2, j - 1 : j + 2].ravel(), rcond=None)[0]
        hessian = np.array([[2 * coef[3], coef[4]], [coef[4], 2 * coef[5]]])
        if np.all(np.linalg.eigvalsh(hessian) < 0):
            step = np.linalg.solve(hessian, -coef[1:3])
            if np.all(np.abs(step) <= 1.0):
                return i + float(step[0]), j + float(step[1]), False

    def offset(left, mid, right):
        curvature = left - 2.0 * mid + right
        return (
            0.0 if curvature >= 0 else float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))
        )

    di = offset(*surface[i - 1 : i + 2, j]) if 0 < i < rows - 1 else 0.0
    dj = offset(*surface[i, j - 1 : j + 2]) if 0 < j < cols - 1 else 0.0
    return i + di, j + dj, not interior


def _estimate(surface, logit_grid, log_grid) -> tuple[float, float, bool]:
    """(alpha, beta, on_edge) at the refined maximum of a log-likelihood surface."""
    i, j, on_edge = refined_argmax(surface)
    logit = float(np.interp(i, np.arange(len(logit_grid)), logit_grid))
    log_beta = float(np.interp(j, np.arange(len(log_grid)), log_grid))
    return 1.0 / (1.0 + np.exp(-logit)), float(np.exp(log_beta)), on_edge


def fit_rescorla_wagner(
    actions, rewards, valid, groups, coupled: bool, num_bootstrap: int = 200, seed: int = 0
) -> list[dict]:
    """Maximum-likelihood (alpha, beta) of a softmax delta rule, pooled over the trials of each
    group (e.g. volatility level), with percentile-bootstrap 95% intervals resampling trials
    (``scipy.stats.bootstrap``).

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
            surface = np.tensordot(weights, fine[members], axes=1)
            alpha, beta, off = _estimate(surface, fine_logit[name], fine_log[name])
            if off:
                surface = np.tensordot(weights, coarse[members], axes=1)
                alpha, beta, _ = _estimate(surface, coarse_logit, coarse_log)
            return np.array([alpha, beta])

        alpha, beta = estimate(np.ones(n))
        interval = stats.bootstrap(
            (np.arange(n),),
            lambda resample, estimate=estimate, n=n: estimate(np.bincount(resample, minlength=n)),
            n_resamples=num_bootstrap,
            method="percentile",
            vectorized=False,
            rng=rng,
        ).confidence_interval
        fits.append(
            {
                "group": name.item() if hasattr(name, "item") else name,
                "alpha": float(alpha),
                "beta": float(beta),
                "alpha_ci": [float(interval.low[0]), float(interval.high[0])],
                "beta_ci": [float(interval.low[1]), float(interval.high[1])],
                "num_trials": n,
                "log_likelihood": float(fine[members].sum(axis=0).max()),
            }
        )
    return fits


def learning_rate_rises(fits: list[dict]) -> dict:
    """The test of the paper's claim on per-level fits (sorted by increasing volatility): the
    fitted alpha at the highest level exceeds the one at the lowest with disjoint 95% intervals,
    and the rank correlation (Spearman) of alpha with volatility is positive."""
    low, high = fits[0], fits[-1]
    alphas = [f["alpha"] for f in fits]
    rho = float(stats.spearmanr(range(len(fits)), alphas)[0]) if np.ptp(alphas) > 0 else np.nan
    separated = high["alpha_ci"][0] > low["alpha_ci"][1]
    return {
        "lowest": low["alpha"],
        "highest": high["alpha"],
        "separated": bool(separated),
        "spearman": rho,
        "rises": bool(separated and rho > 0),
    }


def group_means(values, groups) -> list[dict]:
    """Mean of ``values`` per group value (sorted), with the half-width of its normal 95%
    interval and the count: ``[{"group", "mean", "ci95", "count"}, ...]``."""
    values, groups = np.asarray(values, np.float64), np.asarray(groups)
    return [
        {
            "group": name.item(),
            "mean": float(values[groups == name].mean()),
            "ci95": ci95(values[groups == name]),
            "count": int((groups == name).sum()),
        }
        for name in np.unique(groups)
    ]
