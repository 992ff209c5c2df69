"""How well a predictor fits a new 2-D quadratic from k examples (Hochreiter et al. 2001).

A function is f(x) = a . phi(x) with the six monomials phi(x) = (x1^2, x2^2, x1 x2, x1, x2, 1)
and coefficients a from the prior of ``learners.hochreiter2001`` (U[-1, 1]^6 or N(0, I/3)); the
targets are noise-free. A predictor's *error after k examples* is the mean over fresh query points
x ~ U[-1, 1]^2 of (f(x) - f_hat_k(x))^2; an *error curve* is that error for k = 0..T-1, one row per
held-out function (``[N, T]``). The reference predictors here are scored on the same functions,
examples and query points as the learned one:

- the prior mean (predict 0): error E[f(x)^2] = 98/135 whatever it has seen;
- minimum-norm least squares on the monomials: the best predictor linear in the targets for the
  prior covariance I/3 (and for the Gaussian prior the posterior mean); exact from 6 examples;
- the posterior mean of f (Bayes-optimal for squared error): for the uniform prior after k < 6
  examples the centroid of the polytope {a in [-1, 1]^6 : Phi a = y}, by hit-and-run Monte Carlo.

Curves become ``EvalResult``s (``error_result``): step k's reward is minus the error after k
examples, so a trial's total reward is minus the cumulative squared error over the sequence and
its regret the cumulative excess over the Bayes-optimal predictor (online-learning regret).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from learn2rl.evaluation import EvalResult, ci95
from learn2rl.learners.hochreiter2001 import NUM_FEATURES, QuadraticFunctions, sample_inputs


def evaluation_data(
    functions: QuadraticFunctions,
    num_functions: int,
    num_examples: int,
    num_queries: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first ``num_functions`` test functions with their example inputs and query points:
    ``coefficients[N, 6]``, ``xs[N, T, 2]``, ``queries[N, Q, 2]`` (float32). Test function i gets
    keys ``fold_in(., i)`` of ``PRNGKey(seed)``'s two halves, so its data do not depend on N."""
    coefficients = functions.functions(num_functions, "test")
    key_examples, key_queries = jax.random.split(jax.random.PRNGKey(seed))
    index = jnp.arange(num_functions)

    def draw(key, num):
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, index)
        return jax.vmap(lambda k: sample_inputs(k, num))(keys)

    xs, queries = draw(key_examples, num_examples), draw(key_queries, num_queries)
    return np.asarray(coefficients), np.asarray(xs), np.asarray(queries)


def monomials(x: np.ndarray) -> np.ndarray:
    """phi(x) = (x1^2, x2^2, x1 x2, x1, x2, 1) in float64 -> ``[..., 6]``."""
    x = np.asarray(x, np.float64)
    x1, x2 = x[..., 0], x[..., 1]
    return np.stack([x1 * x1, x2 * x2, x1 * x2, x1, x2, np.ones_like(x1)], axis=-1)


def squared_errors(estimates: np.ndarray, coefficients: np.ndarray, queries: np.ndarray):
    """Mean over the query points of (f(x) - f_hat(x))^2 for coefficient estimates ``[N, 6]``."""
    diff = np.asarray(coefficients, np.float64) - estimates
    return np.mean(np.einsum("nqf,nf->nq", monomials(queries), diff) ** 2, axis=1)


def prior_mean_curve(coefficients: np.ndarray, queries: np.ndarray, num_examples: int):
    """Error of predicting the prior mean 0 after every k = 0..T-1 -> ``[N, T]``."""
    errors = squared_errors(np.zeros((len(coefficients), NUM_FEATURES)), coefficients, queries)
    return np.repeat(errors[:, None], num_examples, axis=1)


def least_squares_estimates(coefficients: np.ndarray, xs: np.ndarray, k: int) -> np.ndarray:
    """Minimum-norm least-squares coefficients pinv(Phi_k) y_k from the first k examples."""
    if k == 0:
        return np.zeros((len(coefficients), NUM_FEATURES))
    design = monomials(xs[:, :k])  # [N, k, 6]
    targets = np.einsum("nkf,nf->nk", design, np.asarray(coefficients, np.float64))
    return np.einsum("nfk,nk->nf", np.linalg.pinv(design), targets)


def least_squares_curve(coefficients: np.ndarray, xs: np.ndarray, queries: np.ndarray):
    """Error of the minimum-norm least-squares fit after k = 0..T-1 examples -> ``[N, T]``."""
    estimates = [least_squares_estimates(coefficients, xs, k) for k in range(xs.shape[1])]
    return np.stack([squared_errors(e, coefficients, queries) for e in estimates], axis=1)


def uniform_posterior_mean(
    coefficients: np.ndarray,
    xs: np.ndarray,
    rng: np.random.Generator,
    num_chains: int = 8,
    burn_in: int = 100,
    num_samples: int = 400,
    per_chain: bool = False,
) -> np.ndarray:
    """Posterior mean of the coefficients under the U[-1, 1]^6 prior after the examples ``xs``.

    Noise-free examples restrict ``a`` to the affine set {Phi a = y}; the posterior is the prior
    restricted there, i.e. uniform on the polytope {a in [-1, 1]^6 : Phi a = y}. Hit-and-run
    samples it: from the current point pick a random direction inside the null space of Phi, then
    a uniform point on the chord through the cube. The true coefficients are a draw from this very
    posterior, so the chains start in their stationary distribution; the burn-in only removes
    their correlation with that start (which would make the estimate too good). Each step adds
    the midpoint of its chord (the expected next point) rather than the sampled point: the same
    mean, less Monte-Carlo noise. ``per_chain=True`` returns each chain's mean ``[N, C, 6]``
    instead of their average ``[N, 6]`` (their spread measures the Monte-Carlo error).
    """
    coefficients = np.asarray(coefficients, np.float64)
    num, k = xs.shape[0], xs.shape[1]
    if k == 0:
        null = np.broadcast_to(np.eye(NUM_FEATURES), (num, NUM_FEATURES, NUM_FEATURES))
    else:
        design = monomials(xs)
        null = np.eye(NUM_FEATURES) - np.linalg.pinv(design) @ design  # projector onto null(Phi)
    points = np.repeat(coefficients[:, None, :], num_chains, axis=1)  # [N, C, 6]
    total = np.zeros_like(points)
    for step in range(burn_in + num_samples):
        direction = np.einsum("nij,ncj->nci", null, rng.standard_normal(points.shape))
        safe = np.where(np.abs(direction) > 1e-12, direction, np.inf)
        bound_a, bound_b = (-1.0 - points) / safe, (1.0 - points) / safe
        low = np.max(np.minimum(bound_a, bound_b), axis=-1)
        high = np.min(np.maximum(bound_a, bound_b), axis=-1)
        if step >= burn_in:  # Rao-Blackwellised: the chord's midpoint is the next point's mean
            total += points + (0.5 * (low + high))[..., None] * direction
        step_size = low + (high - low) * rng.random(low.shape)
        points = np.clip(points + step_size[..., None] * direction, -1.0, 1.0)
    chain_means = total / num_samples
    return chain_means if per_chain else chain_means.mean(axis=1)


def bayes_curve(
    coefficients: np.ndarray,
    xs: np.ndarray,
    queries: np.ndarray,
    prior: str,
    rng: np.random.Generator,
    **mcmc: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Error of the posterior-mean (Bayes-optimal) predictor after k = 0..T-1 examples.

    Returns ``(curve[N, T], mc_inflation[T])``: the second is the Monte-Carlo estimate's expected
    excess squared error (between-chain variance of the prediction over the number of chains,
    mean over functions and query points); zero where the answer is exact (k = 0, k >= 6, or the
    Gaussian prior, whose posterior mean from noise-free data is the minimum-norm fit).
    """
    curve = least_squares_curve(coefficients, xs, queries)
    inflation = np.zeros(xs.shape[1])
    if prior == "gaussian":
        return curve, inflation
    design = monomials(queries)
    for k in range(1, min(NUM_FEATURES, xs.shape[1])):
        chains = uniform_posterior_mean(coefficients, xs[:, :k], rng, per_chain=True, **mcmc)
        curve[:, k] = squared_errors(chains.mean(axis=1), coefficients, queries)
        predictions = np.einsum("nqf,ncf->ncq", design, chains)
        inflation[k] = predictions.var(axis=1, ddof=1).mean() / chains.shape[1]
    return curve, inflation


def examples_to_threshold(curve: np.ndarray, threshold: float) -> int | None:
    """The least k from which ``curve`` stays below ``threshold`` (None: it never does)."""
    above = np.flatnonzero(np.asarray(curve) >= threshold)
    if len(above) == 0:
        return 0
    k = int(above[-1]) + 1
    return k if k < len(curve) else None


def per_function_examples(curves: np.ndarray, threshold: float) -> np.ndarray:
    """k* of each row of ``curves`` (T where it never stays below the threshold: censored)."""
    values = [examples_to_threshold(curve, threshold) for curve in curves]
    return np.array([curves.shape[1] if v is None else v for v in values])


def bootstrap_examples_to_threshold(
    curves: np.ndarray, threshold: float, rng: np.random.Generator, num: int = 2000
) -> tuple[int | None, float, float]:
    """k* of the mean curve over functions and its 95% percentile-bootstrap interval.

    ``scipy.stats.bootstrap`` resamples the functions (rows); a replicate whose mean curve never
    stays below the threshold counts as T (censored), so an upper end of T reads "not within the
    sequence". The percentile method, because k* is discrete (BCa needs a smooth statistic).
    """

    def statistic(rows, axis):  # rows: [batch, N] indices of resampled functions
        means = curves[np.asarray(rows, int)].mean(axis=-2)  # [batch, T]
        return per_function_examples(means, threshold).astype(np.float64)

    point = examples_to_threshold(curves.mean(axis=0), threshold)
    result = stats.bootstrap((np.arange(len(curves)),), statistic, n_resamples=num, batch=100,
                             vectorized=True, method="percentile", rng=rng)  # fmt: skip
    interval = result.confidence_interval
    return point, float(interval.low), float(interval.high)


def proportion_ci(flags: np.ndarray) -> tuple[float, float]:
    """Mean of 0/1 flags and the half-width of its normal-approximation 95% interval."""
    flags = np.asarray(flags, np.float64)
    return float(flags.mean()), ci95(flags)


def significantly_below(curves: np.ndarray, reference: np.ndarray) -> list[int]:
    """The k where ``curves`` is below ``reference`` (paired, same functions) with the 95%
    normal interval of the mean difference entirely below 0."""
    gap = curves - reference
    half = 1.96 * gap.std(axis=0, ddof=1) / np.sqrt(len(gap))
    return [int(k) for k in np.flatnonzero(gap.mean(axis=0) + half < 0)]


def curve_summary(curves: np.ndarray) -> dict[str, list[float]]:
    """Per k: the mean error over functions and the half-width of its 95% interval."""
    return {
        "mean": curves.mean(axis=0).tolist(),
        "ci95": [ci95(curves[:, k]) for k in range(curves.shape[1])],
    }


def error_result(name: str, task: str, curves: np.ndarray, bayes: np.ndarray) -> EvalResult:
    """Error curves as an ``EvalResult`` (one trial per function, one step per example):
    reward = minus the error after k examples, regret = its excess over the Bayes-optimal
    predictor's ``bayes`` on the same function. ``curves_of`` inverts it exactly."""
    num, length = curves.shape
    return EvalResult(
        agent=name,
        task=task,
        rewards=-np.asarray(curves, np.float64),
        regrets=np.asarray(curves, np.float64) - bayes,
        valid=np.ones((num, length), bool),
        actions=np.zeros((num, length), np.int32),
        num_tasks=num,
        num_seeds=1,
    )


def curves_of(result: Any) -> np.ndarray:
    """The error curves ``[N, T]`` of an ``error_result`` (rows of merged seeds included)."""
    return -np.asarray(result.rewards)
