"""Environment mixtures (tasks/mixture.py): ids, splits, padding, agreement with the single
environments, trials, and RL^2 training on the MetaGenRL split."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.tasks import make
from learn2rl.tasks.adapters import make_env
from learn2rl.tasks.base import SPLITS
from learn2rl.tasks.mixture import EnvMixture, from_id, mixture_id
from learn2rl.trial import Trial

TRAIN = ("Pendulum-v1", "control/point-goal")
TEST = ("Reacher-misc",)
MIX_ID = "mix:Pendulum-v1+control/point-goal->Reacher-misc"


@pytest.fixture(scope="module")
def family() -> EnvMixture:
    return make(MIX_ID)


# --- ids ------------------------------------------------------------------------------------


def test_ids_round_trip_and_build_through_make(family):
    assert mixture_id(TRAIN, TEST) == MIX_ID
    assert isinstance(family, EnvMixture)
    assert family.train_envs == TRAIN and family.test_envs == TEST
    assert family.family_id == family.name == MIX_ID
    assert from_id(MIX_ID) == family and hash(from_id(MIX_ID)) == hash(family)
    several = make("mix:Pendulum-v1->Reacher-misc+control/point-goal#2")
    assert several.train_envs == ("Pendulum-v1",)
    assert several.test_envs == ("Reacher-misc", "control/point-goal#2")
    assert several.family_id == "mix:Pendulum-v1->Reacher-misc+control/point-goal#2"
    assert several != family


@pytest.mark.parametrize(
    "task_id,match",
    [
        ("mix:Pendulum-v1", "one '->'"),
        ("mix:Pendulum-v1->Reacher-misc->Swimmer-misc", "one '->'"),
        ("mix:->Reacher-misc", "train_envs must name at least one"),
        ("mix:Pendulum-v1->", "test_envs must name at least one"),
        ("mix:Pendulum-v1++Reacher-misc->Swimmer-misc", "empty environment name"),
        ("mix:Pendulum-v1->Reacher-misc+", "empty environment name"),
        ("mix:Pendulum-v1+Pendulum-v1->Reacher-misc", "train_envs names an environment twice"),
        ("mix:Nope-v0->Reacher-misc", "train_envs: unknown environment 'Nope-v0'; known: "),
        ("mix:Pendulum-v1->bandit/independent-2arm", "test_envs: unknown environment"),
        ("mix:Pendulum-v1->control/point-goal#x", "test_envs: .* must be an integer"),
    ],
)
def test_bad_ids_give_one_line_errors(task_id, match):
    with pytest.raises(Learn2RLError, match=match) as info:
        make(task_id)
    assert "\n" not in str(info.value)


def test_bad_arguments_are_refused():
    with pytest.raises(Learn2RLError, match="no overrides"):
        make(MIX_ID, episode_length=3)
    with pytest.raises(Learn2RLError, match="tuple of environment names"):
        EnvMixture("Pendulum-v1", TEST)
    with pytest.raises(Learn2RLError, match="strings"):
        EnvMixture(("Pendulum-v1", 3), TEST)
    with pytest.raises(Learn2RLError, match="must start with 'mix:'"):
        from_id("Pendulum-v1->Reacher-misc")


# --- sizes and splits ---------------------------------------------------------------------------


def test_sizes_are_the_largest_and_actions_are_the_unit_box(family):
    envs = [make_env(name) for name in TRAIN + TEST]  # obs 3, 2, 8; actions 1, 2, 2
    assert family.observation_size == max(e.observation_size for e in envs) == 8
    assert family.action_size == max(e.action_size for e in envs) == 2
    assert family.episode_length == max(e.max_episode_steps for e in envs) == 200
    assert (family.action_low, family.action_high) == (-1.0, 1.0)
    assert family.continuous
    assert family.action_space().shape == (2,) and family.observation_space().shape == (8,)


@pytest.mark.slow
def test_train_tasks_come_only_from_train_envs_and_test_tasks_from_test_envs():
    family = make(
        "mix:Pendulum-v1+Reacher-misc+control/point-goal->Swimmer-misc+control/point-goal#1"
    )
    keys = jax.random.split(jax.random.PRNGKey(0), 3000)
    train = np.asarray(jax.jit(jax.vmap(lambda k: family.sample(k, "train").index))(keys))
    test = np.asarray(jax.jit(jax.vmap(lambda k: family.sample(k, "test").index))(keys))
    # Uniform over each pool: 1000 +- 3 sigma (sigma = 26) per training env, 1500 +- 82 per test.
    np.testing.assert_allclose(np.bincount(train, minlength=5), [1000, 1000, 1000, 0, 0], atol=80)
    np.testing.assert_allclose(np.bincount(test, minlength=5), [0, 0, 0, 1500, 1500], atol=82)
    prior = np.asarray(jax.vmap(family.sample_params)(keys[:300]).index)
    assert set(prior) == {0, 1, 2}
    # Enumerated tasks: test task i cycles through the test envs, the same in every build.
    np.testing.assert_array_equal(family.tasks(6, "test").index, [3, 4, 3, 4, 3, 4])
    np.testing.assert_array_equal(family.tasks(6, "train").index, [0, 1, 2, 0, 1, 2])
    np.testing.assert_array_equal(make(family.family_id).tasks(6, "test").index, [3, 4] * 3)
    assert family.environment(family.task(1)) == "control/point-goal#1"
    assert family.environment(family.task(SPLITS["train"][0] + 4)) == "Reacher-misc"


# --- dynamics ---------------------------------------------------------------------------------


def _mixture_rollout(family, params, key, actions):
    def body(state, inputs):
        key, action = inputs
        obs, state, reward, terminated, _ = family.step_env(key, state, action, params)
        return state, (obs, reward, terminated, family.is_truncated(state, params))

    obs, state = family.reset_env(key, params)
    keys = jax.random.split(key, len(actions))
    return obs, jax.lax.scan(body, state, (keys, actions))[1]


def _env_rollout(env, key, actions):
    def body(state, inputs):
        key, action = inputs
        obs, state, reward, terminated, truncated = env.step(key, state, action)
        return state, (obs, reward, terminated, truncated)

    obs, state = env.reset(key)
    keys = jax.random.split(key, len(actions))
    return obs, jax.lax.scan(body, state, (keys, actions[:, : env.action_size]))[1]


@pytest.mark.long
def test_stepping_a_task_steps_its_environment_with_padded_obs_and_truncated_actions(family):
    """Every environment of the mixture, one task each, batched (the switch becomes a select)."""
    num_steps = 120  # past point-goal's and Reacher's 100-step limit, before Pendulum's 200
    params = jax.tree.map(
        lambda *p: jnp.stack(p),
        family.task(SPLITS["train"][0]),
        family.task(SPLITS["train"][0] + 1),
        family.task(0),
    )
    keys = jax.random.split(jax.random.PRNGKey(5), 3)
    # Actions beyond the unit box too: the adapters clip them.
    actions = jax.random.uniform(jax.random.PRNGKey(6), (3, num_steps, 2), minval=-1.5, maxval=1.5)
    got = jax.jit(jax.vmap(lambda p, k, a: _mixture_rollout(family, p, k, a)))(
        params, keys, actions
    )
    for row, name in enumerate(TRAIN + TEST):
        env = make_env(name)
        want_obs, (want_next, want_reward, want_term, want_trunc) = jax.jit(
            lambda k, a, env=env: _env_rollout(env, k, a)
        )(keys[row], actions[row])
        got_obs, (got_next, got_reward, got_term, got_trunc) = jax.tree.map(
            lambda x, row=row: x[row], got
        )
        size = env.observation_size
        np.testing.assert_allclose(got_obs[:size], want_obs, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got_next[:, :size], want_next, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got_reward, want_reward, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(got_term, want_term)
        np.testing.assert_array_equal(got_trunc, want_trunc)
        # Zero padding after the environment's own observation.
        assert np.all(got_obs[size:] == 0) and np.all(got_next[:, size:] == 0)
        limit = env.max_episode_steps
        # No reset here: the flag stays up once the time limit is reached.
        np.testing.assert_array_equal(got_trunc, np.arange(num_steps) >= limit - 1)


def test_the_second_action_entry_is_ignored_by_one_dimensional_envs(family):
    params = family.task(SPLITS["train"][0])  # Pendulum: one torque
    assert family.environment(params) == "Pendulum-v1"
    obs, state = family.reset_env(jax.random.PRNGKey(0), params)
    step = jax.jit(family.step_env)
    first = step(jax.random.PRNGKey(1), state, jnp.array([0.3, -1.0]), params)
    second = step(jax.random.PRNGKey(1), state, jnp.array([0.3, 1.0]), params)
    other = step(jax.random.PRNGKey(1), state, jnp.array([-0.3, -1.0]), params)
    np.testing.assert_array_equal(first[0], second[0])
    assert not np.array_equal(first[0], other[0])


@pytest.mark.long
def test_a_jitted_trial_of_two_episodes_ends_each_episode_at_its_env_time_limit(family):
    trial = Trial(family, 2)
    assert trial.max_steps == 400
    assert Trial(make(MIX_ID), 2) == trial

    @jax.jit
    def run(key, params):
        _, state = trial.reset(key, params)

        def body(state, key):
            # Standing still never reaches point-goal's goal (test task 0's is not at the origin).
            _, state, reward, episode_done, trial_done = trial.step(
                key, state, jnp.zeros(2), params
            )
            return state, (reward, episode_done, trial_done)

        return jax.lax.scan(body, state, jax.random.split(key, trial.max_steps))[1]

    params = jax.vmap(family.task)(jnp.array([SPLITS["train"][0], SPLITS["train"][0] + 1, 0]))
    reward, episode_done, trial_done = jax.vmap(run)(
        jax.random.split(jax.random.PRNGKey(0), 3), params
    )
    for row, limit in enumerate([200, 100, 100]):  # Pendulum, point-goal, Reacher
        np.testing.assert_array_equal(np.flatnonzero(episode_done[row]), [limit - 1, 2 * limit - 1])
        np.testing.assert_array_equal(np.flatnonzero(trial_done[row]), [2 * limit - 1])
        assert np.all(reward[row, 2 * limit :] == 0) and np.all(reward[row, : 2 * limit] != 0)


# --- RL^2 on the MetaGenRL split --------------------------------------------------------------


@pytest.mark.slow  # compiles an RL^2 PPO update over three environments
@pytest.mark.long
def test_rl2_trains_on_a_mixture():
    from learn2rl.learners.rl2 import RL2, Config

    config = Config(
        task=MIX_ID,
        num_episodes=2,
        hidden_size=8,
        num_tasks=4,
        num_updates=2,
        updates_per_chunk=2,
        gamma=0.9,
        gae_lambda=0.95,
        learning_rate=3e-3,
        final_learning_rate=3e-4,
        entropy_coef=0.0,
    )
    learner = RL2(config)
    assert isinstance(learner.family, EnvMixture)
    initial = learner.init()
    state, metrics = learner.train_chunk(initial, 2)
    for leaf in jax.tree.leaves((state.params, metrics)):
        assert np.all(np.isfinite(np.asarray(leaf)))
    assert metrics["trial_return"].shape == (2,)
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(initial.params), jax.tree.leaves(state.params), strict=True)
    ]
    assert all(changed)
