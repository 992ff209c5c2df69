"""Random tabular MDPs (tasks/tabular_mdp.py): the RL^2 family of Duan et al. 2016, Sec. 3.2."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import evaluate
from learn2rl.tasks import list_tasks, make
from learn2rl.tasks.tabular_mdp import TabularMDP, TabularParams, optimal_values
from learn2rl.trial import Trial
from learn2rl.types import Agent
from tests.reference import tabular_mdp_reference as ref
from tests.trial_scan import scan_trial

MDP_IDS = [task_id for task_id in list_tasks() if task_id.startswith("mdp/tabular-")]


def random_agent(num_actions: int) -> Agent:
    """Uniformly random actions, no memory."""

    def init(key, params):
        return jnp.zeros(())

    def act(key, state, obs):
        return jax.random.randint(key, (), 0, num_actions, dtype=jnp.int32), state

    return Agent(name="random", init=init, act=act)


# --- one step and one trial against the plain reference -----------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("jit", [True, False], ids=["jit", "nojit"])
@pytest.mark.parametrize(
    "num_states,num_actions,episode_length,num_episodes,seed",
    [(10, 5, 10, 3, 0), (3, 2, 4, 5, 1)],
)
def test_trial_matches_numpy_reference(
    jit, num_states, num_actions, episode_length, num_episodes, seed
):
    # Exact matching: the reference takes the very normal and uniform each JAX step draws from its
    # key (``TabularMDP.step_draws`` on the env half of the key ``Trial.step`` splits).
    family = TabularMDP(num_states, num_actions, episode_length)
    trial = Trial(family, num_episodes)
    params = family.task(seed)
    rng = np.random.default_rng(seed)
    num_steps = trial.max_steps + 3  # steps past the end of the trial must be no-ops
    actions = [int(a) for a in rng.integers(0, num_actions, size=num_steps)]
    keys = jax.random.split(jax.random.PRNGKey(seed), num_steps)
    noises, uniforms = jax.vmap(lambda k: family.step_draws(jax.random.split(k)[0]))(keys)
    expected = ref.tabular_trial(
        np.asarray(params.mean_rewards),
        np.asarray(params.transitions),
        episode_length,
        num_episodes,
        actions,
        [float(noise) for noise in noises],
        [float(uniform) for uniform in uniforms],
    )
    step = jax.jit(trial.step) if jit else trial.step
    with jax.disable_jit(not jit):
        obs, state = trial.reset(jax.random.PRNGKey(100 + seed), params)
        for t in range(num_steps):
            want = expected[t]
            np.testing.assert_array_equal(obs.obs, np.eye(num_states)[want["state"]])
            assert int(obs.step) == want["step"]
            assert int(obs.prev_action) == want["prev_action"]
            assert float(obs.prev_reward) == pytest.approx(want["prev_reward"], abs=1e-5)
            assert float(obs.prev_done) == want["prev_done"]
            obs, state, reward, episode_done, trial_done = step(keys[t], state, actions[t], params)
            assert float(reward) == pytest.approx(want["reward"], abs=1e-5)
            assert bool(episode_done) == want["episode_done"]
            assert bool(trial_done) == want["trial_done"]
    assert not expected[-1]["active"]
    if num_states > 1 and episode_length > 1:  # the sequence must move between states
        assert len({row["state"] for row in expected}) > 1


def test_next_state_is_the_inverse_cdf_and_stays_in_range():
    family = TabularMDP(4, 2, 5)
    probs = jnp.asarray([0.1, 0.0, 0.6, 0.3], jnp.float32)
    for u, want in [(0.0, 0), (0.099, 0), (0.1, 2), (0.69, 2), (0.71, 3), (0.999999, 3)]:
        assert int(family.next_state(probs, jnp.float32(u))) == want
        assert ref.pick_next_state(np.asarray(probs), u) == want
    # A row whose float sum falls short of 1 still gives a valid state.
    assert int(family.next_state(jnp.full((4,), 0.2499), jnp.float32(0.9999))) == 3


@pytest.mark.long
def test_jit_and_nojit_trials_are_identical():
    family = TabularMDP()
    trial = Trial(family, 3)
    params = family.task(7)
    actions = jnp.asarray(np.random.default_rng(0).integers(0, 5, size=trial.max_steps))
    fast, slow = scan_trial(trial, params, actions, extract=lambda s: s.state)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


# --- the registered id and the prior --------------------------------------------------------------
def test_paper_id_is_registered():
    assert MDP_IDS == ["mdp/tabular-10s5a"]
    family = make("mdp/tabular-10s5a")
    assert (family.num_states, family.num_actions, family.episode_length) == (10, 5, 10)
    assert family.has_expected_reward


@pytest.mark.parametrize("task_id", MDP_IDS)
@pytest.mark.long
def test_registered_mdps_reset_and_step_under_vmap(task_id):
    family = make(task_id)
    tasks = family.tasks(64, "test")
    assert tasks.mean_rewards.shape == (64, 10, 5) and tasks.transitions.shape == (64, 10, 5, 10)
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    obs, state = jax.jit(jax.vmap(family.reset))(keys, tasks)
    assert obs.shape == (64, 10) and obs.dtype == jnp.float32
    np.testing.assert_array_equal(obs, np.eye(10)[np.zeros(64, int)])
    actions = jnp.arange(64) % 5
    obs, state, reward, terminated, truncated, _ = jax.jit(jax.vmap(family.step))(
        keys, state, actions, tasks
    )
    assert reward.shape == (64,) and reward.dtype == jnp.float32
    np.testing.assert_array_equal(obs.sum(axis=1), 1.0)
    np.testing.assert_array_equal(np.argmax(obs, axis=1), np.asarray(state.state))
    assert not np.any(np.asarray(terminated)) and not np.any(np.asarray(truncated))
    assert family.observation_space().shape == (10,)
    assert family.action_space().n == 5
    # Expected rewards: the mean of the chosen action; the best one is the row maximum.
    _, start = family.reset_env(keys[0], tasks)
    best = jax.vmap(family.best_expected_reward, (0, None))(tasks, start)
    np.testing.assert_allclose(best, np.asarray(tasks.mean_rewards)[:, 0].max(axis=1))
    got = jax.vmap(family.expected_reward, (0, None, 0))(tasks, start, actions)
    np.testing.assert_allclose(got, np.asarray(tasks.mean_rewards)[np.arange(64), 0, actions])


@pytest.mark.long
def test_prior_and_step_have_the_documented_distributions():
    family = TabularMDP()
    tasks = jax.jit(jax.vmap(family.sample_params))(jax.random.split(jax.random.PRNGKey(3), 1000))
    mu = np.asarray(tasks.mean_rewards)
    assert abs(mu.mean() - 1.0) < 0.02 and abs(mu.std() - 1.0) < 0.02
    p = np.asarray(tasks.transitions)
    assert p.min() >= 0
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-5)
    # Flat Dirichlet over 10 states: each entry is Beta(1, 9), mean 0.1, variance 0.0081.
    assert np.abs(p.mean(axis=(0, 1, 2)) - 0.1).max() < 0.002
    assert abs(p.var() - 0.0081) < 0.0003
    # Rewards of one (state, action) are N(mu, 1); next states follow the transition row.
    params = family.task(0)
    _, start = family.reset_env(jax.random.PRNGKey(0), params)
    keys = jax.random.split(jax.random.PRNGKey(4), 20000)
    _, after, reward, _, _ = jax.jit(jax.vmap(family.step_env, (0, None, None, None)))(
        keys, start, jnp.int32(2), params
    )
    reward = np.asarray(reward)
    assert abs(reward.mean() - float(params.mean_rewards[0, 2])) < 0.03
    assert abs(reward.std() - 1.0) < 0.03
    freq = np.bincount(np.asarray(after.state), minlength=10) / 20000
    assert np.abs(freq - np.asarray(params.transitions[0, 2])).max() < 0.015


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_states": 0}, "num_states must be a positive integer, got 0"),
        ({"num_states": 10.0}, "num_states must be a positive integer, got 10.0"),
        ({"num_actions": -1}, "num_actions must be a positive integer, got -1"),
        ({"num_actions": True}, "num_actions must be a positive integer, got True"),
        ({"episode_length": 0}, "episode_length must be a positive integer, got 0"),
        ({"episode_length": "10"}, "episode_length must be a positive integer, got '10'"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(Learn2RLError, match=message):
        TabularMDP(**kwargs)
    with pytest.raises(Learn2RLError, match=message):
        make("mdp/tabular-10s5a", **kwargs)


def test_bad_horizon_is_rejected():
    params = TabularMDP().task(0)
    for horizon in (-1, 2.0, None):
        with pytest.raises(Learn2RLError, match="horizon must be an integer >= 0"):
            optimal_values(params, horizon)


# --- the free correctness check: a random policy earns 10 n ---------------------------------------
@pytest.mark.long
def test_random_policy_earns_ten_per_episode():
    # E[reward] = E[mu] = 1 at every step under random actions (visited states do not depend on
    # mu), so a trial of n = 10 episodes of 10 steps has expected total reward 100.
    family = make("mdp/tabular-10s5a")
    num_tasks, num_episodes = 2000, 10
    result = evaluate(
        random_agent(family.num_actions),
        family,
        family.tasks(num_tasks, "test"),
        num_episodes,
        jax.random.PRNGKey(0),
    )
    totals = result.total_rewards
    assert totals.shape == (num_tasks,) and result.valid.all()
    standard_error = totals.std(ddof=1) / math.sqrt(num_tasks)
    assert abs(totals.mean() - 10 * num_episodes) < 3 * standard_error
    summary = result.summary()
    assert summary["ci95"] == pytest.approx(1.96 * standard_error)
    # Pseudo-regret against the myopic best action: E[max of 5 N(1,1)] - 1 = 1.163 per step.
    assert abs(summary["mean_regret"] / 100 - 1.163) < 0.03


# --- optimal values -------------------------------------------------------------------------------
@pytest.mark.slow
def test_optimal_values_match_numpy_backward_induction():
    family = TabularMDP()
    tasks = family.tasks(4, "test")
    for horizon in (0, 1, 10):
        got = np.asarray(
            jax.jit(jax.vmap(optimal_values, (0, None)), static_argnums=1)(tasks, horizon)
        )
        for i in range(4):
            mu, p = np.asarray(tasks.mean_rewards[i]), np.asarray(tasks.transitions[i])
            want = ref.optimal_start_value(mu, p, horizon)
            assert got[i] == pytest.approx(want, abs=1e-4)
            # The optimum is at least the value of random actions; one step is the greedy action.
            assert got[i] >= ref.random_policy_start_value(mu, p, horizon) - 1e-4
            if horizon == 1:
                assert got[i] == pytest.approx(mu[0].max(), abs=1e-5)
    # A hand-made two-state MDP: action 1 pays 0 now but moves to a state paying 5 per step.
    params = TabularParams(
        mean_rewards=jnp.asarray([[1.0, 0.0], [5.0, 5.0]]),
        transitions=jnp.asarray([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]]),
    )
    assert float(optimal_values(params, 1)) == pytest.approx(1.0)
    assert float(optimal_values(params, 3)) == pytest.approx(10.0)
    assert float(optimal_values(params, 0)) == 0.0
