"""Domain randomization (tasks/randomization.py): gymnax environments as families, distributions
over their parameter fields, one-line errors, splits, and RL^2 / MAML training unchanged."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.tasks import make
from learn2rl.tasks.base import TaskFamily
from learn2rl.tasks.randomization import (
    Choice,
    DomainRandomization,
    GymnaxFamily,
    LogUniform,
    Uniform,
    gymnax_ids,
    parse_distribution,
)

CARTPOLE = "dr:CartPole-v1[length=uniform(0.2,1.0),masspole=loguniform(0.03,0.3)]"


def _one_step(family: TaskFamily, params, key):
    obs, state = family.reset_env(key, params)
    action = jnp.zeros((family.action_size,)) if family.continuous else jnp.int32(0)
    next_obs, state, reward, terminated, _ = family.step_env(key, state, action, params)
    return obs, next_obs, reward, terminated, family.is_truncated(state, params)


# --- gymnax environments as families --------------------------------------------------------
# A few kinds in the default run (discrete, box, image observations); every other one is long.
_REPRESENTATIVE = ("CartPole-v1", "Pendulum-v1", "Breakout-MinAtar", "Reacher-misc")


def test_every_gymnax_environment_is_listed_but_the_one_that_downloads():
    import gymnax

    assert set(gymnax_ids()) == set(gymnax.registered_envs) - {"MNISTBandit-bsuite"}


@pytest.mark.parametrize(
    "env_id",
    [
        env_id if env_id in _REPRESENTATIVE else pytest.param(env_id, marks=pytest.mark.long)
        for env_id in gymnax_ids()
    ],
)
def test_a_gymnax_environment_is_a_family_that_steps_under_jit_and_vmap(env_id):
    family = make(f"gymnax:{env_id}")
    assert isinstance(family, GymnaxFamily) and family.family_id == f"gymnax:{env_id}"
    tasks = family.tasks(3)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    obs, next_obs, reward, terminated, truncated = jax.jit(
        jax.vmap(lambda p, k: _one_step(family, p, k))
    )(tasks, keys)
    size = family.observation_size
    assert obs.shape == next_obs.shape == (3, size) and obs.dtype == jnp.float32
    assert reward.shape == (3,) and reward.dtype == jnp.float32
    assert terminated.dtype == truncated.dtype == jnp.bool_
    if family.continuous:
        assert family.action_space().shape == (family.action_size,)
    else:
        assert family.num_actions == family.action_space().n >= 2


def test_every_task_of_a_plain_gymnax_family_is_the_default_parameters():
    import gymnax

    family = make("gymnax:Pendulum-v1")
    _, default = gymnax.make("Pendulum-v1")
    tasks = family.tasks(4, "train")
    for field in ("max_torque", "dt", "g", "m", "l"):
        np.testing.assert_allclose(getattr(tasks, field), getattr(default, field))
    assert (family.action_low, family.action_high) == (-2.0, 2.0)
    with pytest.raises(Learn2RLError, match="continuous actions"):
        _ = family.num_actions


def test_time_limit_is_truncation_and_a_fall_is_termination():
    family = make("gymnax:CartPole-v1[max_steps_in_episode=5]")
    assert family.episode_length == 5
    params = family.task(0)
    obs, state = family.reset_env(jax.random.PRNGKey(0), params)
    flags = []
    for t in range(5):  # alternate pushes: the pole stays up for 5 steps
        _, state, _, terminated, _ = family.step_env(
            jax.random.PRNGKey(t), state, jnp.int32(t % 2), params
        )
        flags.append((bool(terminated), bool(family.is_truncated(state, params))))
    assert flags == [(False, False)] * 4 + [(False, True)]
    # Pushing one way for long enough topples the pole: termination before the time limit.
    family = make("gymnax:CartPole-v1")
    obs, state = family.reset_env(jax.random.PRNGKey(0), params)
    for t in range(60):
        _, state, _, terminated, _ = family.step_env(jax.random.PRNGKey(t), state, 1, params)
        if terminated:
            break
    assert bool(terminated) and not bool(family.is_truncated(state, params)) and t < 59


def test_a_box_with_per_dimension_bounds_is_shown_as_the_unit_box():
    family = GymnaxFamily("Pendulum-v1")
    assert not family.normalized_actions
    # Pendulum's box is [-2, 2]; a policy's 5.0 is clipped to 2 before the environment sees it.
    params = family.task(0)
    _, state = family.reset_env(jax.random.PRNGKey(0), params)
    big = family.step_env(jax.random.PRNGKey(1), state, jnp.array([5.0]), params)
    edge = family.step_env(jax.random.PRNGKey(1), state, jnp.array([2.0]), params)
    np.testing.assert_allclose(big[0], edge[0])
    family.normalized_actions, family._box = True, ((-4.0,), (0.0,))
    mapped = family._env_action(jnp.array([1.0]))  # the top of [-1, 1] is the top of the box
    np.testing.assert_allclose(mapped, [0.0])


# --- distributions -----------------------------------------------------------------------------
def test_draws_follow_their_distributions_and_stay_in_range():
    family = make("dr:Pendulum-v1[m=uniform(0.5,2.0),l=loguniform(0.1,10.0),g=choice(9.8,1.6)]")
    tasks = family.tasks(4000, "train")
    m, length, g = (np.asarray(getattr(tasks, f)) for f in ("m", "l", "g"))
    assert 0.5 <= m.min() and m.max() <= 2.0 and abs(m.mean() - 1.25) < 0.03
    assert 0.1 <= length.min() and length.max() <= 10.0
    assert abs(np.mean(np.log10(length)) - 0.0) < 0.05  # log-uniform: centred on 10^0
    assert set(np.unique(g).tolist()) == {np.float32(9.8), np.float32(1.6)}
    assert abs(np.mean(g == np.float32(9.8)) - 0.5) < 0.03
    np.testing.assert_allclose(tasks.max_torque, 2.0)  # not randomized: the default


def test_choice_probabilities_and_integer_and_boolean_fields():
    family = make("dr:Asterix-MinAtar[ramp_interval=choice(50,100,200,p=(0.5,0.25,0.25))]")
    values = np.asarray(family.tasks(4000, "train").ramp_interval)
    assert values.dtype == np.int32 and set(values) == {50, 100, 200}
    np.testing.assert_allclose(
        [np.mean(values == v) for v in (50, 100, 200)], [0.5, 0.25, 0.25], atol=0.03
    )
    flags = make("dr:Asterix-MinAtar[ramping=choice(True,False)]").tasks(200).ramping
    assert np.asarray(flags).dtype == np.bool_ and 0 < np.mean(flags) < 1


def test_array_fields_take_per_element_bounds():
    family = make("dr:control/point-goal[goal=uniform((-2.0,0.0),(-1.0,0.1))]")
    goals = np.asarray(family.tasks(500).goal)
    assert goals.shape == (500, 2)
    assert np.all((goals[:, 0] >= -2) & (goals[:, 0] <= -1))
    assert np.all((goals[:, 1] >= 0) & (goals[:, 1] <= 0.1))
    base_goals = np.asarray(make("control/point-goal").tasks(500).goal)
    assert np.abs(base_goals).max() <= 0.5  # the base's own prior, replaced


def test_cartpole_derived_fields_follow_the_drawn_ones():
    tasks = make(CARTPOLE).tasks(50)
    np.testing.assert_allclose(tasks.total_mass, tasks.masspole + tasks.masscart, rtol=1e-6)
    np.testing.assert_allclose(tasks.polemass_length, tasks.masspole * tasks.length, rtol=1e-6)


def test_the_physics_differs_between_tasks():
    family = make(CARTPOLE)
    params = family.tasks(2)
    assert float(params.length[0]) != float(params.length[1])

    def one(p):
        return _one_step(family, p, jax.random.PRNGKey(0))[1]

    after = jax.vmap(one)(params)  # the same start and push, two poles
    assert not np.allclose(after[0], after[1])


def test_tasks_are_deterministic_and_the_splits_are_disjoint():
    family = make(CARTPOLE)
    again = make(CARTPOLE)
    assert family == again and hash(family) == hash(again)
    np.testing.assert_array_equal(family.tasks(5).length, again.tasks(5).length)
    test = np.asarray(family.tasks(200, "test").length)
    train = np.asarray(family.tasks(200, "train").length)
    assert len(np.intersect1d(test, train)) == 0
    assert make("dr:CartPole-v1[length=uniform(0.2,0.9)]") != family


def test_without_fields_the_family_is_the_base():
    plain = make("dr:CartPole-v1")
    np.testing.assert_allclose(plain.tasks(3).length, 0.5)
    assert plain.num_actions == 2 and plain.episode_length == 500


def test_ids_round_trip_and_the_python_api_matches():
    family = make(CARTPOLE)
    assert family.family_id == CARTPOLE and make(family.family_id) == family
    by_objects = DomainRandomization(
        "CartPole-v1", length=Uniform(0.2, 1.0), masspole=LogUniform(0.03, 0.3)
    )
    assert by_objects == family
    with pytest.raises(Learn2RLError, match="bounds must be finite"):
        DomainRandomization("CartPole-v1", length=Uniform(0.1, float("inf")))
    with pytest.raises(Learn2RLError, match="expected a distribution"):
        DomainRandomization("CartPole-v1", length=(0.1, 1.0))
    assert parse_distribution("x", "choice(1, 2, p=(0.5, 0.5))") == Choice((1, 2), (0.5, 0.5))
    named = make("dr/cartpole")
    assert named.episode_length == 200 and named.base == "CartPole-v1"
    override = make("dr/cartpole[length=uniform(0.1,0.2)]")
    assert np.asarray(override.tasks(50).length).max() <= 0.2


# --- one-line errors ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "task_id,match",
    [
        ("dr:CartPole-v1[lenght=uniform(0.1,1.0)]", "has no parameter field 'lenght'; its fields:"),
        ("dr:CartPole-v1[length=uniform(1.0,0.1)]", "needs low <= high"),
        ("dr:CartPole-v1[length=uniform(0.1,inf)]", "arguments must be literal"),
        ("dr:CartPole-v1[length=loguniform(0.0,1.0)]", "loguniform needs low > 0"),
        ("dr:CartPole-v1[length=uniform((0.1,0.2),1.0)]", r"shape \(2,\), which does not broad"),
        ("dr:CartPole-v1[length=gauss(0.1,1.0)]", "unknown distribution 'gauss'"),
        ("dr:CartPole-v1[length=uniform(0.1)]", r"takes exactly \(low, high\)"),
        ("dr:CartPole-v1[length=0.3]", "is not a distribution"),
        ("dr:CartPole-v1[length=uniform 0.1]", "write uniform"),
        ("dr:CartPole-v1[total_mass=uniform(1,2)]", "computes it from other fields"),
        ("dr:CartPole-v1[max_steps_in_episode=choice(10,20)]", "the episode length is static"),
        ("dr:Asterix-MinAtar[ramp_interval=uniform(50,200)]", "integer field; give it choice"),
        ("dr:Asterix-MinAtar[ramp_interval=choice(50.5,100)]", "choice values must be integers"),
        ("dr:Asterix-MinAtar[ramping=choice(1,0)]", "choice values must be booleans"),
        ("dr:CartPole-v1[length=choice(0.1,0.2,p=(0.9,0.9))]", "sum to 1"),
        ("dr:CartPole-v1[length=choice(0.1,0.2,p=(1.0,))]", "one probability per value"),
        ("dr:CartPole-v1[length=choice()]", "at least one value"),
        ("dr:NoSuchEnv-v0[length=uniform(0.1,1.0)]", "unknown base 'NoSuchEnv-v0'"),
        ("dr:control/point-goal[goal=uniform((0,0,0),1)]", r"does not broadcast to the field's"),
        ("dr:control/point-goal[max_steps_in_episode=50]", "applies to gymnax environments"),
        ("gymnax:CartPole-v1[length=0.3]", "takes only \\[max_steps_in_episode=N\\]"),
        ("gymnax:CartPole-v1[max_steps_in_episode=0]", "must be one positive integer"),
        ("gymnax:NoSuchEnv-v0", "unknown gymnax environment 'NoSuchEnv-v0'"),
    ],
)
def test_bad_input_gives_one_line_errors(task_id, match):
    with pytest.raises(Learn2RLError, match=match) as info:
        make(task_id)
    assert "\n" not in str(info.value)


@struct.dataclass
class _Params:
    gain: jax.Array


@struct.dataclass
class _State:
    time: jax.Array


class _PythonGain(TaskFamily):
    """A family that reads its parameter as a Python number (it cannot vary inside jit)."""

    num_actions = 2
    episode_length = 3

    def sample_params(self, key):
        return _Params(gain=jnp.float32(1.0))

    def observation_space(self, params=None):
        from gymnax.environments import spaces

        return spaces.Box(-1.0, 1.0, (1,), jnp.float32)

    def reset_env(self, key, params):
        return jnp.zeros((1,)), _State(time=jnp.int32(0))

    def step_env(self, key, state, action, params):
        reward = 1.0 if params.gain > 0 else 0.0  # a Python branch on a parameter
        return jnp.zeros((1,)), _State(state.time + 1), jnp.float32(reward), False, {}


def test_a_field_used_as_a_python_value_is_refused_at_construction(monkeypatch):
    from learn2rl.tasks import randomization

    monkeypatch.setattr(randomization, "make_base", lambda base, steps=None: _PythonGain())
    with pytest.raises(Learn2RLError, match="uses one of gain as a Python value") as info:
        DomainRandomization("python-gain", gain=Uniform(0.5, 2.0))
    assert "\n" not in str(info.value)


# --- learners train on randomized families unchanged -------------------------------------------
@pytest.mark.long  # compiles an RL^2 PPO update (about 15 s)
def test_rl2_trains_on_randomized_cartpole():
    from learn2rl.learners.rl2 import RL2, Config

    config = Config(
        task="dr/cartpole[max_steps_in_episode=20]",
        num_episodes=2,
        algorithm="ppo",
        hidden_size=8,
        num_tasks=4,
        num_updates=2,
        updates_per_chunk=2,
    )
    learner = RL2(config)
    assert isinstance(learner.family, DomainRandomization)
    initial = learner.init()
    state, metrics = learner.train_chunk(initial, 2)
    for leaf in jax.tree.leaves((state.params, metrics)):
        assert np.all(np.isfinite(np.asarray(leaf)))
    before, after = (
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(s.params)]) for s in (initial, state)
    )
    assert not np.array_equal(before, after)


@pytest.mark.long  # compiles a MAML meta-update (about 15 s)
def test_maml_trains_on_randomized_pendulum():
    from learn2rl.learners import maml

    family = make("dr/pendulum[max_steps_in_episode=8]")
    config = maml.Config(
        task=family.family_id,
        hidden_sizes=(8,),
        num_tasks=3,
        episodes_per_step=2,
        num_updates=2,
        updates_per_chunk=2,
        ppo_epochs=1,
    )
    learner = maml.MAML(config, family)
    initial = learner.init()
    state, metrics = learner.train_chunk(initial, 2)
    assert all(np.all(np.isfinite(np.asarray(v))) for v in metrics.values())
    before, after = (
        np.concatenate([np.ravel(x) for x in jax.tree.leaves(s.params)]) for s in (initial, state)
    )
    assert not np.array_equal(before, after)
