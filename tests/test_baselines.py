"""Classical bandit baselines: exact values, agreement with slow references, jit, and behaviour."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import baselines
from learn2rl.baselines import bandits, bayes_optimal, gittins
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import evaluate, run_trial
from learn2rl.tasks import BanditParams, BernoulliBandit, DependentBandit, GaussianBandit
from learn2rl.trial import Trial
from tests.reference import bandit_reference as ref

# ---------------------------------------------------------------------------------------------
# Exact values
# ---------------------------------------------------------------------------------------------


def test_bayes_optimal_two_arms_hundred_pulls():
    assert baselines.bayes_optimal_value(2, 100) == pytest.approx(64.9184, abs=1e-3)
    assert baselines.bayes_optimal_method(2, 100) == "exact-dp"


def test_bayes_optimal_five_arms_ten_pulls():
    assert baselines.bayes_optimal_value(5, 10) == pytest.approx(6.660, abs=5e-4)


@pytest.mark.parametrize(
    "num_arms, horizons", [(2, range(1, 13)), (3, range(1, 11)), (1, [5]), (4, [7])]
)
def test_bayes_optimal_value_matches_memoized_recursion(num_arms, horizons):
    for horizon in horizons:
        expected = ref.bayes_optimal_value_reference(num_arms, horizon)
        assert baselines.bayes_optimal_value(num_arms, horizon) == pytest.approx(expected, abs=1e-9)


def test_multiset_dp_agrees_with_two_arm_dp():
    # the k-arm DP (used for k != 2) run on 2 arms must agree with the dedicated 2-arm DP
    for horizon in (3, 9, 15):
        assert bayes_optimal._multiset_dp(2, horizon).value == pytest.approx(
            bayes_optimal._two_arm_dp(horizon)[0], abs=1e-9
        )


def test_gittins_index_of_fresh_arm():
    assert baselines.gittins_index(0, 0, 0.9) == pytest.approx(0.7029, abs=5e-5)


@pytest.mark.parametrize("state", [(0, 0), (3, 1), (0, 4)])
def test_gittins_index_matches_bisection_reference(state):
    expected = ref.gittins_index_reference(*state, gamma=0.9)
    assert baselines.gittins_index(*state, 0.9) == pytest.approx(expected, abs=1e-6)


def test_gittins_table_matches_single_state_computation():
    table = gittins._gittins_table(8, 0.8)
    successes, failures = gittins._states_up_to(7)
    for s, f, value in zip(successes[::3], failures[::3], table[::3], strict=True):
        assert value == pytest.approx(baselines.gittins_index(int(s), int(f), 0.8), abs=1e-8)


@pytest.mark.parametrize("state", [(0, 0, 12), (2, 5, 7), (4, 0, 3), (1, 1, 1)])
def test_finite_horizon_gittins_matches_reference(state):
    expected = ref.finite_horizon_gittins_reference(*state)
    assert baselines.finite_horizon_gittins_index(*state) == pytest.approx(expected, abs=1e-8)
    table = gittins._finite_horizon_gittins_table(20)
    s, f, remaining = state
    assert table[remaining, gittins.state_id(s, f)] == pytest.approx(expected, abs=1e-8)


def test_bayes_optimal_method_switches():
    assert baselines.bayes_optimal_method(5, 10) == "exact-dp"
    assert baselines.bayes_optimal_method(50, 10) == "exact-dp"
    assert baselines.bayes_optimal_method(5, 100) == "fh-gittins"
    assert baselines.bayes_optimal_method(10, 500) == "approx-fh-gittins"
    assert baselines.bayes_optimal_method(2, 500) == "approx-fh-gittins"
    with pytest.raises(Learn2RLError):
        baselines.bayes_optimal_value(5, 100)


# ---------------------------------------------------------------------------------------------
# Index computations against per-arm loops
# ---------------------------------------------------------------------------------------------

PULLS = [0, 1, 4, 9, 2]
SUMS = [0.0, 1.0, 1.0, 7.0, 2.0]
GAUSSIAN = (0.5, 2.0, 1.5)  # prior mean, prior std, noise std


def _counts(pulls, sums):
    return bandits.ArmCounts(
        pulls=jnp.asarray(pulls, jnp.int32), reward_sums=jnp.asarray(sums, jnp.float32)
    )


@pytest.mark.parametrize("pseudo", [True, False])
@pytest.mark.parametrize("gaussian", [None, GAUSSIAN])
def test_ucb1_indices_match_reference(pseudo, gaussian):
    model = (
        bandits.RewardModel("binary")
        if gaussian is None
        else bandits.RewardModel("gaussian", *gaussian)
    )
    fast = bandits.ucb1_indices(_counts(PULLS, SUMS), model, pseudo, exploration=0.7)
    slow = ref.ucb1_reference(PULLS, SUMS, pseudo, 0.7, gaussian)
    np.testing.assert_allclose(np.asarray(fast), slow, rtol=1e-6)


def test_greedy_and_thompson_posteriors_match_reference():
    counts = _counts(PULLS, SUMS)
    binary, gaussian = bandits.RewardModel("binary"), bandits.RewardModel("gaussian", *GAUSSIAN)
    np.testing.assert_allclose(
        bandits.greedy_values(counts, binary), ref.greedy_reference(PULLS, SUMS), rtol=1e-6
    )
    np.testing.assert_allclose(
        bandits.greedy_values(counts, gaussian),
        ref.greedy_reference(PULLS, SUMS, gaussian=True),
        rtol=1e-6,
    )
    for model, spec in ((binary, None), (gaussian, GAUSSIAN)):
        fast = np.stack(bandits.thompson_posterior(counts, model), axis=1)
        np.testing.assert_allclose(
            fast, ref.thompson_posterior_reference(PULLS, SUMS, spec), rtol=1e-6
        )


def test_budget_grid_holds_exact_finite_horizon_gittins_indices():
    grid = gittins.fh_gittins_budget_grid(40)
    for row, column in ((0, 5), (3, 20), (17, 2), (20, 18)):
        pulls, remaining = int(grid.pulls_plus_two[row]) - 2, int(grid.remaining[column])
        s, f = pulls // 2, pulls - pulls // 2
        index = ref.finite_horizon_gittins_reference(s, f, remaining)
        mean = (s + 1) / (pulls + 2)
        kl = mean * np.log(mean / index) + (1 - mean) * np.log((1 - mean) / (1 - index))
        assert grid.budget[row, column] == pytest.approx((pulls + 2) * kl, abs=1e-6)


@pytest.mark.parametrize("horizon", [40, 300])
@pytest.mark.slow
def test_approximate_fh_gittins_indices_match_reference(horizon):
    grid = gittins.fh_gittins_budget_grid(horizon)
    fast = gittins.approximate_fh_gittins_indices(_counts(PULLS, SUMS), horizon, grid)
    slow = ref.approximate_fh_gittins_reference(PULLS, SUMS, horizon, grid)
    np.testing.assert_allclose(fast, slow, atol=2e-6)


# ---------------------------------------------------------------------------------------------
# Agents: jit vs eager, optimal actions, sensible behaviour
# ---------------------------------------------------------------------------------------------

AGENT_CASES = [
    *[(name, BernoulliBandit(3), 12, {}) for name in baselines.list_baselines()],
    ("bayes-optimal", BernoulliBandit(2), 12, {}),  # 2-arm DP
    ("gittins", BernoulliBandit(2), 12, {"gamma": 0.7}),
    ("bayes-optimal", BernoulliBandit(5), 30, {}),  # finite-horizon Gittins fallback
    ("bayes-optimal", BernoulliBandit(3), 200, {}),  # closed-form approximation fallback
    ("ucb1", BernoulliBandit(3), 12, {"prior_pseudo_counts": False}),
    ("eps-greedy", DependentBandit("easy"), 12, {"epsilon": 0.3}),
    *[(name, GaussianBandit(3), 12, {}) for name in ("greedy", "ucb1", "thompson")],
]


@pytest.mark.parametrize(
    "name, family, num_pulls, options",
    AGENT_CASES,
    ids=[f"{c[0]}-{c[1].family_id}-{c[2]}" for c in AGENT_CASES],
)
@pytest.mark.slow
def test_act_gives_same_actions_with_and_without_jit(name, family, num_pulls, options):
    agent = baselines.get(name, family, num_pulls, **options)
    trial = Trial(family, 8)
    params = family.task(3)
    key = jax.random.PRNGKey(7)
    jitted = jax.jit(partial(run_trial, agent, trial))(key, params)
    with jax.disable_jit():
        eager = run_trial(agent, trial, key, params)
    np.testing.assert_array_equal(np.asarray(jitted[3]), np.asarray(eager[3]))
    assert np.all((np.asarray(jitted[3]) >= 0) & (np.asarray(jitted[3]) < family.num_arms))


def _arm_states_before_each_step(actions, rewards, num_arms):
    states = [(0, 0)] * num_arms
    for action, reward in zip(actions, rewards, strict=True):
        yield list(states)
        s, f = states[action]
        states[action] = (s + 1, f) if reward > 0.5 else (s, f + 1)


@pytest.mark.parametrize("num_arms, num_pulls", [(2, 10), (3, 8)])
@pytest.mark.slow
def test_bayes_optimal_agent_only_takes_optimal_actions(num_arms, num_pulls):
    family = BernoulliBandit(num_arms)
    agent = baselines.get("bayes-optimal", family, num_pulls)
    run = jax.jit(jax.vmap(partial(run_trial, agent, Trial(family, num_pulls))))
    rewards, _, _, actions, _, _ = run(jax.random.split(jax.random.PRNGKey(0), 8), family.tasks(8))
    for task_actions, task_rewards in zip(np.asarray(actions), np.asarray(rewards), strict=True):
        states = _arm_states_before_each_step(task_actions, task_rewards, num_arms)
        for t, (state, action) in enumerate(zip(states, task_actions, strict=True)):
            q_values = ref.bayes_optimal_q_reference(state, num_pulls - t)
            assert q_values[action] >= max(q_values) - 1e-9


@pytest.mark.slow
def test_index_agents_pick_a_largest_index():
    family = BernoulliBandit(4)
    num_pulls = 22
    fh_agent = baselines.get("bayes-optimal", family, num_pulls)
    assert baselines.bayes_optimal_method(4, num_pulls) == "fh-gittins"
    gittins_agent = baselines.get("gittins", family, num_pulls, gamma=0.8)
    trial = Trial(family, num_pulls)
    for agent, index in (
        (fh_agent, lambda s, f, t: baselines.finite_horizon_gittins_index(s, f, num_pulls - t)),
        (gittins_agent, lambda s, f, t: baselines.gittins_index(s, f, 0.8)),
    ):
        rewards, _, _, actions, _, _ = jax.jit(partial(run_trial, agent, trial))(
            jax.random.PRNGKey(1), family.task(5)
        )
        states = _arm_states_before_each_step(np.asarray(actions), np.asarray(rewards), 4)
        for t, (state, action) in enumerate(zip(states, np.asarray(actions), strict=True)):
            indices = [index(s, f, t) for s, f in state]
            assert indices[action] >= max(indices) - 1e-9


@pytest.mark.parametrize("name", ["greedy", "ucb1", "thompson", "bayes-optimal", "gittins"])
@pytest.mark.slow
def test_agents_find_a_certain_arm(name):
    """One arm always pays 1, the other never: after a few pulls the good arm is pulled."""
    family = BernoulliBandit(2)
    params = BanditParams(means=jnp.array([[1.0, 0.0], [0.0, 1.0]]), noise_std=jnp.zeros((2, 2)))
    run = jax.jit(
        jax.vmap(partial(run_trial, baselines.get(name, family, 100), Trial(family, 100)))
    )
    _, _, _, actions, _, _ = run(jax.random.split(jax.random.PRNGKey(0), 2), params)
    good_arm_share = (np.asarray(actions) == np.array([[0], [1]])).mean(axis=1)
    assert np.all(good_arm_share > 0.9)


@pytest.mark.slow
def test_oracle_pulls_the_best_arm():
    family = GaussianBandit(4)
    params = BanditParams(means=jnp.array([0.1, 2.0, -1.0, 1.9]), noise_std=jnp.ones(4))
    _, regrets, _, actions, _, _ = run_trial(
        baselines.get("oracle", family, 5), Trial(family, 5), jax.random.PRNGKey(0), params
    )
    assert np.all(np.asarray(actions) == 1) and np.all(np.asarray(regrets) == 0)


@pytest.mark.slow
def test_gaussian_agents_find_the_best_arm():
    family = GaussianBandit(3)
    params = BanditParams(means=jnp.array([0.0, 3.0, -1.0]), noise_std=jnp.full(3, 0.5))
    for name in ("greedy", "ucb1", "thompson"):
        _, _, _, actions, _, _ = jax.jit(
            partial(run_trial, baselines.get(name, family, 60), Trial(family, 60))
        )(jax.random.PRNGKey(0), params)
        assert np.mean(np.asarray(actions) == 1) > 0.8, name


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


def test_registry_lists_and_applicability():
    assert baselines.list_baselines()[:2] == ["random", "greedy"]
    assert set(baselines.applicable(BernoulliBandit(2))) == set(baselines.list_baselines())
    for family in (GaussianBandit(2), BernoulliBandit(2, low=0.2)):
        usable = baselines.applicable(family)
        assert "gittins" not in usable and "bayes-optimal" not in usable and "ucb1" in usable
    # Dependent arms have their own exact Bayes-optimal policy (baselines/dependent.py).
    usable = baselines.applicable(DependentBandit("hard"))
    assert "gittins" not in usable and "bayes-optimal" in usable and "ucb1" in usable
    assert baselines.applicable(object()) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda: baselines.get("ucb2", BernoulliBandit(2), 10),
        lambda: baselines.get("ucb1", BernoulliBandit(2), 0),
        lambda: baselines.get("ucb1", BernoulliBandit(2), -3),
        lambda: baselines.get("ucb1", BernoulliBandit(2), 2.5),
        lambda: baselines.get("ucb1", BernoulliBandit(2), True),
        lambda: baselines.get("bayes-optimal", GaussianBandit(2), 10),
        lambda: baselines.get("gittins", DependentBandit(), 10),
        lambda: baselines.get("greedy", object(), 10),
        lambda: baselines.get("ucb1", BernoulliBandit(2), 10, gamma=0.9),
        lambda: baselines.get("eps-greedy", BernoulliBandit(2), 10, epsilon=1.5),
        lambda: baselines.get("gittins", BernoulliBandit(2), 10, gamma=1.0),
        lambda: baselines.gittins_index(-1, 0, 0.9),
        lambda: baselines.get("bayes-optimal", BernoulliBandit(5), 100, method="exact-dp"),
        lambda: baselines.get("bayes-optimal", BernoulliBandit(5), 100, method="gittins"),
    ],
)
def test_bad_input_raises_learn2rl_error(call):
    with pytest.raises(Learn2RLError) as error:
        call()
    assert "\n" not in str(error.value)


def test_registry_accepts_numpy_integers_and_forced_methods():
    assert baselines.get("random", BernoulliBandit(2), np.int64(5)).name == "random"
    agent = baselines.get("bayes-optimal", BernoulliBandit(2), 10, method="fh-gittins")
    assert agent.name == "bayes-optimal"


def test_unknown_name_lists_known_names():
    with pytest.raises(Learn2RLError, match="thompson"):
        baselines.get("ucb2", BernoulliBandit(2), 10)


# ---------------------------------------------------------------------------------------------
# Statistics through the shared evaluation protocol
# ---------------------------------------------------------------------------------------------


@pytest.mark.long
def test_evaluated_totals_on_two_arm_hundred_pull_bandits():
    """2000 test tasks of the 2-arm, 100-pull Bernoulli bandit.

    The task-to-task spread of 100 * max(p) (sd ~ 24) dwarfs the differences we test, so totals
    are compared after removing the sample's deviation from the prior expectation of the same
    task statistic (a control variate): for good agents E[100 max(p1, p2)] = 66.67, for random
    E[100 mean(p)] = 50. With it the standard errors are ~0.15, so the bounds below are loose.
    """
    family, num_pulls = BernoulliBandit(2), 100
    tasks = family.tasks(2000, "test")
    means = np.asarray(tasks.means)
    best_offset = num_pulls * means.max(axis=1).mean() - num_pulls * 2 / 3
    mean_offset = num_pulls * means.mean() - num_pulls / 2
    totals = {
        name: evaluate(
            baselines.get(name, family, num_pulls), family, tasks, num_pulls, jax.random.PRNGKey(0)
        ).total_rewards.mean()
        for name in ("bayes-optimal", "thompson", "random")
    }
    assert abs(totals["bayes-optimal"] - best_offset - 64.92) < 1.0
    assert 63.0 < totals["thompson"] - best_offset < 65.0
    assert abs(totals["random"] - mean_offset - 50.0) < 1.0
    assert abs(totals["random"] - 50.0) < 2.0  # also without the correction


def test_evaluation_refuses_trials_longer_than_a_baseline_was_built_for():
    family = BernoulliBandit(num_arms=2)
    agent = baselines.get("bayes-optimal", family, 10)
    with pytest.raises(Learn2RLError, match="at most 10 steps"):
        evaluate(agent, family, family.tasks(4), 11, jax.random.PRNGKey(0))
