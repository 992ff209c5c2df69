"""The pure-JAX replay buffer: ring writes, uniform draws, sub-trajectory windows against a
pure-Python reference, jit + vmap over a population, argument checks."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.learners.offpolicy import replay
from learn2rl.learners.offpolicy.replay import Transition

OBS, ACT = 2, 1
FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "episode_end")
# Episodes of varied length, several shorter than the windows below; odd ones are truncated.
EPISODE_LENGTHS = (3, 7, 1, 5, 2, 9, 4, 8, 1, 6)


def make_stream(num_steps: int, episode_lengths=EPISODE_LENGTHS, offset: float = 0.0) -> dict:
    """numpy fields of a stream of steps; obs[:, 0] = step + 1 is unique and never 0."""
    ends = np.cumsum(episode_lengths) - 1
    assert ends[-1] >= num_steps - 1, "lengthen the episode list"
    step = np.arange(num_steps, dtype=np.float32)
    episode_end = np.isin(np.arange(num_steps), ends).astype(np.float32)
    episode_index = np.searchsorted(ends, np.arange(num_steps))
    terminated = episode_end * (episode_index % 2 == 0)
    return {
        "obs": np.stack([step + 1, -(step + 1)], axis=1),
        "action": np.sin(step)[:, None].astype(np.float32),
        "reward": step + 0.25 + offset,
        "next_obs": np.stack([step + 1.5, -(step + 1.5)], axis=1),
        "terminated": terminated.astype(np.float32),
        "episode_end": episode_end,
    }


@jax.jit
def _fill(buffer: replay.ReplayBuffer, stream: Transition) -> replay.ReplayBuffer:
    def step(buffer, transition):
        return replay.add(buffer, transition), None

    buffer, _ = jax.lax.scan(step, buffer, stream)
    return buffer


def filled(capacity: int, stream: dict) -> replay.ReplayBuffer:
    return _fill(replay.init(capacity, OBS, ACT), Transition(**stream))


def reference_window(stream: dict, start: int, length: int) -> tuple[dict, np.ndarray]:
    """The window from stream step ``start``: a slow Python loop over the write order."""
    num_steps = len(stream["reward"])
    mask = np.zeros(length, np.float32)
    window = {name: np.zeros((length,) + stream[name].shape[1:], np.float32) for name in FIELDS}
    for t in range(length):
        step = start + t
        if step >= num_steps:  # not written yet: would wrap into the oldest transition
            break
        if t > 0 and stream["episode_end"][step - 1] == 1.0:  # previous step ended the episode
            break
        mask[t] = 1.0
        for name in FIELDS:
            window[name][t] = stream[name][step]
    return window, mask


def test_add_wraps_around_and_overwrites_the_oldest():
    capacity = 5
    stream = make_stream(capacity + 3)
    buffer = replay.init(capacity, OBS, ACT)
    add = jax.jit(replay.add)
    for i in range(capacity + 3):
        buffer = add(buffer, Transition(**{name: stream[name][i] for name in FIELDS}))
        assert int(buffer.size) == min(i + 1, capacity)
    assert int(buffer.size) == capacity
    assert int(buffer.position) == 3
    # Steps 0..2 were overwritten by 5..7 in slots 0..2; slots 3, 4 still hold steps 3, 4.
    np.testing.assert_array_equal(np.asarray(buffer.data.obs[:, 0]) - 1, [5, 6, 7, 3, 4])
    np.testing.assert_array_equal(buffer.data.reward, stream["reward"][[5, 6, 7, 3, 4]])
    np.testing.assert_array_equal(buffer.data.next_obs, stream["next_obs"][[5, 6, 7, 3, 4]])
    np.testing.assert_array_equal(buffer.data.episode_end, stream["episode_end"][[5, 6, 7, 3, 4]])


@pytest.mark.slow
def test_sample_returns_only_filled_slots():
    stream = make_stream(5)
    stream["reward"] = np.array([10.0, 11.0, 12.0, 13.0, 14.0], np.float32)
    buffer = filled(100, stream)
    batch = jax.jit(replay.sample, static_argnums=2)(buffer, jax.random.key(0), 2000)
    assert batch.reward.shape == (2000,) and batch.obs.shape == (2000, OBS)
    rewards = set(np.asarray(batch.reward).tolist())
    assert rewards == {10.0, 11.0, 12.0, 13.0, 14.0}  # only filled slots, and every one of them
    # Fields of one draw come from the same slot.
    np.testing.assert_array_equal(batch.reward, np.asarray(batch.obs[:, 0]) + 9.0)


@pytest.mark.parametrize("num_steps", [10, 16, 22, 37])  # partial, exactly full, wrapped twice
@pytest.mark.slow
def test_sample_sequences_matches_python_reference(num_steps):
    capacity, length, batch_size = 16, 6, 512
    stream = make_stream(num_steps)
    buffer = filled(capacity, stream)
    stored = min(num_steps, capacity)
    draw = jax.jit(replay.sample_sequences, static_argnums=(2, 3))
    starts_seen = set()
    for seed in range(2):
        window, mask = draw(buffer, jax.random.key(seed), batch_size, length)
        window, mask = jax.tree.map(np.asarray, window), np.asarray(mask)
        assert mask.shape == (batch_size, length) and mask.dtype == jnp.float32
        assert window.obs.shape == (batch_size, length, OBS)
        assert window.reward.shape == (batch_size, length)
        for b in range(batch_size):
            start = int(window.obs[b, 0, 0]) - 1  # obs[0] = step + 1 names the start slot
            assert num_steps - stored <= start < num_steps, "start outside the filled slots"
            starts_seen.add(start)
            expected, expected_mask = reference_window(stream, start, length)
            np.testing.assert_array_equal(mask[b], expected_mask)
            for name in FIELDS:
                np.testing.assert_array_equal(getattr(window, name)[b], expected[name], name)
    # Starts are drawn over every filled slot (1024 uniform draws over <= 16 slots).
    assert starts_seen == set(range(num_steps - stored, num_steps))


@pytest.mark.slow
def test_windows_never_cross_episode_ends_or_the_write_position():
    capacity, length, num_steps = 16, 8, 45
    stream = make_stream(num_steps, episode_lengths=(2, 11, 1, 3, 9, 1, 10, 13))
    buffer = filled(capacity, stream)
    assert int(buffer.position) == num_steps % capacity
    window, mask = replay.sample_sequences(buffer, jax.random.key(3), 400, length)
    window = jax.tree.map(np.asarray, window)
    mask = np.asarray(mask)
    steps = window.obs[:, :, 0] - 1
    crossed_episode = crossed_position = 0
    for b in range(mask.shape[0]):
        valid = int(mask[b].sum())
        assert mask[b, 0] == 1.0
        np.testing.assert_array_equal(mask[b], [1.0] * valid + [0.0] * (length - valid))
        # Inside the mask: consecutive steps (a jump back to the oldest would break this), and no
        # episode end before the last valid step.
        np.testing.assert_array_equal(np.diff(steps[b, :valid]), 1.0)
        assert window.episode_end[b, : valid - 1].sum() == 0.0
        if valid < length:  # the window stops exactly at an episode end or at the newest step
            last = steps[b, valid - 1]
            at_end = window.episode_end[b, valid - 1] == 1.0
            at_newest = last == num_steps - 1
            assert at_end or at_newest
            crossed_episode += bool(at_end)
            crossed_position += bool(at_newest and not at_end)
        for name in FIELDS:  # masked entries are zero
            field = getattr(window, name)[b, valid:]
            assert not field.any(), name
    assert crossed_episode > 0 and crossed_position > 0  # both cuts were exercised


@pytest.mark.slow
def test_single_transition_and_empty_buffer():
    buffer = filled(8, make_stream(1))
    window, mask = replay.sample_sequences(buffer, jax.random.key(0), 3, 4)
    np.testing.assert_array_equal(mask, [[1.0, 0.0, 0.0, 0.0]] * 3)
    np.testing.assert_array_equal(window.obs[:, 0, 0], [1.0, 1.0, 1.0])
    assert not np.asarray(window.obs[:, 1:]).any()
    _, mask = replay.sample_sequences(replay.init(8, OBS, ACT), jax.random.key(0), 3, 4)
    assert not np.asarray(mask).any()


@pytest.mark.slow
def test_jit_and_vmap_over_a_population():
    members, capacity, num_steps = 3, 8, 11
    population = jax.vmap(lambda _: replay.init(capacity, OBS, ACT))(jnp.arange(members))
    # Member m: its own reward offset and episode structure.
    streams = [
        make_stream(num_steps, episode_lengths=(m + 2,) * num_steps, offset=100.0 * m)
        for m in range(members)
    ]
    stacked = {name: np.stack([s[name] for s in streams]) for name in FIELDS}
    add = jax.jit(jax.vmap(replay.add))
    for i in range(num_steps):
        population = add(population, Transition(**{n: stacked[n][:, i] for n in FIELDS}))
    np.testing.assert_array_equal(population.size, [capacity] * members)
    np.testing.assert_array_equal(population.position, [num_steps % capacity] * members)

    keys = jax.random.split(jax.random.key(7), members)
    draw = jax.jit(
        jax.vmap(replay.sample_sequences, in_axes=(0, 0, None, None)), static_argnums=(2, 3)
    )
    windows, masks = draw(population, keys, 64, 5)
    assert masks.shape == (members, 64, 5) and windows.obs.shape == (members, 64, 5, OBS)
    sample = jax.jit(jax.vmap(functools.partial(replay.sample, batch_size=32)))
    singles = sample(population, keys)
    for m in range(members):
        member = jax.tree.map(lambda x, m=m: x[m], population)
        window, mask = replay.sample_sequences(member, keys[m], 64, 5)
        np.testing.assert_array_equal(masks[m], mask)
        for name in FIELDS:
            np.testing.assert_array_equal(getattr(windows, name)[m], getattr(window, name))
        valid = np.asarray(mask) == 1.0
        np.testing.assert_array_equal(np.asarray(windows.reward[m])[valid] // 100, m)
        # Episodes of m + 2 steps: no window is longer than that.
        assert np.asarray(mask).sum(axis=1).max() == m + 2
        np.testing.assert_array_equal(np.asarray(singles.reward[m]) // 100, m)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda b, k: replay.init(0, OBS, ACT), "capacity"),
        (lambda b, k: replay.init(4.0, OBS, ACT), "capacity"),
        (lambda b, k: replay.init(True, OBS, ACT), "capacity"),
        (lambda b, k: replay.init(4, -1, ACT), "observation_size"),
        (lambda b, k: replay.init(4, OBS, 0), "action_size"),
        (lambda b, k: replay.sample(b, k, 0), "batch_size"),
        (lambda b, k: jax.jit(replay.sample)(b, k, 4), "batch_size"),
        (lambda b, k: replay.sample_sequences(b, k, -2, 3), "batch_size"),
        (lambda b, k: replay.sample_sequences(b, k, 2, 0), "length"),
        (lambda b, k: replay.sample_sequences(b, k, 2, 9), "length"),
        (
            lambda b, k: replay.add(
                b,
                Transition(**{n: v[0] for n, v in make_stream(1).items()}).replace(obs=np.zeros(3)),
            ),
            "transition.obs",
        ),
    ],
)
def test_bad_arguments_raise_naming_the_field(call, field):
    buffer = replay.init(8, OBS, ACT)
    with pytest.raises(Learn2RLError, match=field):
        call(buffer, jax.random.key(0))
