"""The two-step task family, its reference agents, the stay-probability analysis and the
``wang2016-twostep`` experiment (tiny settings)."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.experiments import pipeline
from learn2rl.experiments import wang2016_twostep as exp
from learn2rl.experiments.spec import Learned
from learn2rl.tasks import make
from learn2rl.tasks.two_step import TwoStepParams, TwoStepTask
from learn2rl.trial import Trial
from tests.conftest import TINY_CONFIG
from tests.reference import two_step_reference as ref

NUM_EVAL_TASKS = 200


# --- tier 1 + 2: dynamics against the plain-Python reference, with and without jit --------------
@pytest.mark.parametrize("jit", [True, False], ids=["jit", "nojit"])
@pytest.mark.slow
def test_trial_matches_reference_step_by_step(jit):
    family = TwoStepTask(num_trials=4)
    good = [0, 1, 1, 0]
    params = TwoStepParams(good=jnp.array(good, jnp.int32), swaps=jnp.array([0, 1, 0, 1], bool))
    trial = Trial(family, num_episodes=2)
    num_steps = trial.max_steps + 3  # past the end of the trial: no-ops
    rng = np.random.default_rng(1)
    actions = rng.integers(0, 2, size=num_steps)
    keys = jax.random.split(jax.random.PRNGKey(7), num_steps)
    # Trial.step splits its key into (environment step, reset); the environment draws one uniform.
    uniforms = [float(jax.random.uniform(jax.random.split(k)[0])) for k in keys]
    expected = ref.two_step_trial(good, uniforms, actions, num_episodes=2)
    step = jax.jit(trial.step) if jit else trial.step
    seen_rewards = set()
    with jax.disable_jit(not jit):
        obs, state = trial.reset(jax.random.PRNGKey(0), params)
        for t in range(num_steps):
            want = expected[t]
            np.testing.assert_array_equal(np.asarray(obs.obs), want["obs"])
            assert int(obs.step) == want["step"]
            obs, state, reward, episode_done, trial_done = step(keys[t], state, actions[t], params)
            assert float(reward) == want["reward"], t
            assert bool(episode_done) == want["episode_done"], t
            assert bool(trial_done) == want["trial_done"], t
            seen_rewards.add(float(reward))
    assert seen_rewards == {0.0, 1.0}


@pytest.mark.slow
@pytest.mark.parametrize("jit", [True, False], ids=["jit", "nojit"])
def test_schedule_matches_reference_draws(jit):
    family = TwoStepTask(num_trials=300, swap_prob=0.05)
    sample = jax.jit(family.sample_params) if jit else family.sample_params
    for seed in range(3):
        key = jax.random.PRNGKey(seed)
        with jax.disable_jit(not jit):
            params = sample(key)
        key_first, key_swaps = jax.random.split(key)
        first = int(float(jax.random.uniform(key_first)) < 0.5)
        swap_uniforms = np.asarray(jax.random.uniform(key_swaps, (300,)))
        want = ref.good_schedule(first, swap_uniforms, 0.05)
        np.testing.assert_array_equal(np.asarray(params.good), want)
        np.testing.assert_array_equal(np.asarray(params.swaps)[1:], np.diff(want) != 0)
        assert not bool(params.swaps[0])


@pytest.mark.long
def test_prior_swaps_at_the_stated_rate_and_test_tasks_are_fixed():
    family = make("twostep/daw2011")
    tasks = family.tasks(2000, "test")
    good, swaps = np.asarray(tasks.good), np.asarray(tasks.swaps)
    assert good.shape == (2000, 100) and set(np.unique(good)) == {0, 1}
    assert abs(swaps[:, 1:].mean() - 0.025) < 0.003
    assert abs(good[:, 0].mean() - 0.5) < 0.04
    np.testing.assert_array_equal(np.asarray(family.tasks(5, "test").good), good[:5])


@pytest.mark.long
def test_transition_and_reward_frequencies():
    family = TwoStepTask()
    params = family.task(0)
    keys = jax.random.split(jax.random.PRNGKey(0), 20000)
    _, start = family.reset(keys[0], params)
    _, second, _, _, _ = jax.vmap(lambda k: family.step_env(k, start, 1, params))(keys)
    assert abs(float(jnp.mean(second.location == 2)) - 0.75) < 0.01  # action 1 -> B commonly
    good = int(params.good[0])
    for state_index, p in [(good, 0.9), (1 - good, 0.1)]:
        at = start.replace(location=jnp.int32(1 + state_index), time=jnp.int32(1))
        rewards = jax.vmap(lambda k, at=at: family.step_env(k, at, 0, params)[2])(keys)
        assert abs(float(rewards.mean()) - p) < 0.01


def test_expected_rewards_credit_the_first_stage_choice():
    family = TwoStepTask()
    params = family.task(3)
    _, state = family.reset(jax.random.PRNGKey(0), params)
    good = int(params.good[0])
    assert float(family.expected_reward(params, state, good)) == pytest.approx(0.7)
    assert float(family.expected_reward(params, state, 1 - good)) == pytest.approx(0.3)
    assert float(family.best_expected_reward(params, state)) == pytest.approx(0.7)
    at_second = state.replace(location=jnp.int32(1), time=jnp.int32(1))
    assert float(family.expected_reward(params, at_second, 0)) == 0.0
    assert float(family.best_expected_reward(params, at_second)) == 0.0


# --- tier 3: registered id under vmap ------------------------------------------------------------
@pytest.mark.slow
def test_registered_id_resets_and_steps_under_vmap():
    family = make("twostep/daw2011")
    assert family.episode_length == 200 and family.num_actions == 2
    tasks = family.tasks(8, "test")
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    obs, states = jax.vmap(family.reset)(keys, tasks)
    assert obs.shape == (8, 3) and np.all(np.asarray(obs)[:, 0] == 1)
    obs, states, rewards, terminated, truncated, _ = jax.vmap(family.step)(
        keys, states, jnp.zeros(8, jnp.int32), tasks
    )
    assert obs.shape == (8, 3) and np.all(np.asarray(obs)[:, 0] == 0)
    assert np.all(np.asarray(rewards) == 0) and not np.any(np.asarray(truncated))


# --- tier 4: bad parameters ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_trials": 0}, "num_trials .* positive integer"),
        ({"num_trials": 2.5}, "num_trials .* positive integer"),
        ({"p_common": 0.4}, r"p_common must lie in \(0.5, 1\]"),
        ({"p_common": 1.5}, r"p_common must be a probability in \[0, 1\]"),
        ({"p_good": 0.1, "p_bad": 0.9}, "p_good must exceed p_bad"),
        ({"swap_prob": -0.1}, r"swap_prob must be a probability in \[0, 1\]"),
        ({"swap_prob": "often"}, r"swap_prob must be a probability"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(Learn2RLError, match=message):
        TwoStepTask(**kwargs)


# --- the experiment end to end, and the analysis on its hand-written agents ----------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny pipeline run of the spec (RL^2 barely trained) on NUM_EVAL_TASKS test tasks; its
    reference agents (model-based, model-free, oracle, random) are the hand-written agents with
    known answers."""
    out = tmp_path_factory.mktemp("twostep")
    config = TINY_CONFIG.replace(task="twostep/daw2011", num_episodes=1, num_updates=2, gamma=0.9)
    spec = dataclasses.replace(
        exp.SPEC, learned=(Learned("rl2", "rl2", config, config),), quick_test_tasks=NUM_EVAL_TASKS
    )
    returned = pipeline.run(spec, out, quick=True, progress=False)
    results = json.loads((out / "results.json").read_text())
    return out, returned, results, {row["agent"]: row for row in results["results"]}


@pytest.mark.long
def test_tiny_run_writes_report_results_and_plots(tiny_run):
    out, returned, results, rows = tiny_run
    assert set(rows) == {"rl2", "oracle", "ideal-observer", "model-based", "model-free", "random"}
    stay = results["analyses"]["stay"]
    assert set(stay) == set(rows)
    for name, row in rows.items():
        assert {"agent", "task", "mean_total_reward", "ci95", "mean_regret", "num_tasks"} <= set(
            row
        )
        assert row["num_tasks"] == NUM_EVAL_TASKS and len(stay[name]["stay_probability"]) == 4
    assert len(results["findings"]) == len(returned["findings"]) == 5
    for name in ["report.md", "stay_probability.png", "training.png"]:
        assert (out / name).exists(), name
    assert (out / "rl2" / "seed-0" / "checkpoint" / "meta.json").exists()
    report = (out / "report.md").read_text()
    assert "## Findings (tested)" in report and "0.70 per two-step trial" in report
    assert "regression: interaction [95% CI]" in report


@pytest.mark.long
def test_oracle_and_random_earn_their_exact_values(tiny_run):
    rows, stay = tiny_run[3], tiny_run[2]["analyses"]["stay"]
    for name, value in [("oracle", 0.7), ("random", 0.5)]:
        mean, half = stay[name]["reward"], stay[name]["reward_ci95"]
        assert abs(mean - value) < 2 * half, (name, mean, half)  # two 95% half-widths
        assert mean == pytest.approx(rows[name]["mean_total_reward"] / 100)
    assert rows["oracle"]["mean_regret"] == pytest.approx(0.0, abs=1e-4)
    # Regret is 0.4 per first-stage choice of the action whose common state is bad.
    assert rows["random"]["mean_regret"] == pytest.approx(100 * 0.5 * 0.4, rel=0.05)
    assert rows["ideal-observer"]["mean_total_reward"] > rows["model-based"]["mean_total_reward"]


@pytest.mark.slow
def test_stay_analysis_separates_model_based_from_model_free(tiny_run):
    stay = tiny_run[2]["analyses"]["stay"]
    mb, mf, rnd = (stay[name] for name in ("model-based", "model-free", "random"))
    # Model-based: the interaction (stay after rewarded-common and unrewarded-rare), no reward
    # main effect; in the raw plot and in the regression that controls for correct choices.
    assert mb["effects"]["interaction"] > 0.6 and mb["effects_ci95"]["interaction"][0] > 0.5
    assert abs(mb["effects"]["reward"]) < 0.05
    assert mb["regression"]["reward x transition"]["ci95"][0] > 0.3
    assert abs(mb["regression"]["reward"]["coef"]) < 0.15
    # Model-free: a reward main effect; its raw interaction is the spurious one of a reversal
    # task (correct choices), which the regression removes.
    assert mf["effects"]["reward"] > 0.2 and mf["effects_ci95"]["reward"][0] > 0.15
    reg = mf["regression"]
    assert reg["reward"]["ci95"][0] > 0.7
    assert abs(reg["reward x transition"]["coef"]) < 0.15
    assert reg["reward x transition"]["ci95"][0] < 0.1
    assert mf["effects"]["interaction"] < 0.5 * mb["effects"]["interaction"]
    # Random: nothing.
    for value in rnd["effects"].values():
        assert abs(value) < 0.08
    assert sum(rnd["counts"]) == NUM_EVAL_TASKS * 99
