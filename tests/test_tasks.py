import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.tasks import (
    BanditParams,
    BernoulliBandit,
    DependentBandit,
    GaussianBandit,
    list_tasks,
    make,
)
from learn2rl.tasks.registry import parse_options
from learn2rl.trial import Trial
from tests.reference import numpy_reference as ref


@pytest.mark.parametrize("task_id", list_tasks())
@pytest.mark.slow
def test_every_registered_task_resets_steps_and_samples(task_id):
    family = make(task_id)
    params = family.sample(jax.random.PRNGKey(0))
    obs, state = family.reset(jax.random.PRNGKey(1), params)
    # Continuous-control families take float vectors; discrete ones an action index.
    action = jnp.zeros((family.action_size,)) if family.continuous else jnp.int32(0)
    # gymnax 1.x API: six return values, terminated and truncated separately.
    obs, state, reward, terminated, truncated, info = family.step(
        jax.random.PRNGKey(2), state, action, params
    )
    assert reward.shape == () and np.isfinite(float(reward))
    assert bool(truncated) == (family.episode_length == 1)
    batch = family.tasks(16, "test")
    assert jax.tree.leaves(batch)[0].shape[0] == 16
    if family.continuous:
        assert family.action_space(params).shape == (family.action_size,)
        assert obs.shape == (family.observation_size,)
    else:
        assert family.action_space(params).n == family.num_actions


def test_unknown_task_id_lists_known_ids():
    with pytest.raises(Learn2RLError, match="bandit/independent-2arm"):
        make("bandit/nope")


def test_options_in_a_task_id_override_the_defaults():
    family = make("bandit/independent-5arm[pulls_per_episode=3]")
    assert family.episode_length == 3 and family.num_arms == 5
    assert family.family_id == "bandit/independent-5arm[pulls_per_episode=3]"
    assert parse_options("a/b[x=1, y=(0.5, 2), z=mjx, w=True]") == (
        "a/b",
        {"x": 1, "y": (0.5, 2), "z": "mjx", "w": True},
    )
    with pytest.raises(Learn2RLError, match="unknown task id 'bandit/nope'"):
        make("bandit/nope[x=1]")
    with pytest.raises(Learn2RLError, match=r"options are written \[name=value,...\]"):
        make("bandit/independent-5arm[3]")
    with pytest.raises(Learn2RLError, match="unexpected keyword argument 'colour'"):
        make("bandit/independent-5arm[colour=red]")


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_non_positive_arm_counts_are_rejected(bad):
    with pytest.raises(Learn2RLError, match="num_arms"):
        BernoulliBandit(num_arms=bad)


def test_bad_family_parameters_are_rejected():
    with pytest.raises(Learn2RLError, match="pulls_per_episode"):
        BernoulliBandit(2, pulls_per_episode=0)
    with pytest.raises(Learn2RLError, match="low"):
        BernoulliBandit(2, low=0.8, high=0.2)
    with pytest.raises(Learn2RLError, match="noise_std"):
        GaussianBandit(2, noise_std=-1.0)
    with pytest.raises(Learn2RLError, match="prior"):
        DependentBandit("impossible")
    with pytest.raises(Learn2RLError, match="episodes per trial"):
        Trial(BernoulliBandit(2), 0)
    with pytest.raises(Learn2RLError, match="split"):
        BernoulliBandit(2).tasks(3, "validation")


@pytest.mark.slow
def test_train_and_test_splits_never_share_a_task():
    family = make("bandit/independent-2arm")
    test = np.asarray(family.tasks(5000, "test").means)
    train = np.asarray(jax.vmap(family.sample)(jax.random.split(jax.random.PRNGKey(0), 5000)).means)
    test_set = {tuple(row) for row in test}
    assert not any(tuple(row) in test_set for row in train)
    # Task i is the same task every time.
    np.testing.assert_array_equal(family.tasks(5, "test").means, test[:5])


@pytest.mark.slow
def test_priors_have_the_documented_distributions():
    keys = jax.random.split(jax.random.PRNGKey(3), 20000)
    means = np.asarray(jax.vmap(make("bandit/independent-5arm").sample_params)(keys).means)
    assert means.shape == (20000, 5) and means.min() >= 0 and means.max() <= 1
    assert abs(means.mean() - 0.5) < 0.01 and abs(means.var() - 1 / 12) < 0.003
    for prior, x in [("easy", 0.1), ("medium", 0.25), ("hard", 0.4)]:
        dep = np.asarray(jax.vmap(make(f"bandit/dependent-{prior}").sample_params)(keys).means)
        np.testing.assert_allclose(dep.sum(axis=1), 1.0, atol=1e-6)
        low = np.isclose(dep[:, 1], x, atol=1e-6)
        assert np.all(low | np.isclose(dep[:, 1], 1 - x, atol=1e-6))
        assert abs(low.mean() - 0.5) < 0.02
    dep = np.asarray(jax.vmap(make("bandit/dependent-uniform").sample_params)(keys).means)
    np.testing.assert_allclose(dep.sum(axis=1), 1.0, atol=1e-6)
    gauss = np.asarray(jax.vmap(make("bandit/gaussian-2arm").sample_params)(keys).means)
    assert abs(gauss.mean()) < 0.03 and abs(gauss.std() - 1) < 0.03


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "nojit"])
@pytest.mark.parametrize("episode_length,num_episodes", [(1, 7), (3, 2)])
def test_bernoulli_trial_matches_numpy_reference(jit, episode_length, num_episodes):
    family = BernoulliBandit(3, pulls_per_episode=episode_length)
    trial = Trial(family, num_episodes)
    params = BanditParams(means=jnp.array([0.2, 0.5, 0.9]), noise_std=jnp.zeros(3))
    rng = np.random.default_rng(0)
    num_steps = trial.max_steps + 2  # two steps past the end of the trial: must be no-ops
    actions = rng.integers(0, 3, size=num_steps)
    keys = jax.random.split(jax.random.PRNGKey(5), num_steps)
    # Trial.step splits its key into (env step, reset); the Bernoulli draw uses the env-step key.
    uniforms = [float(jax.random.uniform(jax.random.split(k)[0])) for k in keys]
    expected = ref.bandit_trial(
        np.asarray(params.means), uniforms, actions, episode_length, num_episodes
    )
    step = jax.jit(trial.step) if jit else trial.step
    with jax.disable_jit(not jit):
        obs, state = trial.reset(jax.random.PRNGKey(0), params)
        for t in range(num_steps):
            want = expected[t]
            assert int(obs.step) == min(t, trial.max_steps)
            assert int(obs.prev_action) == want["prev_action"]
            assert float(obs.prev_reward) == want["prev_reward"]
            assert float(obs.prev_done) == want["prev_done"]
            obs, state, reward, episode_done, trial_done = step(keys[t], state, actions[t], params)
            assert float(reward) == want["reward"]
            assert bool(episode_done) == want["episode_done"]
            assert bool(trial_done) == want["trial_done"]


def test_gaussian_and_dependent_rewards_have_the_task_means():
    for family in [GaussianBandit(2), DependentBandit("easy")]:
        params = family.task(3)
        keys = jax.random.split(jax.random.PRNGKey(0), 20000)
        _, state = family.reset(keys[0], params)
        for arm in range(2):

            def reward(key, arm=arm, family=family, state=state, params=params):
                return family.step_env(key, state, arm, params)[2]

            rewards = jax.vmap(reward)(keys)
            assert abs(float(rewards.mean()) - float(params.means[arm])) < 0.03


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "nojit"])
@pytest.mark.parametrize(
    "family",
    [GaussianBandit(3, noise_std=0.5), DependentBandit("medium"), BernoulliBandit(4)],
    ids=["gaussian", "dependent", "bernoulli"],
)
def test_bandit_step_matches_reference_draw(jit, family):
    """Each bandit's reward is its documented function of the step key (plain-Python reference)."""
    params = family.task(7)
    _, state = family.reset(jax.random.PRNGKey(0), params)
    step = jax.jit(family.step_env) if jit else family.step_env
    means, noise = np.asarray(params.means), np.asarray(params.noise_std)
    for i in range(20):
        key = jax.random.PRNGKey(100 + i)
        action = i % family.num_actions
        with jax.disable_jit(not jit):
            _, new_state, reward, terminated, _ = step(key, state, action, params)
        if isinstance(family, GaussianBandit):
            expected = means[action] + noise[action] * float(jax.random.normal(key))
        else:
            expected = float(float(jax.random.uniform(key)) < means[action])
        assert float(reward) == pytest.approx(expected, abs=1e-6)
        assert int(new_state.time) == 1 and not bool(terminated)
