"""The direction-conditioned point mass (tasks/control/point_dir.py) and the direction draws of the
direction families: both sides of every axis come up (the public DirHopper of openai/EPG always
draws -1; ours must not), the out-of-distribution split keeps train and test on opposite sides,
and the dynamics and reward match a numpy step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.tasks import make


def test_random_directions_are_unit_vectors_on_both_sides_of_both_axes():
    family = make("control/point-dir")
    for split in ("train", "test"):
        direction = np.asarray(family.tasks(4000, split).direction)
        np.testing.assert_allclose(np.linalg.norm(direction, axis=1), 1.0, atol=1e-5)
        for axis in (0, 1):
            assert 0.45 < np.mean(direction[:, axis] > 0) < 0.55, (split, axis)
    sampled = jax.vmap(lambda k: family.sample(k, "train"))(
        jax.random.split(jax.random.PRNGKey(0), 4000)
    )
    assert 0.45 < np.mean(np.asarray(sampled.direction)[:, 0] > 0) < 0.55


@pytest.mark.slow
def test_the_half_split_trains_on_the_right_and_tests_on_the_left():
    family = make("control/point-dir[split=half]")
    train = np.asarray(family.tasks(2000, "train").direction)
    test = np.asarray(family.tasks(2000, "test").direction)
    assert np.all(train[:, 0] > 0) and np.all(test[:, 0] < 0)
    for part in (train, test):  # still both signs of y
        assert 0.4 < np.mean(part[:, 1] > 0) < 0.6
    sampled = jax.vmap(lambda k: family.sample(k, "train"))(
        jax.random.split(jax.random.PRNGKey(1), 500)
    )
    assert np.all(np.asarray(sampled.direction)[:, 0] > 0)


@pytest.mark.slow
def test_cheetah_dir_draws_forward_and_backward_each_half_the_time():
    family = make("control/cheetah-dir")
    target = np.asarray(family.tasks(4000, "train").target)
    assert set(np.unique(target)) == {-1.0, 1.0}
    assert 0.47 < np.mean(target > 0) < 0.53
    sampled = jax.vmap(lambda k: family.sample(k, "train"))(
        jax.random.split(jax.random.PRNGKey(2), 4000)
    )
    assert 0.47 < np.mean(np.asarray(sampled.target) > 0) < 0.53


def test_a_step_moves_by_the_clipped_velocity_and_pays_its_projection():
    family = make("control/point-dir")
    task = family.task(3)
    obs, state = family.reset(jax.random.PRNGKey(0), task)
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    action = jnp.array([2.0, -0.5], jnp.float32)
    obs, state, reward, terminated, truncated, _ = family.step(
        jax.random.PRNGKey(1), state, action, task
    )
    velocity = np.array([1.0, -0.5])
    np.testing.assert_allclose(obs, 0.1 * velocity, rtol=1e-6)
    d = np.asarray(task.direction)
    expected = velocity @ d - 0.05 * np.sum(velocity**2)
    np.testing.assert_allclose(reward, expected, rtol=1e-5)
    assert not bool(terminated) and not bool(truncated)


def test_the_best_return_is_the_return_of_the_best_constant_velocity():
    family = make("control/point-dir")
    task = family.task(7)
    best = np.clip(np.asarray(task.direction) / 0.1, -1, 1)
    obs, state = family.reset(jax.random.PRNGKey(0), task)
    total = 0.0
    for t in range(family.episode_length):
        obs, state, reward, _, truncated, _ = family.step(
            jax.random.PRNGKey(t), state, jnp.asarray(best), task
        )
        total += float(reward)
    assert bool(truncated)
    np.testing.assert_allclose(total, float(family.best_return(task)), rtol=1e-5)


@pytest.mark.parametrize("split", ["random", "half"])
def test_each_declared_symmetry_keeps_the_rewards_and_the_training_prior(split):
    family = make(f"control/point-dir[split={split}]")
    maps = family.symmetries()
    assert len(maps) == (8 if split == "random" else 2)
    rng = np.random.default_rng(0)
    directions = np.asarray(family.tasks(500, "train").direction)
    for obs_map, action_map in maps:
        np.testing.assert_array_equal(obs_map, action_map)  # position and velocity alike
        np.testing.assert_allclose(action_map @ action_map.T, np.eye(2))  # orthogonal
        # A step and its mirror image (position, action and direction mapped) pay the same.
        for _ in range(5):
            d = directions[rng.integers(len(directions))]
            action = rng.normal(scale=2.0, size=2).astype(np.float32)
            rewards = []
            for g in (np.eye(2, dtype=np.float32), action_map):
                task = family.task(0).replace(direction=jnp.asarray(g @ d, jnp.float32))
                _, state = family.reset(jax.random.PRNGKey(0), task)
                position, _, reward, *_ = family.step(
                    jax.random.PRNGKey(1), state, jnp.asarray(g @ action), task
                )
                rewards.append((float(reward), np.asarray(position)))
            np.testing.assert_allclose(rewards[1][0], rewards[0][0], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(rewards[1][1], obs_map @ rewards[0][1], atol=1e-6)
        # The mapped training directions are training directions (the right half stays right).
        if split == "half":
            assert np.all((directions @ action_map.T)[:, 0] > 0)
    # The maps form a group: closed under composition.
    keys = {m.tobytes() for _, m in maps}
    for _, a in maps:
        for _, b in maps:
            assert (a @ b).astype(np.float32).tobytes() in keys


@pytest.mark.parametrize(
    "options,message",
    [
        ("split=left", "split must be one of"),
        ("ctrl_cost=-1", "ctrl_cost must be a number >= 0"),
        ("episode_length=0", "episode_length must be a positive integer"),
    ],
)
def test_bad_options_give_one_line_errors(options, message):
    with pytest.raises(Learn2RLError) as err:
        make(f"control/point-dir[{options}]")
    assert message in str(err.value) and "\n" not in str(err.value)
