"""A fixed-capacity ring replay buffer in pure JAX, for off-policy learners (TD3, DDPG, MetaGenRL).

Experience replay (Lin 1992, "Self-improving reactive agents based on reinforcement learning,
planning and teaching"; Mnih et al. 2015, DQN) stores past transitions and trains on uniform
draws of them. TD3 (Fujimoto et al. 2018, arXiv 1802.09477) and DDPG (Lillicrap et al. 2016,
arXiv 1509.02971) sample single transitions (``sample``); MetaGenRL (Kirsch et al. 2020, arXiv
1910.04098) runs its LSTM objective function over sub-trajectories (``sample_sequences``).

The buffer is a pytree (``flax.struct``), so it lives inside ``jit``, ``vmap`` and ``lax.scan``: a
population of buffers is ``jax.vmap(lambda _: init(C, O, A))(jnp.arange(n))``, filled with
``jax.vmap(add)``. Sizes that fix shapes (capacity, batch size, window length) are Python ints,
checked when the function is called (or traced) and static under ``jit`` (close over them or use
``functools.partial``; under ``vmap`` pass them with ``in_axes=None``).
"""

from __future__ import annotations

import operator

import jax
import jax.numpy as jnp
from flax import struct

from learn2rl.errors import Learn2RLError


@struct.dataclass
class Transition:
    """One step of experience; every field float32, leading axes ``[...]`` shared by all fields."""

    obs: jax.Array  # [..., O]  observation the action was chosen on
    action: jax.Array  # [..., A]  action taken, normalised to [-1, 1] by the caller
    reward: jax.Array  # [...]     reward after the action
    next_obs: jax.Array  # [..., O]  the true next observation, also at episode ends
    terminated: jax.Array  # [...]   1.0 where the episode ended in a terminal state (no bootstrap)
    episode_end: jax.Array  # [...]  1.0 where the episode ended for any reason (or truncated)


@struct.dataclass
class ReplayBuffer:
    """Ring buffer: ``data`` has leading axis ``capacity``; slots ``[0, size)`` are filled."""

    data: Transition  # leading axis = capacity
    position: jax.Array  # int32 [], next slot to write
    size: jax.Array  # int32 [], number of filled slots (<= capacity)


def _capacity(buffer: ReplayBuffer) -> int:
    """Number of slots of one (unbatched) buffer: the static leading axis of ``data``."""
    return buffer.data.reward.shape[0]


def _positive_int(name: str, value: object) -> int:
    """``value`` as a Python int if it is a positive integer, else a one-line Learn2RLError."""
    if isinstance(value, bool):
        raise Learn2RLError(f"{name} must be a positive integer, got {value!r}")
    try:
        as_int = operator.index(value)  # accepts int and numpy integers, refuses floats
    except TypeError:
        raise Learn2RLError(
            f"{name} must be a positive Python integer (static under jit), got {value!r}"
        ) from None
    if as_int <= 0:
        raise Learn2RLError(f"{name} must be a positive integer, got {value!r}")
    return as_int


def init(capacity: int, observation_size: int, action_size: int) -> ReplayBuffer:
    """An empty buffer of ``capacity`` zeroed slots for O-dim observations and A-dim actions."""
    capacity = _positive_int("capacity", capacity)
    observation_size = _positive_int("observation_size", observation_size)
    action_size = _positive_int("action_size", action_size)
    zeros = jnp.zeros((capacity,), jnp.float32)
    data = Transition(
        obs=jnp.zeros((capacity, observation_size), jnp.float32),
        action=jnp.zeros((capacity, action_size), jnp.float32),
        reward=zeros,
        next_obs=jnp.zeros((capacity, observation_size), jnp.float32),
        terminated=zeros,
        episode_end=zeros,
    )
    return ReplayBuffer(data=data, position=jnp.int32(0), size=jnp.int32(0))


def add(buffer: ReplayBuffer, transition: Transition) -> ReplayBuffer:
    """Write one unbatched transition at ``position``; when full this overwrites the oldest one.

    ``transition`` fields have the shapes of one slot (obs [O], action [A], reward [] ...); a
    field of another shape raises Learn2RLError naming it (checked at trace time).
    """
    capacity = _capacity(buffer)

    def write(name: str, slots: jax.Array, value: jax.Array) -> jax.Array:
        value = jnp.asarray(value, slots.dtype)
        if value.shape != slots.shape[1:]:
            raise Learn2RLError(
                f"transition.{name} must have shape {slots.shape[1:]} (one unbatched step), "
                f"got {value.shape}"
            )
        return slots.at[buffer.position].set(value)

    data = Transition(
        **{
            name: write(name, getattr(buffer.data, name), getattr(transition, name))
            for name in ("obs", "action", "reward", "next_obs", "terminated", "episode_end")
        }
    )
    return ReplayBuffer(
        data=data,
        position=(buffer.position + 1) % capacity,
        size=jnp.minimum(buffer.size + 1, capacity),
    )


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Transition:
    """``batch_size`` transitions drawn uniformly (with replacement) over the filled slots.

    Returns a Transition with leading axis [B]. On an empty buffer it returns slot 0 (zeros).
    """
    batch_size = _positive_int("batch_size", batch_size)
    # Filled slots are always [0, size): the ring only starts overwriting once it is full.
    slots = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda field: field[slots], buffer.data)


def sample_sequences(
    buffer: ReplayBuffer, key: jax.Array, batch_size: int, length: int
) -> tuple[Transition, jax.Array]:
    """``batch_size`` windows of ``length`` steps and their mask: ``([B, T, ...], [B, T])``.

    For each b a start slot is drawn uniformly over the filled slots; the window is the ``length``
    slots from it onwards in write order, slot ``(start + t) % capacity`` at step t. The float32
    mask[b, t] is 1 while both hold:

    - step t is still in the start slot's episode: no ``episode_end`` at any step strictly before
      t of the window (the step that ends the episode is itself included);
    - step t was written after the start slot: the window never runs past the newest transition
      into the oldest one (it never crosses the write position).

    The mask is therefore 1 on a prefix of the window, and mask[:, 0] is 1 for a non-empty buffer
    (an empty buffer gives an all-zero mask). Entries where the mask is 0 are zeroed in every
    field. A window may begin mid-episode. ``length`` must not exceed the capacity.
    """
    batch_size = _positive_int("batch_size", batch_size)
    length = _positive_int("length", length)
    capacity = _capacity(buffer)
    if length > capacity:
        raise Learn2RLError(f"length must be <= the buffer capacity ({capacity}), got {length}")

    size = buffer.size
    starts = jax.random.randint(key, (batch_size,), 0, jnp.maximum(size, 1))
    # Age of the start in write order (0 = oldest filled slot): steps t < size - age were
    # written after it; later steps would wrap into the oldest transitions.
    oldest = (buffer.position - size) % capacity
    age = (starts - oldest) % capacity
    steps = jnp.arange(length)
    slots = (starts[:, None] + steps[None, :]) % capacity  # [B, T]
    written = steps[None, :] < (size - age)[:, None]

    window = jax.tree.map(lambda field: field[slots], buffer.data)
    ended = window.episode_end > 0.5
    # Episode ends strictly before step t: an exclusive running count along the window.
    ends_before = jnp.cumsum(ended, axis=1) - ended
    mask = written & (ends_before == 0)

    def zero_outside(field: jax.Array) -> jax.Array:
        mask_b = mask.reshape(mask.shape + (1,) * (field.ndim - 2))
        return jnp.where(mask_b, field, jnp.zeros_like(field))

    return jax.tree.map(zero_outside, window), mask.astype(jnp.float32)
