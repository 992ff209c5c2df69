"""Hochreiter et al. 2001: quadratic-function data, the reference predictors and error analyses
(``analysis.function_fitting``), the LSTM learner and the ``hochreiter2001`` experiment end to
end."""

import dataclasses
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import checkpoint, runner
from learn2rl.analysis import function_fitting as ff
from learn2rl.errors import Learn2RLError
from learn2rl.experiments import hochreiter2001 as experiment
from learn2rl.experiments import pipeline
from learn2rl.experiments.spec import Learned
from learn2rl.learners.hochreiter2001 import (
    PRIOR_VARIANCE,
    Config,
    FunctionLearner,
    QuadraticFunctions,
    network_inputs,
    quadratic,
    sample_inputs,
)
from learn2rl.logging import read_metrics

TINY = Config(
    num_examples=10,
    hidden_size=8,
    num_functions=4,
    num_updates=4,
    updates_per_chunk=2,
)


# --- numpy references -------------------------------------------------------------------------
def numpy_quadratic(a, x):
    """f(x1, x2) = a1 x1^2 + a2 x2^2 + a3 x1 x2 + a4 x1 + a5 x2 + a6, one point at a time."""
    out = np.empty(len(x))
    for i, (x1, x2) in enumerate(np.asarray(x, np.float64)):
        out[i] = a[0] * x1**2 + a[1] * x2**2 + a[2] * x1 * x2 + a[3] * x1 + a[4] * x2 + a[5]
    return out


def numpy_network_inputs(xs, ys):
    rows, previous = [], 0.0
    for x, y in zip(xs, ys, strict=True):
        rows.append([x[0], x[1], previous])
        previous = y
    return np.array(rows)


# --- the data ---------------------------------------------------------------------------------
@pytest.mark.parametrize("prior", ["uniform", "gaussian"])
@pytest.mark.slow
def test_sequences_match_a_numpy_reference(prior):
    functions = QuadraticFunctions(prior)
    coefficients = np.asarray(functions.functions(8, "test"))
    xs = np.asarray(sample_inputs(jax.random.PRNGKey(3), 20))
    assert xs.min() >= -1.0 and xs.max() <= 1.0
    for a in coefficients:
        ys = np.asarray(quadratic(jnp.asarray(a), jnp.asarray(xs)))
        np.testing.assert_allclose(ys, numpy_quadratic(a, xs), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            np.asarray(network_inputs(jnp.asarray(xs), jnp.asarray(ys))),
            numpy_network_inputs(xs, ys),
            rtol=1e-6,
        )


@pytest.mark.slow
def test_functions_are_indexed_and_the_splits_are_disjoint():
    functions = QuadraticFunctions()
    first = np.asarray(functions.functions(4, "test"))
    np.testing.assert_array_equal(first[2], np.asarray(functions.function(2)))
    np.testing.assert_array_equal(first, np.asarray(functions.functions(4, "test")))
    np.testing.assert_array_equal(np.asarray(functions.functions(2, "test", start=2)), first[2:])
    train_first = np.asarray(functions.functions(4, "train"))
    np.testing.assert_array_equal(train_first[0], np.asarray(functions.function(1 << 20)))
    assert not np.any(np.all(np.isclose(first[:, None], train_first[None]), axis=-1))
    drawn = jax.jit(jax.vmap(functions.sample))(jax.random.split(jax.random.PRNGKey(0), 64))
    assert drawn.shape == (64, 6) and np.all(np.abs(np.asarray(drawn)) <= 1.0)
    with pytest.raises(Learn2RLError, match="positive integer"):
        functions.functions(0)
    with pytest.raises(Learn2RLError, match="split"):
        functions.functions(2, "validation")
    with pytest.raises(Learn2RLError, match="prior must be one of uniform, gaussian"):
        QuadraticFunctions("laplace")


@pytest.mark.parametrize("prior", ["uniform", "gaussian"])
def test_priors_have_the_stated_moments(prior):
    functions = QuadraticFunctions(prior)
    a = np.asarray(functions.functions(20_000, "test"), np.float64)
    if prior == "uniform":
        assert a.min() >= -1.0 and a.max() <= 1.0
    assert np.all(np.abs(a.mean(axis=0)) < 0.02)
    np.testing.assert_allclose(a.var(axis=0), 1.0 / 3.0, atol=0.02)
    x = np.asarray(sample_inputs(jax.random.PRNGKey(1), 20_000), np.float64)
    values = np.einsum("nf,nf->n", ff.monomials(x), a)
    assert abs(np.mean(values**2) - PRIOR_VARIANCE) < 0.03


# --- the references and analyses (analysis.function_fitting) ----------------------------------
def _data(num=64, length=12, seed=5):
    return ff.evaluation_data(QuadraticFunctions(), num, length, experiment.NUM_QUERIES, seed)


@pytest.mark.slow
def test_evaluation_data_of_a_function_does_not_depend_on_how_many_are_drawn():
    few, many = _data(num=3), _data(num=10)
    for a, b in zip(few, many, strict=True):
        np.testing.assert_array_equal(a, b[:3])
    assert many[1].shape == (10, 12, 2) and many[2].shape == (10, experiment.NUM_QUERIES, 2)


@pytest.mark.slow
def test_least_squares_is_exact_from_six_examples():
    coefficients, xs, queries = _data()
    curve = ff.least_squares_curve(coefficients, xs, queries)
    assert np.all(curve[:, 6:] < 1e-20)
    assert np.all(curve[:, :6].mean(axis=0) > 1e-2)
    # With more examples than coefficients it is ordinary least squares.
    estimates = ff.least_squares_estimates(coefficients, xs, 9)
    for n in range(4):
        design = ff.monomials(xs[n, :9])
        solution = np.linalg.lstsq(design, design @ coefficients[n].astype(np.float64))[0]
        np.testing.assert_allclose(estimates[n], solution, atol=1e-10)
    # A function in the span of three examples' monomials is exact after those three.
    design = ff.monomials(xs[:, :3])
    in_span = np.einsum("nkf,nk->nf", design, np.random.default_rng(0).normal(size=(64, 3)))
    exact = ff.least_squares_curve(in_span, xs, queries)
    assert np.all(exact[:, 3:] < 1e-20) and exact[:, 2].mean() > 1e-3
    prior = ff.prior_mean_curve(coefficients, queries, xs.shape[1])
    np.testing.assert_allclose(curve[:, 0], prior[:, 0])


@pytest.mark.slow
def test_prior_mean_error_is_the_prior_variance():
    coefficients, _, queries = _data(num=4000, length=2)
    prior = ff.prior_mean_curve(coefficients, queries, 2)
    assert abs(prior.mean() - PRIOR_VARIANCE) < 0.02 and np.all(prior[:, 0] == prior[:, 1])


@pytest.mark.slow
def test_uniform_posterior_mean_against_exact_cases():
    coefficients, xs, _ = _data(num=16)
    rng = np.random.default_rng(0)
    # After 5 examples the posterior is uniform on a segment: its mean is the segment's midpoint.
    design = ff.monomials(xs[:, :5])
    estimate = ff.uniform_posterior_mean(coefficients, xs[:, :5], rng, 2, 5, 20)
    for n in range(len(coefficients)):
        direction = np.linalg.svd(design[n])[2][-1]  # spans the null space
        a = coefficients[n].astype(np.float64)
        with np.errstate(divide="ignore"):
            ends = np.stack([(-1 - a) / direction, (1 - a) / direction])
        low, high = np.max(ends.min(axis=0)), np.min(ends.max(axis=0))
        np.testing.assert_allclose(estimate[n], a + 0.5 * (low + high) * direction, atol=1e-6)
    # With no examples it is the prior mean, 0.
    estimate = ff.uniform_posterior_mean(coefficients, xs[:, :0], rng, 8, 20, 200)
    assert np.all(np.abs(estimate) < 0.15)


@pytest.mark.slow
def test_bayes_reference_beats_least_squares_under_the_uniform_prior():
    coefficients, xs, queries = _data(num=300, length=8)
    rng = np.random.default_rng(1)
    mcmc = {"num_chains": 4, "burn_in": 50, "num_samples": 200}
    bayes, inflation = ff.bayes_curve(coefficients, xs, queries, "uniform", rng, **mcmc)
    assert np.all(inflation[1:5] > 0) and np.all(inflation[1:5] < 0.01)
    assert inflation[0] == 0 and np.all(inflation[5:] < 1e-12)  # exact: none
    least_squares = ff.least_squares_curve(coefficients, xs, queries)
    # After 4 examples the uniform posterior's centroid is measurably better than the
    # linear-MMSE fit (0.118 vs 0.130 on 1000 functions); exact and equal from 6 examples on.
    assert bayes[:, 4].mean() < least_squares[:, 4].mean() - 0.004
    assert np.all(bayes[:, 1:6].mean(axis=0) <= least_squares[:, 1:6].mean(axis=0) + 0.002)
    assert np.all(bayes[:, 6:] < 1e-20)
    gaussian, inflation = ff.bayes_curve(coefficients, xs, queries, "gaussian", rng)
    np.testing.assert_array_equal(gaussian, least_squares)
    assert not inflation.any()


def test_examples_to_threshold_on_hand_written_curves():
    f = ff.examples_to_threshold
    assert f(np.array([1.0, 0.5, 0.001, 0.2, 0.001, 0.001]), 0.01) == 4  # must *stay* below
    assert f(np.array([0.001, 0.001]), 0.01) == 0
    assert f(np.array([1.0, 0.001, 0.5]), 0.01) is None
    curves = np.tile(np.array([1.0, 0.1, 0.001, 0.001]), (50, 1))
    point, low, high = ff.bootstrap_examples_to_threshold(
        curves, 0.01, np.random.default_rng(0), 50
    )
    assert (point, low, high) == (2, 2.0, 2.0)
    slow = curves.copy()
    slow[:, 2] = 1.0
    mixed = np.concatenate([curves, slow])  # half the functions need one example more
    assert list(ff.per_function_examples(mixed, 0.01)) == [2] * 50 + [3] * 50
    assert ff.examples_to_threshold(mixed.mean(axis=0), 0.01) == 3
    never = np.tile(np.array([1.0, 0.5, 0.2]), (10, 1))
    assert list(ff.per_function_examples(never, 0.01)) == [3] * 10  # censored at T


def test_bootstrap_interval_brackets_the_resampling_spread():
    # k* of the mean of 1 + noise decaying as exp(-k/4): the mean crosses 0.01 near k = 19.
    rng = np.random.default_rng(3)
    scale = np.exp(rng.normal(0.0, 0.8, size=(400, 1)))
    curves = scale * np.exp(-np.arange(40) / 4.0)[None]
    point, low, high = ff.bootstrap_examples_to_threshold(curves, 0.01, np.random.default_rng(0))
    assert low <= point <= high and high - low <= 4
    # The same as resampling by hand: the 2.5% and 97.5% points of k* over resampled means.
    draws = np.random.default_rng(1).integers(0, 400, size=(2000, 400))
    by_hand = ff.per_function_examples(curves[draws].mean(axis=1), 0.01)
    assert (
        abs(np.percentile(by_hand, 2.5) - low) <= 1
        and abs(np.percentile(by_hand, 97.5) - high) <= 1
    )
    again = ff.bootstrap_examples_to_threshold(curves, 0.01, np.random.default_rng(0))
    assert again == (point, low, high)


def test_error_results_sum_the_errors_and_count_regret_against_bayes():
    curves = np.array([[0.5, 0.2, 0.1], [0.7, 0.3, 0.0]])
    bayes = np.array([[0.5, 0.1, 0.0], [0.7, 0.2, 0.0]])
    result = ff.error_result("lstm", "quadratic-2d/uniform", curves, bayes)
    np.testing.assert_allclose(result.total_rewards, [-0.8, -1.0])
    np.testing.assert_allclose(result.total_regrets, [0.2, 0.1])
    row = result.summary()
    assert row["mean_total_reward"] == pytest.approx(-0.9) and row["num_tasks"] == 2
    np.testing.assert_array_equal(ff.curves_of(result), curves)
    summary = ff.curve_summary(curves)
    np.testing.assert_allclose(summary["mean"], [0.6, 0.25, 0.05])
    assert summary["ci95"][0] == pytest.approx(1.96 * np.std([0.5, 0.7], ddof=1) / np.sqrt(2))


def test_significantly_below_and_proportions():
    reference = np.zeros((100, 3))
    curves = np.stack([np.full(100, 0.1), np.linspace(-1, 1, 100), np.full(100, -0.1)], axis=1)
    curves[:, 2] += np.linspace(-0.01, 0.01, 100)
    assert ff.significantly_below(curves, reference) == [2]
    share, half = ff.proportion_ci(np.array([1, 1, 0, 0]))
    assert share == 0.5 and half == pytest.approx(1.96 * np.std([1, 1, 0, 0], ddof=1) / 2)


# --- the learner ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field,value",
    [
        ("num_examples", 0),
        ("hidden_size", 2.5),
        ("num_functions", -1),
        ("num_updates", True),
        ("updates_per_chunk", 0),
        ("learning_rate", 0.0),
        ("final_learning_rate", -1e-3),
        ("max_grad_norm", "big"),
        ("prior", "laplace"),
        ("seed", -1),
    ],
)
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(Learn2RLError, match=f"config.{field} must be"):
        Config(**{field: value})


def test_config_round_trips_and_rejects_unknown_fields():
    assert Config.from_dict(TINY.to_dict()) == TINY
    with pytest.raises(Learn2RLError, match="unknown hochreiter2001 config field.*bogus"):
        Config.from_dict({**TINY.to_dict(), "bogus": 1})
    learner = FunctionLearner(TINY.replace(num_functions=9), devices=[jax.devices()[0]] * 6)
    assert len(learner.devices) == 3


@pytest.mark.long
def test_jit_and_no_jit_agree_and_queries_are_next_steps():
    learner = FunctionLearner(TINY)
    params = learner.init().params
    coefficients = learner.functions.function(7)
    xs = sample_inputs(jax.random.PRNGKey(2), TINY.num_examples)
    ys = quadratic(coefficients, xs)
    predictions = jax.jit(learner.predict)(params, xs, ys)
    with jax.disable_jit():
        slow = learner.predict(params, xs, ys)
    np.testing.assert_allclose(np.asarray(predictions), np.asarray(slow), rtol=1e-5, atol=1e-6)
    # A query at x_{k+1} after k examples is exactly the network's prediction of example k+1.
    for k in (0, 3, TINY.num_examples - 1):
        curve = jax.jit(learner.error_curve)(params, coefficients, xs, xs[k : k + 1])
        expected = (predictions[k] - ys[k]) ** 2
        np.testing.assert_allclose(float(curve[k]), float(expected), rtol=1e-4, atol=1e-8)


@pytest.mark.slow
def test_same_seed_gives_bit_identical_training_and_resume_replays_it(tmp_path):
    runs = []
    for _ in range(2):
        learner = FunctionLearner(TINY)
        state, metrics = learner.train_chunk(learner.init(), 2)
        runs.append(jax.device_get((state.params, metrics)))
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    other_state, _ = learner.train_chunk(learner.init(seed=1), 2)
    assert not np.array_equal(
        jax.tree.leaves(other_state.params)[0], jax.tree.leaves(runs[0][0])[0]
    )
    # Through the runner: killed after the first chunk and continued == uninterrupted.
    _, stopped = runner.train("hochreiter2001", TINY, tmp_path / "a", progress=False, stop_at=2)
    assert int(stopped.update) == 2
    _, resumed = runner.train("hochreiter2001", TINY, tmp_path / "a", resume=True, progress=False)
    _, straight = runner.train("hochreiter2001", TINY, tmp_path / "b", progress=False)
    for a, b in zip(
        jax.tree.leaves(jax.device_get(resumed.params)),
        jax.tree.leaves(jax.device_get(straight.params)),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    meta = checkpoint.load_meta(tmp_path / "a" / "checkpoint")
    assert meta["update"] == TINY.num_updates and meta["learner"] == "hochreiter2001"
    assert read_metrics(tmp_path / "a" / "metrics.jsonl") == read_metrics(
        tmp_path / "b" / "metrics.jsonl"
    )
    learner, loaded, _ = runner.load_learner(tmp_path / "a" / "checkpoint", "hochreiter2001")
    assert isinstance(learner, FunctionLearner) and int(loaded.update) == TINY.num_updates
    with pytest.raises(Learn2RLError, match="different config \\(hidden_size\\)"):
        runner.train("hochreiter2001", TINY.replace(hidden_size=4), tmp_path / "a", resume=True)


@pytest.mark.slow
def test_the_runner_stops_a_diverging_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    original = FunctionLearner.train_chunk

    def train_chunk(self, state, n):
        state, metrics = original(self, state, n)
        if int(state.update) > 2:
            metrics = {**metrics, "loss": jnp.full_like(metrics["loss"], jnp.nan)}
        return state, metrics

    monkeypatch.setattr(FunctionLearner, "train_chunk", train_chunk)
    with pytest.raises(Learn2RLError, match="diverged at update 3: loss is nan.*update 2"):
        runner.train("hochreiter2001", TINY, tmp_path, progress=False)
    assert checkpoint.load_meta(tmp_path / "checkpoint")["update"] == 2


@pytest.mark.long
def test_short_training_fits_held_out_functions_better_than_the_prior_mean():
    config = Config(
        num_examples=16,
        hidden_size=32,
        num_functions=64,
        num_updates=300,
        updates_per_chunk=300,
        learning_rate=1e-2,
        final_learning_rate=2e-3,
    )
    learner = FunctionLearner(config)
    state, _ = learner.train_chunk(learner.init(), config.num_updates)
    data = ff.evaluation_data(learner.functions, 256, 16, experiment.NUM_QUERIES, seed=1234)
    lstm = learner.error_curves(state.params, *data)
    prior = ff.prior_mean_curve(data[0], data[2], 16)
    # Before any example it can do no better than the prior mean; after 8+ it must be far below.
    assert lstm[:, 0].mean() > 0.9 * prior[:, 0].mean()
    # Measured: 0.24 of the prior-mean error after 300 updates (0.30-0.37 after 200, 3 seeds).
    assert lstm[:, 8:].mean() < 0.5 * prior[:, 8:].mean()


# --- the experiment ---------------------------------------------------------------------------
@pytest.mark.slow
def test_tiny_run_writes_report_results_plots_and_checkpoint(tmp_path):
    spec = dataclasses.replace(
        experiment.SPEC,
        learned=(Learned("lstm", "hochreiter2001", TINY, TINY),),
        evaluate=functools.partial(experiment.evaluate, num_chains=2, burn_in=5, num_samples=10),
    )
    run = functools.partial(pipeline.run, spec, tmp_path, quick=True, progress=False)
    rows = run(num_test_tasks=32)["rows"]
    assert {row["agent"] for row in rows} == {
        "lstm",
        "bayes-optimal",
        "least-squares",
        "prior-mean",
    }
    payload = json.loads((tmp_path / "results.json").read_text())
    for row in payload["results"]:
        assert {"agent", "task", "mean_total_reward", "ci95", "mean_regret", "num_tasks"} <= set(
            row
        )
        assert row["num_tasks"] == 32 and row["mean_total_reward"] < 0
    analyses = payload["analyses"]
    assert len(analyses["mse_curves"]["lstm"]["mean"]) == TINY.num_examples
    # Total reward = minus the summed per-step error of the curve table.
    by_agent = {row["agent"]: row for row in payload["results"]}
    summed = sum(analyses["mse_curves"]["prior-mean"]["mean"])
    assert by_agent["prior-mean"]["mean_total_reward"] == pytest.approx(-summed)
    assert by_agent["bayes-optimal"]["mean_regret"] == 0
    assert analyses["examples_to_threshold"]["threshold"] == pytest.approx(0.01 * PRIOR_VARIANCE)
    assert len(payload["findings"]) == 5
    for name in ["report.md", "mse.png", "training.png", "lstm/seed-0/checkpoint/meta.json"]:
        assert (tmp_path / name).exists(), name
    report = (tmp_path / "report.md").read_text()
    assert "| finding (paper) |" in report and "learn2rl reproduce hochreiter2001" in report
    assert "| examples seen k | lstm |" in report
    # A second run reloads the finished run instead of retraining: the same numbers.
    assert run(num_test_tasks=32)["rows"] == rows
