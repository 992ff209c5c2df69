"""Restless bandits: the family against a plain-Python reference, the reference agents, the
Rescorla-Wagner fit on those agents (recovers known learning rates, and can fail; its unit tests
are in test_analysis_restless.py), and the ``wang2016-restless`` experiment end to end (tiny)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.analysis import restless as rw
from learn2rl.baselines import restless as agents
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import evaluate
from learn2rl.experiments import pipeline
from learn2rl.experiments import wang2016_restless as exp
from learn2rl.tasks import make
from learn2rl.tasks.restless import RestlessBandit
from learn2rl.trial import Trial
from tests.reference import restless_reference as ref


@pytest.mark.parametrize("arms", ["dependent", "independent"])
@pytest.mark.slow
def test_probability_path_matches_reference(arms):
    family = RestlessBandit(num_pulls=60, hazards=(0.05, 0.2, 0.5), arms=arms)
    for index in range(6):
        key = jax.random.fold_in(jax.random.PRNGKey(3), index)
        params = family.sample_params(key)
        key_level, key_changes, key_values = jax.random.split(key, 3)
        level = int(jax.random.randint(key_level, (), 0, 3, jnp.int32))
        hazard = family.hazards[level]
        uniforms = np.asarray(jax.random.uniform(key_changes, (60,)))
        shape = (60,) if arms == "dependent" else (60, 2)
        values = np.asarray(jax.random.uniform(key_values, shape))
        want = ref.probability_path(uniforms, values, np.float32(hazard), arms)
        assert int(params.level) == level and float(params.hazard) == pytest.approx(hazard)
        np.testing.assert_allclose(np.asarray(params.probs), np.array(want), rtol=0, atol=0)
        np.testing.assert_array_equal(
            np.asarray(params.changes),
            [t == 0 or u < np.float32(hazard) for t, u in enumerate(uniforms)],
        )


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "nojit"])
@pytest.mark.long
def test_trial_rewards_match_reference(jit):
    family = RestlessBandit(num_pulls=30)
    trial = Trial(family, 1)
    step = jax.jit(trial.step) if jit else trial.step
    rng = np.random.default_rng(0)
    for index in [0, 1, 2]:
        params = family.task(index)
        actions = rng.integers(0, 2, size=32)  # two steps past the end: no-ops
        keys = jax.random.split(jax.random.PRNGKey(index), 32)
        # Trial.step splits its key into (env step, reset); the Bernoulli draw uses the first.
        uniforms = [float(jax.random.uniform(jax.random.split(k)[0])) for k in keys[:30]]
        path = [tuple(row) for row in np.asarray(params.probs)]
        want = ref.restless_rewards(path, uniforms, actions[:30])
        with jax.disable_jit(not jit):
            obs, state = trial.reset(jax.random.PRNGKey(9), params)
            for t in range(32):
                expected = family.expected_reward(params, state.env_state, actions[t])
                obs, state, reward, episode_done, trial_done = step(
                    keys[t], state, actions[t], params
                )
                if t < 30:
                    assert float(reward) == want[t]
                    assert float(expected) == pytest.approx(path[t][actions[t]])
                    assert bool(episode_done) == bool(trial_done) == (t == 29)
                else:
                    assert float(reward) == 0.0 and not bool(trial_done)


@pytest.mark.long
def test_jit_and_nojit_sampling_and_steps_are_identical():
    family = make("bandit/restless-2arm")
    key = jax.random.PRNGKey(11)
    fast = jax.jit(family.sample_params)(key)
    with jax.disable_jit():
        slow = family.sample_params(key)
    for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(slow), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    _, state = family.reset_env(key, fast)
    for action in (0, 1):
        one = jax.jit(family.step_env)(key, state, action, fast)
        with jax.disable_jit():
            two = family.step_env(key, state, action, fast)
        assert float(one[2]) == float(two[2])


@pytest.mark.parametrize("task_id", ["bandit/restless-2arm", "bandit/restless-2arm-independent"])
@pytest.mark.long
def test_registered_ids_reset_and_step_under_vmap(task_id):
    family = make(task_id)
    tasks = family.tasks(400, "test")
    assert tasks.probs.shape == (400, 100, 2)
    levels = np.asarray(tasks.level)
    assert set(levels.tolist()) == {0, 1, 2, 3}
    # Changes happen at the level's hazard (pooled over pulls 1..99).
    changes = np.asarray(tasks.changes)[:, 1:]
    for level, hazard in enumerate(family.hazards):
        rate = changes[levels == level].mean()
        assert abs(rate - hazard) < 4 * np.sqrt(
            hazard * (1 - hazard) / changes[levels == level].size
        )
    if family.arms == "dependent":
        np.testing.assert_allclose(np.asarray(tasks.probs).sum(axis=2), 1.0, atol=1e-6)
    keys = jax.random.split(jax.random.PRNGKey(0), 400)
    _, states = jax.vmap(family.reset)(keys, tasks)
    _, states, rewards, _, truncated, _ = jax.vmap(family.step)(
        keys, states, jnp.zeros(400, jnp.int32), tasks
    )
    assert set(np.unique(np.asarray(rewards)).tolist()) <= {0.0, 1.0}
    assert not np.asarray(truncated).any() and (np.asarray(states.time) == 1).all()


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_pulls": 0}, "num_pulls must be a positive integer"),
        ({"hazards": ()}, "hazards must be a non-empty list of numbers in"),
        ({"hazards": (0.1, 1.5)}, "hazards must be a non-empty list of numbers in"),
        ({"hazards": (0.3, 0.1)}, "hazards must be distinct and increasing"),
        ({"hazards": "abc"}, "hazards must be a sequence of numbers"),
        ({"arms": "coupled"}, "arms must be one of dependent, independent"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(Learn2RLError, match=message):
        RestlessBandit(**kwargs)


def test_bad_agent_input_is_rejected():
    family = make("bandit/restless-2arm")
    with pytest.raises(Learn2RLError, match="RestlessBandit"):
        agents.ucb1_agent(make("bandit/independent-2arm"))
    with pytest.raises(Learn2RLError, match="alpha must lie in"):
        agents.rescorla_wagner_agent(family, 0.0)
    with pytest.raises(Learn2RLError, match="exact only for dependent arms"):
        agents.bayes_optimal_agent(make("bandit/restless-2arm-independent"))
    with pytest.raises(Learn2RLError, match="coupled delta rule assumes dependent"):
        agents.rescorla_wagner_agent(make("bandit/restless-2arm-independent"), 0.3, coupled=True)
    with pytest.raises(Learn2RLError, match="one learning rate per hazard level"):
        agents.rescorla_wagner_per_level_agent(family, [0.1, 0.2])


@pytest.mark.parametrize("coupled", [True, False])
def test_delta_rule_matches_reference(coupled):
    rng = np.random.default_rng(1)
    actions = rng.integers(0, 2, size=40)
    rewards = rng.integers(0, 2, size=40).astype(float)
    values = agents.rescorla_wagner_values(jnp.asarray(actions), jnp.asarray(rewards), 0.3, coupled)
    want = ref.rescorla_wagner_path(actions, rewards, 0.3, coupled)
    np.testing.assert_allclose(np.asarray(values), np.array(want), atol=1e-6)


@pytest.mark.slow
def test_change_point_filter_matches_enumeration():
    hazards = (0.01, 0.03, 0.1, 0.3)
    rng = np.random.default_rng(2)
    for _ in range(4):
        observations = rng.integers(0, 2, size=9).astype(float)
        belief = agents.change_point_initial(len(hazards), 20)
        for t in range(len(observations) + 1):
            want = ref.posterior_mean_by_enumeration(list(observations[:t]), hazards)
            assert float(agents.change_point_mean(belief)) == pytest.approx(want, abs=1e-5)
            if t < len(observations):
                belief = agents.change_point_update(
                    belief, jnp.float32(observations[t]), jnp.asarray(hazards, jnp.float32)
                )


def _evaluate(agent, family, num_tasks, seed=0):
    tasks = family.tasks(num_tasks, "test")
    return evaluate(agent, family, tasks, 1, jax.random.PRNGKey(seed)), np.asarray(tasks.level)


@pytest.mark.long
def test_reference_agents_behave_as_documented():
    family = make("bandit/restless-2arm")
    oracle, _ = _evaluate(agents.oracle_agent(family), family, 100)
    assert np.abs(oracle.total_regrets).max() == 0.0
    bayes, _ = _evaluate(agents.bayes_optimal_agent(family), family, 400)
    fixed, _ = _evaluate(agents.rescorla_wagner_agent(family, 0.3), family, 400)
    random, _ = _evaluate(agents.random_agent(family), family, 400)
    ucb, _ = _evaluate(agents.ucb1_agent(family), family, 400)
    # Pseudo-regret, paired on the same tasks: Bayes-optimal < tuned delta rule < UCB1 < random.
    assert bayes.total_regrets.mean() < fixed.total_regrets.mean() < ucb.total_regrets.mean()
    assert ucb.total_regrets.mean() < random.total_regrets.mean()
    assert set(ucb.actions[:, :2].sum(axis=1).tolist()) == {1}  # each arm once first


@pytest.mark.slow
def test_tuned_learning_rate_is_higher_for_more_volatile_tasks():
    family = make("bandit/restless-2arm")
    key = jax.random.PRNGKey(exp.EVAL_SEED + 1)
    tuned = rw.tune_rescorla_wagner(family, 400, key, exp.TUNING_ALPHAS, exp.TUNING_BETAS)
    assert tuned["alpha"] in exp.TUNING_ALPHAS and tuned["beta"] in exp.TUNING_BETAS
    assert tuned["per_level_alphas"][-1] > tuned["per_level_alphas"][0]


@pytest.mark.long
def test_fit_recovers_known_learning_rates():
    family = make("bandit/restless-2arm")
    for alpha, beta in [(0.1, 8.0), (0.5, 4.0)]:
        result, _ = _evaluate(agents.rescorla_wagner_agent(family, alpha, beta), family, 200)
        (fit,) = rw.fit_rescorla_wagner(
            result.actions, result.rewards, result.valid, np.zeros(200), True, num_bootstrap=50
        )
        assert abs(fit["alpha"] - alpha) < 0.1 * alpha, fit
        assert abs(fit["beta"] - beta) < 0.1 * beta, fit
        low, high = fit["alpha_ci"]
        assert low < fit["alpha"] < high and high - low < 0.2 * alpha, fit
        assert fit["num_trials"] == 200


@pytest.mark.long
def test_rising_learning_rate_criterion_can_pass_and_fail():
    family = make("bandit/restless-2arm")
    true_alphas = [0.1, 0.2, 0.35, 0.6]
    adaptive = agents.rescorla_wagner_per_level_agent(family, true_alphas, beta=8.0)
    fixed = agents.rescorla_wagner_agent(family, 0.3, 8.0)
    verdicts = {}
    for name, agent in [("adaptive", adaptive), ("fixed", fixed)]:
        result, levels = _evaluate(agent, family, 400)
        fits = rw.fit_rescorla_wagner(
            result.actions, result.rewards, result.valid, levels, True, 50
        )
        want = true_alphas if name == "adaptive" else [0.3] * 4
        np.testing.assert_allclose([f["alpha"] for f in fits], want, rtol=0.15)
        verdicts[name] = rw.learning_rate_rises(fits)
    assert verdicts["adaptive"]["rises"] and verdicts["adaptive"]["spearman"] == 1.0
    assert not verdicts["fixed"]["separated"] and not verdicts["fixed"]["rises"]


@pytest.mark.long
def test_spec_runs_on_the_pipeline_and_writes_report_results_and_plots(tmp_path, monkeypatch):
    monkeypatch.setattr(exp, "TUNING_ALPHAS", (0.2, 0.5))
    monkeypatch.setattr(exp, "TUNING_BETAS", (None, 5.0))
    monkeypatch.setattr(exp, "TUNING_TASKS", 32)
    monkeypatch.setattr(exp, "NUM_BOOTSTRAP", 10)
    tiny = ["num_updates=4", "num_tasks=8", "updates_per_chunk=2", "hidden_size=8"]
    run = dict(quick=True, overrides=tiny, progress=False, num_test_tasks=48)
    summary = pipeline.run(exp.SPEC, tmp_path, **run)
    payload = json.loads((tmp_path / "results.json").read_text())
    rows = payload["results"]
    assert {r["agent"] for r in rows} == {
        "rl2",
        "bayes-optimal",
        "rw-best-fixed",
        "rw-per-level",
        "ucb1",
        "random",
        "oracle",
    }
    for row in rows:
        assert {"agent", "task", "mean_total_reward", "ci95", "mean_regret", "num_tasks"} <= set(
            row
        )
        assert row["num_tasks"] == 48
    analyses = payload["analyses"]
    assert analyses["tuned_rescorla_wagner"]["alpha"] in (0.2, 0.5)
    assert len(analyses["fits"]["rl2"]["levels"]) == 4 and "spearman" in analyses["fits"]["rl2"]
    assert sum(g["count"] for g in analyses["per_level"]["rewards"]["ucb1"]) == 48
    assert len(summary["findings"]) == 5
    outputs = [
        "report.md",
        "learning_rate.png",
        "reward_by_level.png",
        "regret.png",
        "training.png",
    ]
    for name in [*outputs, "rl2/seed-0/checkpoint/meta.json"]:
        assert (tmp_path / name).exists(), name
    report = (tmp_path / "report.md").read_text()
    assert "learn2rl reproduce wang2016-restless" in report and "| finding (paper) |" in report
    assert "## Fitted learning rates" in report and "| rl2 alpha |" in report
    with pytest.raises(Learn2RLError, match="at most 100 steps"):  # the arms change in an episode
        pipeline.run(exp.SPEC, tmp_path / "bad", **run | {"overrides": [*tiny, "num_episodes=2"]})
