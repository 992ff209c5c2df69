"""Tabular-MDP baselines (baselines/mdp.py): RL^2 Table 2's random, PSRL, OPSRL, UCRL2, BEB,
eps-greedy and greedy, against the plain numpy references in tests/reference."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import baselines
from learn2rl.baselines import mdp
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import evaluate, run_trial
from learn2rl.tasks.bandits import BernoulliBandit
from learn2rl.tasks.tabular_mdp import TabularMDP, optimal_values
from learn2rl.trial import Trial
from learn2rl.types import TrialObs
from tests.reference import mdp_baselines_reference as ref

SMALL = TabularMDP(num_states=4, num_actions=3, episode_length=3)
OPTIONS = {
    "greedy": {"reward_prior_mean": 0.5, "reward_prior_std": 2.0, "transition_prior": 0.5},
    "eps-greedy": {"epsilon": 0.4},
    "psrl": {},
    "opsrl": {"num_samples": 3},
    "ucrl2": {"confidence_scale": 0.3, "delta": 0.1},
    "beb": {"beta": 2.5},
}


def fixed_observations(family: TabularMDP, num_episodes: int, seed: int):
    """A trial's observations under arbitrary actions (states, actions and rewards drawn here):
    the agent is fed these whatever it picks, so its statistics follow a known history."""
    rng = np.random.default_rng(seed)
    horizon, num_states = family.episode_length, family.num_states
    observations, prev_action, prev_reward = [], -1, 0.0
    for t in range(num_episodes * horizon):
        # Skewed towards a few states and actions so that counts pile up and ties are rare.
        state = 0 if t % horizon == 0 else int(rng.choice(num_states, p=[0.4, 0.3, 0.2, 0.1]))
        observations.append((state, prev_action, prev_reward, float(t > 0 and t % horizon == 0)))
        prev_action = int(rng.choice(family.num_actions, p=[0.5, 0.3, 0.2]))
        prev_reward = float(rng.normal(1.0, 1.0))
    return observations


@pytest.mark.parametrize("name", list(OPTIONS))
@pytest.mark.long
def test_agent_matches_numpy_reference_on_fixed_observations(name):
    family, options = SMALL, OPTIONS[name]
    horizon, num_actions = family.episode_length, family.num_actions
    agent = baselines.get(name, family, 4, **options)
    act, draw = jax.jit(agent.act), jax.jit(mdp.posterior_draws)
    state = agent.init(jax.random.PRNGKey(0), None)
    counts = ref.Counts(family.num_states, num_actions)
    prev_state, q_ref, compared = 0, None, 0
    keys = jax.random.split(jax.random.PRNGKey(7), 12)
    for t, (obs_state, prev_action, prev_reward, prev_done) in enumerate(
        fixed_observations(family, 4, seed=3)
    ):
        obs = TrialObs(
            obs=jnp.eye(family.num_states, dtype=jnp.float32)[obs_state],
            prev_action=jnp.int32(prev_action),
            prev_reward=jnp.float32(prev_reward),
            prev_done=jnp.float32(prev_done),
            step=jnp.int32(t),
        )
        action, state = act(keys[t], state, obs)
        new_episode = t % horizon == 0
        counts.add(prev_state, prev_action, np.float32(prev_reward), obs_state, new_episode)
        prev_state = obs_state
        key_plan, key_ties, key_explore, key_random = jax.random.split(keys[t], 4)
        if new_episode:
            draws = None
            if name in ("psrl", "opsrl"):
                alpha = jnp.asarray(counts.successors + 1.0, jnp.float32)
                sample_keys = jax.random.split(key_plan, options.get("num_samples", 1))
                if name == "psrl":
                    sample_keys = [key_plan]
                draws = [
                    tuple(np.asarray(d, np.float64) for d in draw(k, alpha)) for k in sample_keys
                ]
            q_ref = ref.plan(name, counts, options, horizon, t, draws)
        np.testing.assert_allclose(state.stats.visits, counts.visits)
        np.testing.assert_allclose(state.stats.reward_sums, counts.reward_sums, atol=1e-5)
        np.testing.assert_allclose(state.stats.successors, counts.successors)
        np.testing.assert_allclose(state.q, q_ref, rtol=1e-5, atol=1e-4)
        row = q_ref[t % horizon, obs_state]
        gaps = row.max() - row
        if np.all((gaps == 0) | (gaps > 1e-3)):  # no near-ties that float32 could order otherwise
            tie_noise = np.asarray(jax.random.uniform(key_ties, (num_actions,)))
            coin = float(jax.random.uniform(key_explore))
            random_action = int(jax.random.randint(key_random, (), 0, num_actions))
            epsilon = options.get("epsilon", 0.0)
            expected = ref.choose(row, tie_noise, epsilon, coin, random_action)
            assert int(action) == expected, (name, t)
            compared += 1
    assert compared >= 8
    assert counts.successors.sum() == 4 * (horizon - 1)  # no transition across an episode end


def test_random_agent_is_uniform_and_keeps_no_statistics():
    agent = baselines.get("random", SMALL, 2)
    state = agent.init(jax.random.PRNGKey(0), None)
    obs = TrialObs(jnp.eye(4)[0], jnp.int32(-1), jnp.float32(0), jnp.float32(0), jnp.int32(0))
    actions = jax.vmap(lambda k: agent.act(k, state, obs)[0])(
        jax.random.split(jax.random.PRNGKey(1), 3000)
    )
    frequencies = np.bincount(np.asarray(actions), minlength=3) / 3000
    np.testing.assert_allclose(frequencies, 1 / 3, atol=0.03)


# ---------------------------------------------------------------------------------------------
# Planning pieces
# ---------------------------------------------------------------------------------------------


def test_backward_induction_on_the_true_task_is_the_optimum():
    family = TabularMDP()
    task = family.task(2)

    def both(task):
        plan = mdp.backward_induction(task.mean_rewards, task.transitions, family.episode_length)
        return plan, optimal_values(task, family.episode_length)

    q, optimum = jax.jit(both)(task)
    assert float(q[0, 0].max()) == pytest.approx(float(optimum), rel=1e-6)
    rewards = np.asarray(task.mean_rewards, np.float64)
    transitions = np.asarray(task.transitions, np.float64)
    np.testing.assert_allclose(q, ref.value_iteration(rewards, transitions, 10), rtol=1e-5)


def test_optimistic_transitions_match_the_sequential_construction():
    rng = np.random.default_rng(0)
    rows = rng.dirichlet(np.ones(6), size=(5, 3)).astype(np.float32)
    values = np.array([1.0, 3.0, -2.0, 3.0, 0.5, 0.0], np.float32)  # a tie between the best two
    radius = np.array([0.0, 0.05, 0.3, 0.9, 2.5], np.float32)[:, None].repeat(3, axis=1)
    got = np.asarray(mdp.optimistic_transitions(rows, values, radius))
    for i in range(5):
        for j in range(3):
            want = ref.optimistic_row(rows[i, j], values, float(radius[i, j]))
            np.testing.assert_allclose(got[i, j], want, atol=1e-6)
            assert got[i, j].sum() == pytest.approx(1.0, abs=1e-5)
            assert np.abs(got[i, j] - rows[i, j]).sum() <= radius[i, j] + 1e-5
    assert got[4, 0, 1] == pytest.approx(1.0)  # a radius of 2 or more reaches the corner


def test_extended_value_iteration_bounds_value_iteration():
    task = TabularMDP().task(1)

    def plans(radius):
        evi = partial(mdp.extended_value_iteration, task.mean_rewards, task.transitions)
        plain = mdp.backward_induction(task.mean_rewards, task.transitions, 10)
        return plain, evi(0.0 * radius, 10), evi(radius, 10)

    plain, no_slack, optimistic = jax.jit(plans)(jnp.full((10, 5), 0.4))
    np.testing.assert_allclose(no_slack, plain, rtol=1e-6)
    assert np.all(np.asarray(optimistic) >= np.asarray(plain) - 1e-5)
    assert float(optimistic[0, 0].max()) > float(plain[0, 0].max()) + 0.1


@pytest.mark.slow
def test_log_gamma_draws_have_gamma_moments():
    alpha = jnp.repeat(jnp.array([0.02, 0.7, 1.0, 6.5], jnp.float32), 40_000)
    logs = np.asarray(mdp.log_gamma_draws(jax.random.PRNGKey(0), alpha)).reshape(4, -1)
    draws = np.exp(logs)
    for i, a in enumerate([0.02, 0.7, 1.0, 6.5]):
        assert draws[i].mean() == pytest.approx(a, rel=0.05, abs=0.002)
        assert draws[i].var() == pytest.approx(a, rel=0.1, abs=0.002)
        digamma = float(jax.scipy.special.digamma(a))  # E[log G] for G ~ Gamma(a)
        assert logs[i].mean() == pytest.approx(digamma, abs=0.03 * max(1.0, abs(digamma)))
    assert np.all(np.isfinite(logs))


# ---------------------------------------------------------------------------------------------
# Through the evaluation protocol
# ---------------------------------------------------------------------------------------------


# One agent per code path: exploration coin, extended VI, posterior sampling (one episode only:
# without jit every random number is hashed op by op, which makes the sampler slow).
@pytest.mark.parametrize("name,num_episodes", [("eps-greedy", 2), ("ucrl2", 2), ("psrl", 1)])
@pytest.mark.long
def test_evaluate_under_jit_and_vmap_matches_a_trial_without_jit(name, num_episodes):
    family = TabularMDP(num_states=3, num_actions=2, episode_length=2)
    tasks, key = family.tasks(2), jax.random.PRNGKey(5)
    agent = baselines.get(name, family, num_episodes, **OPTIONS[name])
    fast = evaluate(agent, family, tasks, num_episodes, key)
    task = jax.tree.map(lambda x: x[1], tasks)
    task_key = jax.random.fold_in(jax.random.fold_in(key, 0), 1)  # evaluate's key of task 1
    with jax.disable_jit():
        trial = Trial(family, num_episodes)
        rewards, _, _, actions, _, _ = run_trial(agent, trial, task_key, task)
    np.testing.assert_array_equal(fast.actions[1], actions)
    np.testing.assert_allclose(fast.rewards[1], rewards, rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# Registry and options
# ---------------------------------------------------------------------------------------------


def test_registry_lists_the_mdp_baselines():
    names = ["random", "psrl", "opsrl", "ucrl2", "beb", "eps-greedy", "greedy", "oracle"]
    assert list(mdp.AGENTS) == names[:-1]  # the columns of RL^2 Table 2
    assert baselines.list_baselines(SMALL) == names
    assert baselines.applicable(SMALL) == names
    assert "psrl" not in baselines.list_baselines()
    assert "psrl" not in baselines.applicable(BernoulliBandit(2))
    assert baselines.get("psrl", SMALL, np.int64(3)).name == "psrl"


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: baselines.get("ucb2", SMALL, 10), "known tabular-MDP baselines: random, psrl"),
        (lambda: baselines.get("gittins", SMALL, 10), "'gittins' is a bandit baseline"),
        (lambda: baselines.get("thompson", SMALL, 10), "use one of: random, psrl, opsrl"),
        (lambda: baselines.get("psrl", SMALL, 0), "num_episodes must be a positive integer"),
        (lambda: baselines.get("psrl", SMALL, 2.5), "num_episodes must be a positive integer"),
        (lambda: baselines.get("psrl", SMALL, 10, beta=1.0), "unknown option(s) beta"),
        (lambda: baselines.get("random", SMALL, 10, epsilon=0.1), "accepted: none"),
        (lambda: baselines.get("eps-greedy", SMALL, 10, epsilon=1.5), "epsilon must be in"),
        (lambda: baselines.get("opsrl", SMALL, 10, num_samples=0), "num_samples must be"),
        (lambda: baselines.get("opsrl", SMALL, 10, num_samples=2.0), "num_samples must be"),
        (lambda: baselines.get("ucrl2", SMALL, 10, confidence_scale=-1), "confidence_scale"),
        (lambda: baselines.get("ucrl2", SMALL, 10, delta=1.0), "delta must be in"),
        (lambda: baselines.get("beb", SMALL, 10, beta=float("nan")), "beta must be a finite"),
        (lambda: baselines.get("psrl", SMALL, 10, reward_prior_std=0.0), "reward_prior_std"),
        (lambda: baselines.get("greedy", SMALL, 10, transition_prior=-1), "transition_prior"),
        (lambda: mdp.psrl_agent(BernoulliBandit(2), 10), "need a TabularMDP family"),
        (lambda: mdp.tuned_options(30), "were tuned for 10, 25, 50"),
        (lambda: mdp.tuned_options(10, priors="bayes"), "known: family, paper-code"),
    ],
)
def test_bad_input_raises_one_line_learn2rl_error(call, message):
    with pytest.raises(Learn2RLError) as error:
        call()
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_tuned_options_build_agents():
    for priors in mdp.PRIOR_SETTINGS:
        for num_episodes in sorted(mdp.TUNED[priors]):
            tuned = mdp.tuned_options(num_episodes, priors)
            assert list(tuned) == list(mdp.AGENTS)
            for name, options in tuned.items():
                agent = baselines.get(name, TabularMDP(), num_episodes, **options)
                assert agent.name == name
                if name in mdp.TUNING_GRIDS:
                    option, grid = mdp.TUNING_GRIDS[name]
                    assert options[option] in grid
                if priors == "paper-code":
                    assert options.items() >= mdp.PAPER_CODE_PRIORS[name].items()
    assert {10, 25, 50} <= set(mdp.TUNED["family"]) & set(mdp.TUNED["paper-code"])
