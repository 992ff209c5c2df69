"""Single continuous-control environments (tasks/adapters.py): names, shapes, action scaling,
time limits, jit/vmap, agreement with gymnax, fixed tasks of learn2rl families."""

from __future__ import annotations

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.tasks import make
from learn2rl.tasks.adapters import (
    GYMNAX_CONTINUOUS,
    FamilyEnv,
    GymnaxEnv,
    list_envs,
    make_env,
)

# The locomotion families share one FamilyEnv path (on the C engine by default on a CPU).
LOCOMOTION_PREFIXES = ("control/cheetah-", "control/ant-")


def _env_params():
    """Every pure-JAX environment and, of the locomotion families, one."""
    names = [name for name in list_envs() if not name.startswith(LOCOMOTION_PREFIXES)]
    return [*names, "control/cheetah-vel"]


# --- names ------------------------------------------------------------------------------------


def test_list_envs_holds_the_gymnax_envs_and_only_control_families():
    names = list_envs()
    assert names[: len(GYMNAX_CONTINUOUS)] == list(GYMNAX_CONTINUOUS)
    assert "control/point-goal" in names
    assert all(n in GYMNAX_CONTINUOUS or n.startswith("control/") for n in names)
    assert len(set(names)) == len(names)


def test_make_env_builds_the_right_kind_under_its_name():
    pendulum = make_env("Pendulum-v1")
    assert isinstance(pendulum, GymnaxEnv) and pendulum.name == "Pendulum-v1"
    point = make_env("control/point-goal")
    assert isinstance(point, FamilyEnv) and point.name == "control/point-goal"
    assert point.task_index == 0
    third = make_env("control/point-goal#3")
    assert isinstance(third, FamilyEnv) and third.task_index == 3
    assert third.name == "control/point-goal#3"
    assert "Pendulum-v1" in repr(pendulum) and "200 steps" in repr(pendulum)


def test_envs_compare_and_hash_by_name():
    assert make_env("Pendulum-v1") == make_env("Pendulum-v1")
    assert hash(make_env("Pendulum-v1")) == hash(make_env("Pendulum-v1"))
    assert make_env("Pendulum-v1") != make_env("Reacher-misc")
    assert make_env("control/point-goal") != make_env("control/point-goal#1")


@pytest.mark.parametrize("name", ["Pendulum-v2", "CartPole-v1", "bandit/independent-2arm", ""])
def test_unknown_name_error_lists_the_known_names(name):
    with pytest.raises(Learn2RLError, match="unknown environment") as info:
        make_env(name)
    message = str(info.value)
    assert "\n" not in message
    for known in list_envs():
        assert known in message


@pytest.mark.parametrize("name", ["control/point-goal#x", "control/point-goal#-1"])
def test_bad_task_index_is_refused(name):
    with pytest.raises(Learn2RLError, match="index after '#' must be an integer"):
        make_env(name)


def test_wrappers_refuse_what_they_cannot_wrap():
    with pytest.raises(Learn2RLError, match="known: Pendulum-v1"):
        GymnaxEnv("CartPole-v1")
    with pytest.raises(Learn2RLError, match="discrete actions"):
        FamilyEnv("bandit/independent-2arm")


# --- shapes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", _env_params())
def test_reset_and_step_shapes_and_dtypes(name):
    env = make_env(name)
    assert isinstance(env.observation_size, int) and env.observation_size > 0
    assert isinstance(env.action_size, int) and env.action_size > 0
    assert isinstance(env.max_episode_steps, int) and env.max_episode_steps > 0
    for bound in (env.action_low, env.action_high):
        assert bound.shape == (env.action_size,) and bound.dtype == jnp.float32
    assert np.all(np.asarray(env.action_low) < np.asarray(env.action_high))

    obs, state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert obs.shape == (env.observation_size,) and obs.dtype == jnp.float32
    action = jnp.linspace(-1.0, 1.0, env.action_size, dtype=jnp.float32)
    step = jax.jit(env.step)
    for t in range(3):
        obs, state, reward, terminated, truncated = step(jax.random.PRNGKey(t), state, action)
        assert obs.shape == (env.observation_size,) and obs.dtype == jnp.float32
        assert reward.shape == () and reward.dtype == jnp.float32
        for flag in (terminated, truncated):
            assert flag.shape == () and flag.dtype == jnp.bool_
        assert np.all(np.isfinite(obs)) and np.isfinite(reward)
        assert not truncated


# --- actions ----------------------------------------------------------------------------------


def test_action_scaling_maps_the_unit_box_onto_the_env_box_and_clips():
    pendulum = make_env("Pendulum-v1")  # torque box [-2, 2]
    np.testing.assert_array_equal(pendulum.action_low, [-2.0])
    np.testing.assert_array_equal(pendulum.action_high, [2.0])
    for unit, torque in [(-1.0, -2.0), (1.0, 2.0), (0.0, 0.0), (0.25, 0.5), (3.0, 2.0), (-7, -2)]:
        np.testing.assert_allclose(pendulum.scale_action(jnp.array([unit])), [torque])
    point = make_env("control/point-goal")  # velocity box [-0.1, 0.1] per coordinate
    np.testing.assert_allclose(point.scale_action(jnp.array([-1.0, 1.0])), [-0.1, 0.1])
    np.testing.assert_allclose(point.scale_action(jnp.array([0.5, -4.0])), [0.05, -0.1])


def test_step_applies_the_scaled_action():
    pendulum = make_env("Pendulum-v1")
    _, state = pendulum.reset(jax.random.PRNGKey(0))
    for unit, torque in [(0.5, 1.0), (-1.0, -2.0), (9.0, 2.0)]:
        _, after, *_ = pendulum.step(jax.random.PRNGKey(1), state, jnp.array([unit]))
        assert float(after.last_u) == pytest.approx(torque)
    point = make_env("control/point-goal")
    obs, state = point.reset(jax.random.PRNGKey(0))
    obs, *_ = point.step(jax.random.PRNGKey(1), state, jnp.array([1.0, -0.5]))
    np.testing.assert_allclose(obs, [0.1, -0.05], rtol=1e-6)


# --- episode ends -----------------------------------------------------------------------------


def _rollout(env, num_steps):
    """Flags of ``num_steps`` steps with random unit actions, no resets (jitted scan)."""
    key = jax.random.PRNGKey(0)

    def body(state, key):
        action = jax.random.uniform(key, (env.action_size,), minval=-1.0, maxval=1.0)
        _, state, reward, terminated, truncated = env.step(key, state, action)
        return state, (reward, terminated, truncated)

    _, state = env.reset(key)
    return jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(key, num_steps))[1])(state)


def test_pendulum_truncates_exactly_at_its_time_limit():
    env = make_env("Pendulum-v1")
    assert env.max_episode_steps == 200
    _, terminated, truncated = _rollout(env, 200)
    assert not np.any(terminated)
    np.testing.assert_array_equal(np.flatnonzero(truncated), [199])


def test_point_goal_truncates_at_its_family_episode_length():
    env = make_env("control/point-goal")
    assert env.max_episode_steps == make("control/point-goal").episode_length == 100
    _, _, truncated = _rollout(env, 100)
    np.testing.assert_array_equal(np.flatnonzero(truncated), [99])


def test_mountain_car_terminates_at_the_goal_before_the_time_limit():
    env = make_env("MountainCarContinuous-v0")
    _, state = env.reset(jax.random.PRNGKey(0))
    near_goal = state.replace(position=jnp.float32(0.44), velocity=jnp.float32(0.05))
    _, _, reward, terminated, truncated = env.step(
        jax.random.PRNGKey(1), near_goal, jnp.array([1.0])
    )
    assert bool(terminated) and not bool(truncated)
    assert float(reward) > 90.0  # the +100 goal bonus, less the control cost
    _, _, _, terminated, _ = env.step(jax.random.PRNGKey(1), state, jnp.array([1.0]))
    assert not bool(terminated)


# --- jit and vmap -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Pendulum-v1", "Reacher-misc", "control/point-goal"])
@pytest.mark.slow
def test_step_vmaps_over_keys_and_states(name):
    env = make_env(name)
    keys = jax.random.split(jax.random.PRNGKey(3), 5)
    actions = jax.random.uniform(jax.random.PRNGKey(4), (5, env.action_size), minval=-1, maxval=1)
    obs, states = jax.jit(jax.vmap(env.reset))(keys)
    assert obs.shape == (5, env.observation_size)
    batched = jax.jit(jax.vmap(env.step))(keys, states, actions)
    for i in range(5):
        single_obs, single_state = env.reset(keys[i])
        np.testing.assert_allclose(obs[i], single_obs, rtol=1e-6, atol=1e-6)
        single = env.step(keys[i], single_state, actions[i])
        for got, want in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-6)
    if name != "control/point-goal":  # the point always starts at the origin
        assert not np.allclose(obs[0], obs[1])


# --- agreement with gymnax ----------------------------------------------------------------------


@pytest.mark.parametrize("name", GYMNAX_CONTINUOUS)
def test_gymnax_env_equals_gymnax_step_env_with_the_scaled_action(name):
    env = make_env(name)
    reference, params = gymnax.make(name)
    key = jax.random.PRNGKey(11)
    obs, state = env.reset(key)
    ref_obs, ref_state = reference.reset_env(key, params)
    np.testing.assert_array_equal(obs, np.asarray(ref_obs).reshape(-1))
    rng = np.random.default_rng(0)
    for t in range(5):
        unit = jnp.asarray(rng.uniform(-1.3, 1.3, env.action_size), jnp.float32)
        low, high = np.asarray(env.action_low), np.asarray(env.action_high)
        scaled = low + (np.clip(unit, -1, 1) + 1) / 2 * (high - low)
        step_key = jax.random.PRNGKey(100 + t)
        obs, state, reward, terminated, truncated = env.step(step_key, state, unit)
        ref_obs, ref_state, ref_reward, ref_done, _ = reference.step_env(
            step_key, ref_state, jnp.asarray(scaled, jnp.float32), params
        )
        np.testing.assert_allclose(obs, np.asarray(ref_obs).reshape(-1), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(reward, ref_reward, rtol=1e-6, atol=1e-6)
        assert bool(terminated) == bool(ref_done) and not truncated
        for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(ref_state), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


# --- learn2rl families with a fixed task ------------------------------------------------------


def test_family_env_keeps_its_task_across_resets():
    env = make_env("control/point-goal")
    family = make("control/point-goal")
    still = jnp.zeros(2)
    for index, other in [(0, env), (1, make_env("control/point-goal#1"))]:
        goal = np.asarray(family.task(index).goal)
        for seed in range(3):
            # The point starts at the origin; standing still scores minus the goal's distance.
            obs, state = other.reset(jax.random.PRNGKey(seed))
            np.testing.assert_array_equal(obs, [0.0, 0.0])
            for _ in range(2):
                _, state, reward, *_ = other.step(jax.random.PRNGKey(seed), state, still)
                assert float(reward) == pytest.approx(-np.linalg.norm(goal), rel=1e-5)
    goals = [np.asarray(family.task(i).goal) for i in (0, 1)]
    assert not np.allclose(goals[0], goals[1])
