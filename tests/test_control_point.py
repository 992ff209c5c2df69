"""2-D point navigation (control/point-goal): reference, jit, registry, errors, trial layout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.tasks import make
from learn2rl.tasks.control.point import PointNavigation
from learn2rl.trial import Trial
from tests.reference.point_reference import run_episode


def _jax_episode(family, params, actions, step):
    obs, state = family.reset_env(jax.random.PRNGKey(0), params)
    out = []
    for action in actions:
        obs, state, reward, done, _ = step(
            jax.random.PRNGKey(1), state, jnp.asarray(action), params
        )
        out.append((np.asarray(obs), float(reward), bool(done)))
        if done:
            break
    return out


@pytest.mark.parametrize("seed", range(4))
def test_point_matches_the_numpy_reference(seed):
    family = make("control/point-goal")
    params = family.task(seed)
    rng = np.random.default_rng(seed)
    # Large actions exercise the clip; towards-the-goal actions exercise termination.
    actions = rng.normal(scale=0.15, size=(30, 2)).astype(np.float32)
    goal = np.asarray(params.goal)
    actions[10:] = np.clip(goal - np.clip(actions[:10], -0.1, 0.1).sum(0), -0.1, 0.1) / 2
    positions, rewards, dones = run_episode(goal, actions)
    got = _jax_episode(family, params, actions, family.step_env)
    assert len(got) == len(rewards)
    for (obs, reward, done), position, want_reward, want_done in zip(
        got, positions, rewards, dones, strict=True
    ):
        np.testing.assert_allclose(obs, position, atol=1e-5)
        assert reward == pytest.approx(want_reward, abs=1e-5)
        assert done == want_done


def test_point_jit_and_no_jit_agree():
    family = make("control/point-goal")
    params = family.task(7)
    actions = np.random.default_rng(0).uniform(-0.2, 0.2, size=(20, 2)).astype(np.float32)
    eager = _jax_episode(family, params, actions, family.step_env)
    jitted = _jax_episode(family, params, actions, jax.jit(family.step_env))
    # XLA may fuse the distance differently under jit: equal to float32 rounding.
    for (o1, r1, d1), (o2, r2, d2) in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(o1, o2, rtol=1e-6, atol=1e-7)
        assert r1 == pytest.approx(r2, rel=1e-6) and d1 == d2


@pytest.mark.slow
def test_point_tasks_are_goals_in_the_square_and_vmap():
    family = make("control/point-goal")
    tasks = family.tasks(500, "test")
    goals = np.asarray(tasks.goal)
    assert goals.shape == (500, 2)
    assert np.all(np.abs(goals) <= 0.5) and goals.std() > 0.2
    obs, states = jax.vmap(family.reset_env)(jax.random.split(jax.random.PRNGKey(0), 500), tasks)
    obs, states, reward, done, _ = jax.vmap(family.step_env)(
        jax.random.split(jax.random.PRNGKey(1), 500), states, jnp.full((500, 2), 0.05), tasks
    )
    np.testing.assert_allclose(obs, 0.05)
    np.testing.assert_allclose(reward, -np.linalg.norm(goals - 0.05, axis=1), rtol=1e-5)
    # Train and test goals differ.
    train = np.asarray(family.tasks(50, "train").goal)
    assert not np.any(np.all(np.isclose(train[:, None], goals[None]), axis=-1))


def test_trial_carries_continuous_previous_actions():
    family = make("control/point-goal", episode_length=3)
    trial = Trial(family, 2)
    obs, state = trial.reset(jax.random.PRNGKey(0), family.task(0))
    np.testing.assert_array_equal(obs.prev_action, np.zeros(2))
    obs, state, *_ = trial.step(
        jax.random.PRNGKey(1), state, jnp.array([0.3, -0.02]), family.task(0)
    )
    np.testing.assert_allclose(obs.prev_action, [0.3, -0.02])
    assert obs.prev_action.dtype == jnp.float32


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"goal_range": -0.5}, "goal_range"),
        ({"max_step": 0}, "max_step"),
        ({"episode_length": 0}, "episode_length"),
        ({"episode_length": 2.5}, "episode_length"),
        ({"goal_tolerance": float("nan")}, "goal_tolerance"),
    ],
)
def test_point_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(Learn2RLError, match=message):
        PointNavigation(**kwargs)


def test_continuous_families_have_no_num_actions():
    with pytest.raises(Learn2RLError, match="continuous actions"):
        _ = make("control/point-goal").num_actions
