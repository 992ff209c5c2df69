"""DIAYN (learners/diayn.py) and skills as tasks (learners/skills.py): the pseudo-reward is 0 for a
discriminator that tells nothing and matches a numpy forward pass for a random one (in the
learner and in the family), config errors, determinism, the skill family's tasks, splits,
equality and hidden skill, and (long) skills that separate on the 2-D point robot and an RL^2
chunk on the skill family that leaves the discriminator frozen."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import learners
from learn2rl.errors import Learn2RLError
from learn2rl.learners.diayn import DIAYN, Config, pseudo_reward
from learn2rl.learners.skills import SkillRewardFamily
from learn2rl.types import TrialObs

TASK = "control/point-goal[episode_length=20]"
TINY = dict(
    task=TASK, num_skills=4, num_envs=8, hidden_sizes=(8,), discriminator_hidden_sizes=(8,),
    ppo_epochs=2, ppo_minibatches=2, discriminator_steps=2, num_updates=2, updates_per_chunk=2,
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny() -> DIAYN:
    return DIAYN(Config(**TINY))


def layers(disc_params) -> list[str]:
    """The discriminator's Dense layers in order (flax names them Dense_0, Dense_1, ...)."""
    return sorted(disc_params["params"], key=lambda name: int(name.split("_")[1]))


def uniform(disc_params):
    """The discriminator with its output layer zeroed: constant logits, q(z | s) = 1 / K."""
    last = layers(disc_params)[-1]
    params = jax.tree.map(lambda x: x, disc_params)
    params["params"][last] = jax.tree.map(jnp.zeros_like, params["params"][last])
    return params


def random_discriminator(learner: DIAYN, seed: int, scale: float = 3.0):
    """A discriminator with large random weights, so that q(z | s) is far from uniform."""
    params = learner.discriminator.init(
        jax.random.PRNGKey(seed), jnp.zeros((learner.observation_size,), jnp.float32)
    )
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(leaves))
    leaves = [scale * jax.random.normal(k, x.shape) for k, x in zip(keys, leaves, strict=True)]
    return jax.tree.unflatten(tree, leaves)


def numpy_pseudo_reward(disc_params, obs, z, num_skills) -> np.ndarray:
    """log q(z | s) - log(1 / K) with q a ReLU MLP and a softmax, in float64 numpy."""
    x = np.asarray(obs, np.float64)
    names = layers(disc_params)
    for i, name in enumerate(names):
        layer = disc_params["params"][name]
        x = x @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64)
        if i < len(names) - 1:
            x = np.maximum(x, 0.0)
    x = x - x.max(-1, keepdims=True)
    log_q = x - np.log(np.exp(x).sum(-1, keepdims=True))
    return np.take_along_axis(log_q, np.asarray(z)[..., None], -1)[..., 0] - np.log(1 / num_skills)


def skill_family(learner: DIAYN, disc_params) -> SkillRewardFamily:
    c = learner.config
    return SkillRewardFamily(
        learner.family, disc_params, c.num_skills, tuple(c.discriminator_hidden_sizes)
    )


def family_rewards(family: SkillRewardFamily, skill: int, actions) -> np.ndarray:
    """Rewards of one episode of test task 0 with its skill replaced by ``skill``."""
    params = family.task(0).replace(skill=jnp.int32(skill))
    _, state = family.reset_env(jax.random.PRNGKey(0), params)

    def step(state, inputs):
        key, action = inputs
        _, state, reward, terminated, _ = family.step_env(key, state, action, params)
        return state, (reward, terminated)

    keys = jax.random.split(jax.random.PRNGKey(1), len(actions))
    _, (rewards, terminated) = jax.lax.scan(step, state, (keys, jnp.asarray(actions, jnp.float32)))
    assert not np.asarray(terminated).any()
    return np.asarray(rewards)


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


# --- the pseudo-reward ----------------------------------------------------------------------------
@pytest.mark.slow
def test_a_discriminator_that_tells_nothing_pays_exactly_zero(tiny):
    disc = uniform(tiny.init().params["discriminator"])
    obs = jax.random.normal(jax.random.PRNGKey(0), (50, 2)) * 3.0
    z = jnp.arange(50) % tiny.config.num_skills
    np.testing.assert_array_equal(np.asarray(tiny.pseudo_reward(disc, obs, z)), 0.0)
    family = skill_family(tiny, disc)
    actions = np.random.default_rng(0).uniform(-0.2, 0.2, (10, 2))
    for skill in range(tiny.config.num_skills):
        np.testing.assert_array_equal(family_rewards(family, skill, actions), 0.0)


@pytest.mark.slow
def test_pseudo_reward_is_log_q_minus_log_prior_for_a_random_discriminator(tiny):
    disc = random_discriminator(tiny, 3)
    k = tiny.config.num_skills
    obs = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (64, 2)))
    z = np.arange(64) % k
    expected = numpy_pseudo_reward(disc, obs, z, k)
    assert np.ptp(expected) > 1.0  # far from a uniform discriminator
    np.testing.assert_allclose(tiny.pseudo_reward(disc, obs, z), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        pseudo_reward(tiny.discriminator, disc, obs, z), expected, rtol=1e-5, atol=1e-5
    )
    # The family pays the same for the positions its base dynamics reach (start at the origin,
    # clipped velocity steps).
    family = skill_family(tiny, disc)
    actions = np.random.default_rng(1).uniform(-0.3, 0.3, (10, 2))
    positions = np.cumsum(np.clip(actions, -0.1, 0.1), 0)
    for skill in range(k):
        expected = numpy_pseudo_reward(disc, positions, np.full(10, skill), k)
        np.testing.assert_allclose(
            family_rewards(family, skill, actions), expected, rtol=1e-5, atol=1e-5
        )


# --- config and determinism -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "field, value, message",
    [
        ("num_skills", 1, "config.num_skills must be at least 2"),
        ("num_skills", 2.5, "config.num_skills must be a positive integer"),
        ("num_envs", 0, "config.num_envs must be a positive integer"),
        ("hidden_sizes", (), "config.hidden_sizes must be positive integers"),
        ("discriminator_hidden_sizes", (8, -1), "config.discriminator_hidden_sizes must be"),
        ("learning_rate", 0.0, "config.learning_rate must be a positive number"),
        ("discriminator_learning_rate", -1.0, "config.discriminator_learning_rate must be"),
        ("gamma", 1.5, "config.gamma must lie in [0, 1]"),
        ("entropy_coef", -0.1, "config.entropy_coef must be >= 0"),
        ("ppo_minibatches", 3, "config.num_envs (8) must be divisible by config.ppo_minibatches"),
        ("seed", -1, "config.seed must be a non-negative integer"),
        ("task", "", "config.task must be a task family id"),
    ],
)
def test_bad_config_values_are_one_line_errors(field, value, message):
    with pytest.raises(Learn2RLError) as err:
        Config(**{**TINY, field: value})
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_a_discrete_family_is_refused_in_one_line():
    with pytest.raises(Learn2RLError, match="continuous-control family") as err:
        DIAYN(Config(**{**TINY, "task": "bandit/independent-2arm"}))
    assert "\n" not in str(err.value)


def test_registered_and_meets_the_learner_contract(tiny):
    assert learners.get("diayn") == (Config, DIAYN)
    assert Config.from_dict(Config(**TINY).to_dict()) == Config(**TINY)
    assert tiny.progress_metric == "trial_return"
    assert tiny.steps_per_update == 8 * 20
    with pytest.raises(Learn2RLError, match="skill must lie in"):
        tiny.agent(tiny.init().params, skill=4)


@pytest.mark.long
def test_same_seed_same_params_and_one_metric_row_per_update(tiny):
    state, metrics = tiny.train_chunk(tiny.init(), 2)
    again, _ = DIAYN(Config(**TINY)).train_chunk(DIAYN(Config(**TINY)).init(), 2)
    assert int(state.update) == 2
    assert_trees_equal(state.params, again.params)
    other, _ = tiny.train_chunk(tiny.init(seed=1), 2)
    assert not np.array_equal(jax.tree.leaves(other.params)[0], jax.tree.leaves(state.params)[0])
    for name in ("trial_return", "discriminator_accuracy", "discriminator_loss", "entropy"):
        assert np.asarray(metrics[name]).shape == (2,)
        assert np.isfinite(metrics[name]).all()
    # The agent acts on a trial observation with the chosen skill.
    agent = tiny.agent(state.params, skill=1, greedy=True)
    obs = TrialObs(jnp.zeros(2), jnp.zeros(2), jnp.float32(0), jnp.float32(0), jnp.int32(0))
    action, _ = agent.act(jax.random.PRNGKey(0), agent.init(jax.random.PRNGKey(0), None), obs)
    assert action.shape == (2,)
    finals = tiny.final_states(state.params, jax.random.PRNGKey(0), 3)
    assert finals.shape == (4, 3, 2)


# --- the skill family -----------------------------------------------------------------------------
@pytest.mark.slow
def test_skill_family_tasks_are_skills_with_deterministic_splits(tiny):
    disc = random_discriminator(tiny, 5)
    family = skill_family(tiny, disc)
    base = tiny.family
    for name in ("continuous", "action_size", "observation_size", "action_low", "action_high"):
        assert getattr(family, name) == getattr(base, name)
    assert family.episode_length == base.episode_length == 20
    assert family.observation_space().shape == base.observation_space().shape
    test = family.tasks(64, "test")
    assert test.skill.dtype == jnp.int32
    assert set(np.asarray(test.skill).tolist()) == set(range(tiny.config.num_skills))
    # Splits: the same indices give the same tasks in a rebuilt family; train and test differ.
    rebuilt = skill_family(DIAYN(Config(**TINY)), disc)
    assert rebuilt == family and hash(rebuilt) == hash(family)
    assert_trees_equal(rebuilt.tasks(64, "test"), test)
    train = family.tasks(64, "train")
    assert not np.array_equal(np.asarray(train.base.goal), np.asarray(test.base.goal))
    # Another discriminator is another family.
    assert skill_family(tiny, random_discriminator(tiny, 6)) != family
    assert family.discriminator_hash() != skill_family(tiny, uniform(disc)).discriminator_hash()
    # The skill is hidden: the same key and actions give the same observations for every skill,
    # and only the reward tells them apart.
    observations, rewards = [], []
    for skill in range(tiny.config.num_skills):
        params = test.replace(skill=jnp.full_like(test.skill, skill))
        params = jax.tree.map(lambda x: x[0], params)
        obs, state = family.reset_env(jax.random.PRNGKey(0), params)
        obs, state, reward, _, _ = family.step_env(
            jax.random.PRNGKey(1), state, jnp.array([0.1, -0.05]), params
        )
        observations.append(np.asarray(obs))
        rewards.append(float(reward))
    assert all(np.array_equal(o, observations[0]) for o in observations)
    assert len(set(rewards)) == tiny.config.num_skills
    # Truncated after the base's episode length, never terminated.
    assert not bool(family.is_truncated(state, params))
    assert bool(family.is_truncated(state.replace(time=jnp.int32(20)), params))


@pytest.mark.long
def test_rl2_trains_on_the_skill_family_and_leaves_the_discriminator_frozen(tiny):
    from learn2rl.learners.rl2 import RL2
    from learn2rl.learners.rl2 import Config as RL2Config

    family = tiny.skill_family(tiny.init().params)
    before = family.discriminator_hash()
    config = RL2Config(
        task="control/point-goal", num_episodes=2, hidden_size=8, num_tasks=4, num_updates=2,
        updates_per_chunk=2,
    )  # fmt: skip
    learner = RL2(config, family=family)
    state, metrics = learner.train_chunk(learner.init(), 2)
    assert int(state.update) == 2
    assert np.isfinite(np.asarray(metrics["trial_return"])).all()
    assert family.discriminator_hash() == before
    assert learner.family == family


@pytest.mark.long
def test_maml_trains_on_the_skill_family_and_leaves_the_discriminator_frozen(tiny):
    from learn2rl.learners import maml

    family = skill_family(tiny, random_discriminator(tiny, 3))
    before = family.discriminator_hash()
    config = maml.Config(
        task="control/point-goal", hidden_sizes=(8,), num_tasks=2, episodes_per_step=2,
        num_updates=2, updates_per_chunk=2, ppo_epochs=1,
    )  # fmt: skip
    learner = maml.MAML(config, family)
    initial = learner.init()
    state, metrics = learner.train_chunk(initial, 2)
    assert all(np.all(np.isfinite(np.asarray(v))) for v in metrics.values())
    moved = [
        not np.array_equal(a, b)
        for a, b in zip(jax.tree.leaves(initial.params), jax.tree.leaves(state.params), strict=True)
    ]
    assert any(moved)
    assert family.discriminator_hash() == before


# --- learning ------------------------------------------------------------------------------------
@pytest.mark.long
def test_skills_separate_on_the_point_robot():
    """8 skills, 60 updates of 32 episodes of 20 steps: the discriminator tells the skills apart
    from their final states (sampled actions) and the skills end in distinct places. Measured on
    seeds 0-5: final-state accuracy 0.993-1.0, the closest pair of skill means 0.47-0.94 apart,
    5.5-9.2 times the largest within-skill spread (0.06-0.11), and a pseudo-reward return of
    38.7-40.5 over the last 5 updates (bound 20 log 8 = 41.6); about 21 s each."""
    config = Config(
        task=TASK, num_skills=8, num_envs=32, hidden_sizes=(32, 32),
        discriminator_hidden_sizes=(32, 32), num_updates=60, updates_per_chunk=60, seed=0,
    )  # fmt: skip
    learner = DIAYN(config)
    start = time.perf_counter()
    state, metrics = learner.train_chunk(learner.init(), config.num_updates)
    jax.block_until_ready(state)
    seconds = time.perf_counter() - start
    finals = learner.final_states(state.params, jax.random.PRNGKey(123), 50)
    logits = learner.discriminator.apply(state.params["discriminator"], finals)
    accuracy = float(jnp.mean(jnp.argmax(logits, -1) == jnp.arange(8)[:, None]))
    means = finals.mean(1)
    spread = float(jnp.max(jnp.mean(jnp.linalg.norm(finals - means[:, None], axis=-1), 1)))
    distances = np.asarray(jnp.linalg.norm(means[:, None] - means[None], axis=-1))
    closest = float(distances[~np.eye(8, dtype=bool)].min())
    print(f"trained in {seconds:.1f} s; accuracy {accuracy:.3f}; closest {closest:.3f}; "
          f"spread {spread:.3f}")  # fmt: skip
    assert accuracy > 0.9
    assert closest > 3 * spread
    # The pseudo-reward return grew from about 0 towards its bound T log K.
    returns = np.asarray(metrics["trial_return"])
    assert abs(returns[0]) < 1.0 and returns[-5:].mean() > 0.8 * 20 * np.log(8)
