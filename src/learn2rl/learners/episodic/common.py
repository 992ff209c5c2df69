"""What the episodic-control learners (MFEC, NEC) and their DQN baseline share: config checks,
the epsilon-greedy policy and its schedule, the embedding torso, a replay ring of arbitrary
pytrees, per-action dictionaries and the evaluation of a trained agent on fresh episodes.

The environment is ``metagradient.DiscreteEnv``: one discrete-action gymnax environment at its
default parameters, observations flattened, reset automatically at episode ends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.learners.base import (
    check_non_negative,
    check_positive_ints,
    check_seed,
    check_unit_interval,
)
from learn2rl.learners.metagradient import GYMNAX_DISCRETE, DiscreteEnv
from learn2rl.ops import dnd
from learn2rl.types import Agent, AgentKind


# --- config checks --------------------------------------------------------------------------
def check_env(config: Any) -> None:
    if config.env not in GYMNAX_DISCRETE:
        raise Learn2RLError(
            f"config.env must be a discrete-action gymnax environment, got {config.env!r}; "
            f"known: {', '.join(GYMNAX_DISCRETE)}"
        )


def check_common(config: Any) -> None:
    """The checks every episodic learner's config makes: environment, loop sizes, the epsilon
    schedule, the discount and the seed."""
    check_env(config)
    check_positive_ints(config, "num_updates", "updates_per_chunk", "num_envs", "rollout_length")
    check_unit_interval(config, "epsilon_start", "epsilon_end", "discount")
    check_non_negative(config, "epsilon_decay_steps")
    if not isinstance(config.epsilon_decay_steps, int) or isinstance(
        config.epsilon_decay_steps, bool
    ):
        raise Learn2RLError(
            f"config.epsilon_decay_steps must be a whole number of environment steps, "
            f"got {config.epsilon_decay_steps!r}"
        )
    check_seed(config)


def check_bool(config: Any, *names: str) -> None:
    for name in names:
        if not isinstance(getattr(config, name), bool):
            raise Learn2RLError(
                f"config.{name} must be true or false, got {getattr(config, name)!r}"
            )


def check_at_most(config: Any, name: str, limit_name: str) -> None:
    value, limit = getattr(config, name), getattr(config, limit_name)
    if value > limit:
        raise Learn2RLError(
            f"config.{name} ({value}) must not exceed config.{limit_name} ({limit})"
        )


# --- acting ---------------------------------------------------------------------------------
def linear_epsilon(step: jax.Array, start: float, end: float, decay_steps: int) -> jax.Array:
    """Epsilon annealed linearly from ``start`` to ``end`` over the first ``decay_steps``
    environment steps (Mnih et al. 2015), then held."""
    if decay_steps == 0:
        return jnp.float32(end)
    fraction = jnp.clip(step / decay_steps, 0.0, 1.0)
    return jnp.float32(start + (end - start) * fraction)


def epsilon_greedy(key: jax.Array, q: jax.Array, epsilon: jax.Array) -> jax.Array:
    """An action for one state: uniformly random with probability ``epsilon``, else a greedy
    one, ties broken uniformly at random (an empty memory values every action the same)."""
    k_explore, k_random, k_tie = jax.random.split(key, 3)
    num_actions = q.shape[-1]
    tie_noise = jax.random.uniform(k_tie, q.shape)
    greedy = jnp.argmax(jnp.where(q >= jnp.max(q), tie_noise, -1.0))
    random = jax.random.randint(k_random, (), 0, num_actions)
    explore = jax.random.uniform(k_explore) < epsilon
    return jnp.where(explore, random, greedy).astype(jnp.int32)


class Torso(nn.Module):
    """The embedding network: ReLU layers of ``hidden_sizes`` on the flattened observation, then
    a linear layer of ``key_size`` (NEC's key ``h``; DQN puts its Q head on the same torso)."""

    hidden_sizes: tuple[int, ...]
    key_size: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size)(x))
        return nn.Dense(self.key_size)(x)


# --- per-action dictionaries ----------------------------------------------------------------
def init_memories(num_actions: int, capacity: int, key_size: int) -> dnd.DND:
    """One empty dictionary per action, stacked along a leading action axis."""
    memory = dnd.init(capacity, key_size)
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (num_actions, *x.shape)), memory)


def lookup_actions(
    memories: dnd.DND, query: jax.Array, num_neighbours: int, delta: float, kernel: str
) -> dnd.Lookup:
    """One query against every action's dictionary: a ``Lookup`` with a leading action axis."""
    return jax.vmap(lambda m: dnd.lookup(m, query, num_neighbours, delta, kernel))(memories)


def lookup_actions_batch(
    memories: dnd.DND, queries: jax.Array, num_neighbours: int, delta: float, kernel: str
) -> dnd.Lookup:
    """A batch of queries ``[B, P]`` against every action's dictionary (ranked by one matrix
    product per action): a ``Lookup`` with leading axes ``[B, A]``."""
    out = jax.vmap(lambda m: dnd.lookup_batch(m, queries, num_neighbours, delta, kernel))(memories)
    return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), out)


def write_memories(
    memories: dnd.DND,
    actions: jax.Array,
    keys: jax.Array,
    values: jax.Array,
    mask: jax.Array,
    rule: str,
    alpha: float,
) -> dnd.DND:
    """Writes ``(keys[i], values[i])`` into the dictionary of ``actions[i]``, in order, skipping
    entries where ``mask`` is False."""
    return dnd.write_batch(memories, keys, values, mask, rule, alpha, tables=actions)


# --- replay ---------------------------------------------------------------------------------
@struct.dataclass
class Ring:
    """A ring buffer of a pytree of items (leading axis ``capacity``); slots ``[0, size)`` are
    filled, ``position`` is the next slot written."""

    data: Any
    position: jax.Array
    size: jax.Array


def ring_init(example: Any, capacity: int) -> Ring:
    data = jax.tree.map(
        lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example
    )
    return Ring(data=data, position=jnp.int32(0), size=jnp.int32(0))


def ring_add(ring: Ring, items: Any, mask: jax.Array) -> Ring:
    """Append the items of a batch (leading axis B) where ``mask`` holds, in batch order; a full
    ring overwrites its oldest items."""
    capacity = jax.tree.leaves(ring.data)[0].shape[0]
    mask = mask.astype(jnp.int32)
    offsets = jnp.cumsum(mask) - mask
    slots = jnp.where(mask > 0, (ring.position + offsets) % capacity, capacity)  # dropped
    data = jax.tree.map(lambda d, x: d.at[slots].set(x, mode="drop"), ring.data, items)
    count = jnp.sum(mask)
    return Ring(
        data=data,
        position=(ring.position + count) % capacity,
        size=jnp.minimum(ring.size + count, capacity),
    )


def ring_sample(ring: Ring, key: jax.Array, batch_size: int) -> Any:
    """``batch_size`` items drawn uniformly with replacement from the filled slots."""
    slots = jax.random.randint(key, (batch_size,), 0, jnp.maximum(ring.size, 1))
    return jax.tree.map(lambda d: d[slots], ring.data)


# --- episode bookkeeping and evaluation -----------------------------------------------------
def track_returns(running, reward, done, total, count):
    """Adds a step's rewards to the running episode returns; the returns of episodes that ended
    go into ``(total, count)`` and their running return restarts at 0."""
    running = running + reward
    total = total + jnp.sum(jnp.where(done, running, 0.0))
    count = count + jnp.sum(done)
    return jnp.where(done, 0.0, running), total, count


def episode_returns(
    env: DiscreteEnv,
    act: Callable[[Any, jax.Array, jax.Array], jax.Array],
    params: Any,
    num_episodes: int,
    key: jax.Array,
) -> jax.Array:
    """Returns of ``num_episodes`` fresh episodes with ``act(params, obs [D], key) -> action``,
    each run to its end or the time limit; the memories are read, never written."""

    def run(params, key):
        k_reset, k_steps = jax.random.split(key)
        obs, env_state = jax.vmap(env.reset)(jax.random.split(k_reset, num_episodes))

        def body(carry):
            t, env_state, obs, returns, finished = carry
            k_act, k_env = jax.random.split(jax.random.fold_in(k_steps, t))
            actions = jax.vmap(lambda o, k: act(params, o, k))(
                obs, jax.random.split(k_act, num_episodes)
            )
            obs, env_state, reward, terminated, truncated, _ = jax.vmap(env.step)(
                jax.random.split(k_env, num_episodes), env_state, actions
            )
            returns = returns + jnp.where(finished, 0.0, reward)
            return t + 1, env_state, obs, returns, finished | terminated | truncated

        def running(carry):
            t, *_, finished = carry
            return (t < env.max_episode_steps) & ~jnp.all(finished)

        zeros = jnp.zeros((num_episodes,), jnp.float32)
        carry = (jnp.int32(0), env_state, obs, zeros, jnp.zeros((num_episodes,), bool))
        return jax.lax.while_loop(running, body, carry)[3]

    return jax.jit(run)(params, key)


def trial_agent(
    kind_key: tuple, act: Callable, observation_size: int, params: Any, name: str
) -> Agent:
    """The trained learner as an ``Agent`` acting on ``TrialObs.obs`` (this environment's
    observation, flattened), bound to ``params``."""

    def build(p):
        def step(key, agent_state, trial_obs):
            obs = jnp.asarray(trial_obs.obs, jnp.float32).reshape(observation_size)
            return act(p, obs, key), agent_state

        return Agent(name, lambda key, task: (), step)

    return AgentKind(kind_key, build).bind(params)
