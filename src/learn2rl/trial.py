"""Trials: K episodes on one task, as in RL^2 (Duan et al. 2016, arXiv 1611.02779, Sec. 2.2).

The trial wrapper steps a task family's environment, resets it (same task) when an episode ends, and
hands the agent a ``TrialObs``: the environment observation plus the previous action, previous
reward,
previous done flag and the step index. ``episode_done`` and ``trial_done`` are separate signals: an
agent's memory must persist across episode ends and is reset only when a new trial (a new task)
begins.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import TaskFamily
from learn2rl.types import TrialObs


@struct.dataclass
class TrialState:
    env_state: Any
    env_obs: jax.Array
    step: jax.Array  # steps taken so far in this trial
    episode: jax.Array  # episodes completed so far in this trial
    prev_action: jax.Array
    prev_reward: jax.Array
    prev_done: jax.Array
    trial_done: jax.Array


class Trial:
    """A trial of ``num_episodes`` episodes of ``family``; at most ``max_steps`` steps long."""

    def __init__(self, family: TaskFamily, num_episodes: int):
        if not isinstance(num_episodes, int) or num_episodes <= 0:
            raise Learn2RLError(
                f"episodes per trial must be a positive integer, got {num_episodes!r}"
            )
        self.family = family
        self.num_episodes = num_episodes
        self.max_steps = num_episodes * family.episode_length

    # By value, because a Trial is a static argument of jitted evaluation: equal trials (equal
    # families, same episode count) must find the function compiled for the first one.
    def _key(self) -> tuple:
        return (type(self), self.family, self.num_episodes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trial):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def observe(self, state: TrialState) -> TrialObs:
        return TrialObs(
            obs=state.env_obs,
            prev_action=state.prev_action,
            prev_reward=state.prev_reward,
            prev_done=state.prev_done,
            step=state.step,
        )

    def reset(self, key: jax.Array, params: Any) -> tuple[TrialObs, TrialState]:
        env_obs, env_state = self.family.reset_env(key, params)
        state = TrialState(
            env_state=env_state,
            env_obs=env_obs,
            step=jnp.int32(0),
            episode=jnp.int32(0),
            prev_action=self.family.null_action(),
            prev_reward=jnp.float32(0.0),
            prev_done=jnp.float32(0.0),
            trial_done=jnp.asarray(False),
        )
        return self.observe(state), state

    def step(self, key: jax.Array, state: TrialState, action: jax.Array, params: Any):
        """Returns ``(obs, state, reward, episode_done, trial_done)``.

        Stepping a finished trial is a no-op with zero reward, so a fixed-length ``lax.scan`` can
        run
        trials whose episodes have variable length.
        """
        key_step, key_reset = jax.random.split(key)
        family = self.family
        env_obs, env_state, reward, terminated, _ = family.step_env(
            key_step, state.env_state, action, params
        )
        episode_done = jnp.logical_or(terminated, family.is_truncated(env_state, params))
        episode = state.episode + episode_done.astype(jnp.int32)
        trial_done = episode >= self.num_episodes
        # A new episode of the same task begins where the last one ended.
        reset_obs, reset_state = family.reset_env(key_reset, params)
        env_state = jax.tree.map(lambda r, s: jnp.where(episode_done, r, s), reset_state, env_state)
        env_obs = jnp.where(episode_done, reset_obs, env_obs)
        active = jnp.logical_not(state.trial_done)
        reward = jnp.where(active, reward, 0.0).astype(jnp.float32)
        new_state = TrialState(
            env_state=env_state,
            env_obs=env_obs,
            step=state.step + 1,
            episode=episode,
            prev_action=family.cast_action(action),
            prev_reward=reward,
            prev_done=episode_done.astype(jnp.float32),
            trial_done=jnp.logical_or(state.trial_done, trial_done),
        )
        new_state = jax.tree.map(lambda new, old: jnp.where(active, new, old), new_state, state)
        return (
            self.observe(new_state),
            new_state,
            reward,
            jnp.logical_and(active, episode_done),
            jnp.logical_and(active, trial_done),
        )
