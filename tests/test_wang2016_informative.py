"""The informative-arm bandit family, its exact Bayes-optimal policy, the behaviour analysis and
the ``wang2016-informative`` experiment end to end (tiny)."""

import json
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.analysis import informative as analysis
from learn2rl.baselines import informative
from learn2rl.baselines.generic import random_agent
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import evaluate
from learn2rl.experiments import pipeline
from learn2rl.experiments import wang2016_informative as exp
from learn2rl.tasks import make
from learn2rl.tasks.informative import InformativeBandit, InformativeParams
from learn2rl.trial import Trial
from tests.reference import informative_reference as ref


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "nojit"])
@pytest.mark.parametrize("num_episodes", [1, 2])
def test_trial_matches_plain_python_reference(jit, num_episodes):
    family = make("bandit/informative-11arm")
    trial = Trial(family, num_episodes)
    rng = np.random.default_rng(num_episodes)
    step = jax.jit(trial.step) if jit else trial.step
    for target in [0, 4, 9]:
        params = InformativeParams(target=jnp.int32(target))
        actions = rng.integers(0, 11, size=trial.max_steps + 2)  # 2 steps past the end: no-ops
        expected = ref.informative_trial(target, actions, 10, 5, num_episodes)
        keys = jax.random.split(jax.random.PRNGKey(target), len(actions))
        with jax.disable_jit(not jit):
            obs, state = trial.reset(jax.random.PRNGKey(0), params)
            for t, want in enumerate(expected):
                assert int(obs.prev_action) == want["prev_action"]
                assert float(obs.prev_reward) == pytest.approx(want["prev_reward"])
                assert float(obs.prev_done) == want["prev_done"]
                obs, state, reward, episode_done, trial_done = step(
                    keys[t], state, actions[t], params
                )
                assert float(reward) == pytest.approx(want["reward"])
                assert bool(episode_done) == want["episode_done"]
                assert bool(trial_done) == want["trial_done"]
                reference = ref.arm_reward(target, int(actions[t]), 10)
                expected_reward = family.expected_reward(params, state.env_state, actions[t])
                assert float(expected_reward) == pytest.approx(reference)


def test_jit_and_nojit_give_identical_steps():
    family = make("bandit/informative-11arm")
    params = family.task(3)
    _, state = family.reset_env(jax.random.PRNGKey(0), params)
    for action in range(11):
        key = jax.random.PRNGKey(action)
        fast = jax.jit(family.step_env)(key, state, action, params)
        with jax.disable_jit():
            slow = family.step_env(key, state, action, params)
        assert float(fast[2]) == float(slow[2])
        assert int(fast[1].time) == int(slow[1].time) == 1


def test_registered_id_resets_and_steps_under_vmap():
    family = make("bandit/informative-11arm")
    assert family.num_actions == 11 and family.episode_length == 5
    tasks = family.tasks(64, "test")
    targets = np.asarray(tasks.target)
    assert targets.min() >= 0 and targets.max() <= 9 and len(set(targets.tolist())) == 10
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    obs, states = jax.vmap(family.reset)(keys, tasks)
    informative = jnp.full((64,), 10)
    _, states, rewards, _, truncated, _ = jax.vmap(family.step)(keys, states, informative, tasks)
    np.testing.assert_allclose(np.asarray(rewards), (targets + 1) / 10, rtol=1e-6)
    assert not np.asarray(truncated).any()
    # The prior is uniform over the 10 targets.
    many = np.asarray(
        jax.vmap(family.sample_params)(jax.random.split(jax.random.PRNGKey(1), 20000)).target
    )
    assert np.abs(np.bincount(many, minlength=10) / 20000 - 0.1).max() < 0.01


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_arms": 1}, "num_arms must be an integer >= 2"),
        ({"num_arms": 2.5}, "num_arms"),
        ({"pulls_per_episode": 0}, "pulls_per_episode must be an integer >= 1"),
        ({"target_reward": 1.0, "other_reward": 1.0}, "target_reward must exceed other_reward"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(Learn2RLError, match=message):
        InformativeBandit(**kwargs)


@pytest.mark.slow
def test_exact_optimum_is_20_55_and_matches_the_reference_expectimax():
    family = make("bandit/informative-11arm")
    assert informative.exact_value(family, 5) == Fraction(411, 20) == ref.expectimax_value(10, 5)
    assert float(informative.exact_value(family, 5)) == exp.PAPER_OPTIMUM
    assert (
        informative.exact_value(family, 5, use_informative=False)
        == 11
        == ref.expectimax_value(10, 5, use_informative=False)
    )
    values, best = informative.bayes_optimal_table(family, 5)
    assert values[-1, 5] == pytest.approx(20.55, abs=1e-12)
    assert best[-1, 5].nonzero()[0].tolist() == [10]  # only the informative arm is optimal first
    for num_arms, pulls in [(3, 4), (4, 3), (5, 6)]:
        small = InformativeBandit(num_arms=num_arms)
        for cue in (True, False):
            want = ref.expectimax_value(num_arms, pulls, cue)
            assert informative.exact_value(small, pulls, cue) == want
            table = informative.bayes_optimal_table(small, pulls, cue)[0]
            assert table[-1, pulls] == pytest.approx(float(want), abs=1e-12)
    with pytest.raises(Learn2RLError, match="num_arms must be <= 16"):
        informative.exact_value(InformativeBandit(num_arms=17), 5)


def _run(agent, family, num_tasks, num_episodes=1):
    tasks = family.tasks(num_tasks, "test")
    result = evaluate(agent, family, tasks, num_episodes, jax.random.PRNGKey(0))
    return result, np.asarray(tasks.target)


@pytest.fixture(scope="module")
def reference_results():
    """Every reference agent on the same 3000 test tasks (evaluated once for the module)."""
    family = make("bandit/informative-11arm")
    agents = [
        informative.bayes_optimal_agent(family, 5),
        informative.bayes_optimal_agent(family, 5, use_informative=False),
        informative.oracle_agent(family),
        random_agent(family),
    ]
    return family, {agent.name: _run(agent, family, 3000) for agent in agents}


@pytest.mark.long
def test_reference_agents_earn_their_exact_values(reference_results):
    family, results = reference_results
    bayes, targets = results["bayes-optimal"]
    # Deterministic rewards: the informative arm pays (target + 1) / 10, then 4 x 5.
    np.testing.assert_allclose(bayes.total_rewards, 20 + (targets + 1) / 10, rtol=1e-6)
    assert bayes.total_rewards.mean() == pytest.approx(20.55, abs=0.02)
    blind, _ = results["best-without-informative"]
    assert not (blind.actions == 10).any()
    assert abs(blind.total_rewards.mean() - 11.0) < 3 * blind.summary()["ci95"]
    assert (results["oracle"][0].total_rewards == 25).all()
    random = results["random"][0]
    assert abs(random.total_rewards.mean() - 5 * 14.55 / 11) < 3 * random.summary()["ci95"]
    # Across two episodes of the same task the belief carries over: 20.55 + 25 = 45.55.
    twice, targets = _run(informative.bayes_optimal_agent(family, 10), family, 200, num_episodes=2)
    np.testing.assert_allclose(twice.total_rewards, 45 + (targets + 1) / 10, rtol=1e-6)


@pytest.mark.slow
def test_behaviour_analysis_tells_agents_apart(reference_results):
    family, results = reference_results
    summaries = {}
    for name, (result, targets) in results.items():
        categories = analysis.action_categories(result, targets, family.informative_arm)
        summaries[name] = analysis.behaviour_summary(categories, family.episode_length)
        dist = analysis.step_distribution(categories)
        np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    assert summaries["bayes-optimal"]["informative_first"] == 1.0
    assert summaries["bayes-optimal"]["target_later"] == 1.0
    assert summaries["oracle"]["informative_first"] == 0.0
    assert summaries["oracle"]["target_later"] == 1.0
    assert abs(summaries["random"]["informative_first"] - 1 / 11) < 0.02
    assert abs(summaries["random"]["target_later"] - 1 / 11) < 0.02
    assert summaries["best-without-informative"]["informative_first"] == 0.0
    # Sequential search finds the target by pull k with probability k / 10: pulls 2-5 hit it with
    # probability (0.2 + 0.3 + 0.4 + 0.5) / 4.
    assert abs(summaries["best-without-informative"]["target_later"] - 0.35) < 0.03
    bayes, targets = results["bayes-optimal"]
    np.testing.assert_allclose(analysis.decoding_matrix(bayes, targets, 10)[:, :10], np.eye(10))
    random, targets = results["random"]
    assert analysis.decoding_matrix(random, targets, 10).diagonal().mean() < 0.3


def test_bad_agent_input_is_rejected():
    with pytest.raises(Learn2RLError, match="InformativeBandit"):
        informative.bayes_optimal_agent(make("bandit/independent-2arm"), 5)
    with pytest.raises(Learn2RLError, match="num_pulls"):
        informative.bayes_optimal_agent(make("bandit/informative-11arm"), 0)


@pytest.mark.long
def test_spec_runs_on_the_pipeline_and_writes_report_results_and_plots(tmp_path):
    tiny = ["num_updates=4", "num_tasks=8", "updates_per_chunk=2", "hidden_size=8"]
    summary = pipeline.run(
        exp.SPEC, tmp_path, quick=True, overrides=tiny, progress=False, num_test_tasks=64
    )
    payload = json.loads((tmp_path / "results.json").read_text())
    rows = payload["results"]
    assert {r["agent"] for r in rows} == {
        "rl2",
        "bayes-optimal",
        "best-without-informative",
        "random",
        "oracle",
    }
    for row in rows:
        assert {"agent", "task", "mean_total_reward", "ci95", "mean_regret", "num_tasks"} <= set(
            row
        )
        assert row["num_tasks"] == 64
    exact = payload["analyses"]["exact"]
    assert exact["optimum"] == 20.55 and exact["optimum_fraction"] == "411/20"
    behaviour = payload["analyses"]["behaviour"]
    assert behaviour["bayes-optimal"]["informative_first"] == 1.0
    assert np.asarray(behaviour["rl2"]["step_distribution"]).shape == (5, 3)
    assert np.asarray(behaviour["decoding_matrix"]).shape == (10, 11)
    assert len(payload["findings"]) == len(summary["findings"]) == 4
    for name in ["report.md", "actions.png", "regret.png", "training.png"]:
        assert (tmp_path / name).exists(), name
    report = (tmp_path / "report.md").read_text()
    assert "411/20 = 20.5500" in report and "| finding (paper) |" in report
    assert "learn2rl reproduce wang2016-informative" in report
