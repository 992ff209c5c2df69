"""Model-free episodic control (MFEC).

Blundell et al. 2016, "Model-Free Episodic Control" (arXiv 1606.04460). One agent on one
discrete-action gymnax environment keeps, per action ``a``, a table ``Q_EC(., a)`` of states it
has seen and the best return that followed:

- states are embedded by a fixed random projection ``phi(o) = A o``, ``A`` Gaussian with
  ``key_size`` rows (the paper's random-projection representation, dimension 64);
- the value of a state in the table is its stored value; of a state not in it, the mean of the
  stored values of its ``num_neighbours`` nearest stored states (the paper: k = 11);
- actions are epsilon-greedy on these values;
- at the end of an episode every step's discounted return ``R_t`` is written:
  ``Q_EC(s_t, a_t) <- max(Q_EC(s_t, a_t), R_t)`` where ``s_t`` is stored, else ``(s_t, R_t)`` is
  appended, the least recently updated entry giving way when the table is full.

The tables are ``ops.dnd`` dictionaries used with ``rule="max"`` and ``kernel="mean"``. An update
is ``rollout_length`` steps of each of ``num_envs`` environments (there is no gradient step; the
update only sets how often metrics are logged); episodes are written as they end, environment 0
first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from learn2rl.learners.base import ConfigMixin, SeedsOverDevices, check_positive_ints, scanned_chunk
from learn2rl.learners.episodic import common
from learn2rl.ops import dnd
from learn2rl.ops.returns import discounted_returns


@dataclass(frozen=True)
class Config(ConfigMixin):
    """MFEC settings. Defaults: Breakout-MinAtar, one environment, 200k environment steps."""

    learner = "mfec"

    env: str = "Breakout-MinAtar"
    """A gymnax environment with discrete actions (``metagradient.GYMNAX_DISCRETE``); observations
    are flattened before the projection."""
    num_updates: int = 4000
    """Updates in a run (each ``num_envs * rollout_length`` environment steps)."""
    updates_per_chunk: int = 200
    """Updates per jitted chunk."""
    num_envs: int = 1
    """Parallel environments sharing the tables (the paper: one)."""
    rollout_length: int = 50
    """Steps of each environment per update (MFEC has no gradient step; this sets the logging
    granularity)."""
    key_size: int = 64
    """Dimension of the random projection (the paper: 64)."""
    capacity: int = 50_000
    """Entries per action's table (the paper: 10^6; exact search costs O(capacity) per step)."""
    num_neighbours: int = 11
    """k of the k-nearest-neighbour estimate of an unseen state (the paper: 11)."""
    discount: float = 1.0
    """Discount of the Monte-Carlo returns written at episode ends (the paper's Atari runs: 1)."""
    epsilon_start: float = 1.0
    """Exploration rate at the first step."""
    epsilon_end: float = 0.005
    """Exploration rate after the decay (the paper: 0.005)."""
    epsilon_decay_steps: int = 20_000
    """Environment steps (summed over environments) of the linear decay; 0: ``epsilon_end``."""
    seed: int = 0
    """Random seed; the same config and seed give the same numbers."""

    def __post_init__(self):
        common.check_common(self)
        check_positive_ints(self, "key_size", "capacity", "num_neighbours")
        common.check_at_most(self, "num_neighbours", "capacity")


@struct.dataclass
class TrainState:
    projection: jax.Array  # [D, P] fixed Gaussian projection
    memories: dnd.DND  # one table per action, stacked: keys [A, C, P]
    env_state: Any  # [E]
    obs: jax.Array  # [E, D]
    episode_keys: jax.Array  # [E, L, P] projected states of the current episodes
    episode_actions: jax.Array  # [E, L]
    episode_rewards: jax.Array  # [E, L]
    episode_length: jax.Array  # [E]
    running_return: jax.Array  # [E]
    last_return: jax.Array  # mean return of the episodes that ended in the latest update
    env_steps: jax.Array  # environment steps so far, summed over environments
    update: jax.Array
    key: jax.Array

    @property
    def params(self) -> dict[str, Any]:
        """What the agent acts with: the projection and the tables."""
        return {"projection": self.projection, "memories": self.memories}


class MFEC(SeedsOverDevices):
    """Model-free episodic control on one discrete-action gymnax environment."""

    progress_metric = "episode_return"

    def __init__(self, config: Config, devices: list | None = None):
        self.config = config
        self.env = common.DiscreteEnv(config.env)
        self.num_actions = self.env.num_actions
        self.devices = list(devices or jax.local_devices())[:1]
        self._chunks: dict[int, Callable] = {}

    @property
    def steps_per_update(self) -> int:
        return self.config.num_envs * self.config.rollout_length

    # --- the agent's maths ---------------------------------------------------------------------
    def q_values(self, params, obs: jax.Array) -> jax.Array:
        """``Q_EC(s, a)`` for every action of one observation: the stored value of an exact match,
        else the mean of the k nearest stored values; 0 for an empty table."""
        c = self.config
        key = obs @ params["projection"]
        found = common.lookup_actions(params["memories"], key, c.num_neighbours, 0.0, "mean")
        stored = jax.vmap(lambda values, i: values[i])(params["memories"].values, found.exact_index)
        return jnp.where(found.exact, stored, found.value)

    def act(self, params, obs: jax.Array, key: jax.Array, epsilon: float = 0.0) -> jax.Array:
        return common.epsilon_greedy(key, self.q_values(params, obs), epsilon)

    def write_episode(self, memories, keys, actions, rewards, length):
        """Writes one finished episode: ``R_t = sum_{s >= t} discount^(s - t) r_s`` for its
        ``length`` steps, in time order, with the max rule."""
        steps = jnp.arange(rewards.shape[0])
        inside = steps < length
        returns = discounted_returns(
            jnp.where(inside, rewards, 0.0),
            jnp.where(inside, self.config.discount, 0.0),
            jnp.float32(0.0),
        )

        def one(t, memories):
            return dnd.write(memories, keys[t], returns[t], rule="max", table=actions[t])

        return jax.lax.fori_loop(0, length, one, memories)

    # --- the learner ---------------------------------------------------------------------------
    def init(self, seed: int | None = None) -> TrainState:
        seed = self.config.seed if seed is None else seed
        return self.place(jax.jit(self._init)(jax.random.PRNGKey(seed)))

    def _init(self, key: jax.Array) -> TrainState:
        c, env = self.config, self.env
        k_proj, k_reset, k_run = jax.random.split(key, 3)
        n, length = c.num_envs, env.max_episode_steps
        obs, env_state = jax.vmap(env.reset)(jax.random.split(k_reset, n))
        return TrainState(
            projection=jax.random.normal(k_proj, (env.observation_size, c.key_size)),
            memories=common.init_memories(self.num_actions, c.capacity, c.key_size),
            env_state=env_state,
            obs=obs,
            episode_keys=jnp.zeros((n, length, c.key_size), jnp.float32),
            episode_actions=jnp.zeros((n, length), jnp.int32),
            episode_rewards=jnp.zeros((n, length), jnp.float32),
            episode_length=jnp.zeros((n,), jnp.int32),
            running_return=jnp.zeros((n,), jnp.float32),
            last_return=jnp.float32(0.0),
            env_steps=jnp.int32(0),
            update=jnp.int32(0),
            key=k_run,
        )

    def place(self, state: TrainState) -> TrainState:
        return jax.device_put(state, self.devices[0])

    def _env_step(self, carry, key):
        state, total, count = carry
        c, n = self.config, self.config.num_envs
        k_act, k_env = jax.random.split(key)
        epsilon = common.linear_epsilon(
            state.env_steps, c.epsilon_start, c.epsilon_end, c.epsilon_decay_steps
        )
        params = state.params
        actions = jax.vmap(lambda o, k: self.act(params, o, k, epsilon))(
            state.obs, jax.random.split(k_act, n)
        )
        next_obs, env_state, reward, terminated, truncated, _ = jax.vmap(self.env.step)(
            jax.random.split(k_env, n), state.env_state, actions
        )
        rows = jnp.arange(n)
        t = state.episode_length
        episode_keys = state.episode_keys.at[rows, t].set(state.obs @ state.projection)
        episode_actions = state.episode_actions.at[rows, t].set(actions)
        episode_rewards = state.episode_rewards.at[rows, t].set(reward)
        length = t + 1
        done = terminated | truncated

        # Finished episodes are written, environment 0 first (a loop of 0 steps for the others).
        def flush(memories, e):
            count = jnp.where(done[e], length[e], 0)
            args = (episode_keys[e], episode_actions[e], episode_rewards[e], count)
            return self.write_episode(memories, *args), None

        memories = jax.lax.scan(flush, state.memories, rows)[0]
        running, total, count = common.track_returns(
            state.running_return, reward, done, total, count
        )
        state = state.replace(
            memories=memories,
            env_state=env_state,
            obs=next_obs,
            episode_keys=episode_keys,
            episode_actions=episode_actions,
            episode_rewards=episode_rewards,
            episode_length=jnp.where(done, 0, length),
            running_return=running,
            env_steps=state.env_steps + n,
        )
        return (state, total, count), epsilon

    def _update(self, state: TrainState, _):
        key = jax.random.fold_in(state.key, state.update)
        carry = (state, jnp.float32(0.0), jnp.int32(0))
        (state, total, count), epsilon = jax.lax.scan(
            self._env_step, carry, jax.random.split(key, self.config.rollout_length)
        )
        last_return = jnp.where(count > 0, total / jnp.maximum(count, 1), state.last_return)
        metrics = {
            "episode_return": last_return,
            "episodes": count,
            "epsilon": epsilon[-1],
            "memory_fill": jnp.mean(state.memories.size) / self.config.capacity,
        }
        return state.replace(last_return=last_return, update=state.update + 1), metrics

    def train_chunk(self, state: TrainState, num_updates: int):
        return scanned_chunk(self._chunks, self._update, state, num_updates)

    # --- evaluation ----------------------------------------------------------------------------
    def episode_returns(
        self, params, num_episodes: int, key: jax.Array, epsilon: float = 0.0
    ) -> jax.Array:
        """Returns of ``num_episodes`` fresh episodes acting epsilon-greedily (greedy by default)
        on the tables ``params``, which stay as they are."""
        return common.episode_returns(
            self.env, lambda p, o, k: self.act(p, o, k, epsilon), params, num_episodes, key
        )

    def agent(self, params, name: str | None = None, epsilon: float = 0.0):
        """The trained tables as an ``Agent`` acting on ``TrialObs.obs`` (read-only memories)."""
        c = self.config
        kind_key = ("mfec", c.env, c.key_size, c.capacity, c.num_neighbours, float(epsilon))
        return common.trial_agent(
            kind_key,
            lambda p, o, k: self.act(p, o, k, epsilon),
            self.env.observation_size,
            params,
            name or "mfec",
        )
