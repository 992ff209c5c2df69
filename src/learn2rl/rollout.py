"""Batches of independent episodes of one task under a memoryless policy.

Gradient-based meta-learners (MAML, Reptile, MAESN) adapt *between* batches of episodes: the policy
is fixed while a batch is collected, so the episodes of a batch are independent and run in parallel
(``vmap`` over episodes, ``lax.scan`` over time). ``Episodes`` is the padded result: every array has
leading axes ``[episode, step]`` with ``episode_length`` steps per episode; ``mask`` is 1 on steps
that happened and 0 after an episode terminated early.

An episode begins with ``begin(key)``, which returns the episode's *context* (MAESN's latent draw;
an empty array for policies without one), and each step calls ``act(key, context, obs)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from learn2rl.tasks.base import TaskFamily


@struct.dataclass
class Episodes:
    obs: jax.Array  # [E, T, obs]  observation the action was chosen on
    action: jax.Array  # [E, T, act] action the policy emitted (before the family clips it)
    reward: jax.Array  # [E, T]      0 where mask is 0
    mask: jax.Array  # [E, T]      1.0 on steps that happened
    context: jax.Array  # [E, ...]    per-episode context (latent), or [E, 0]

    @property
    def returns(self) -> jax.Array:
        """Undiscounted return of each episode, [E]."""
        return jnp.sum(self.reward * self.mask, axis=-1)


def no_context(key: jax.Array) -> jax.Array:
    return jnp.zeros((0,), jnp.float32)


def rollout_episodes(
    family: TaskFamily,
    act: Callable[[jax.Array, Any, jax.Array], jax.Array],
    key: jax.Array,
    task: Any,
    num_episodes: int,
    begin: Callable[[jax.Array], Any] = no_context,
) -> Episodes:
    """``num_episodes`` independent episodes of ``task`` (unbatched task; vmap over tasks)."""

    def one_episode(episode_key):
        key_begin, key_reset, key_steps = jax.random.split(episode_key, 3)
        context = begin(key_begin)
        obs, env_state = family.reset_env(key_reset, task)

        def step(carry, step_key):
            obs, env_state, alive = carry
            key_act, key_env = jax.random.split(step_key)
            action = act(key_act, context, obs)
            next_obs, env_state, reward, terminated, _ = family.step_env(
                key_env, env_state, action, task
            )
            mask = alive.astype(jnp.float32)
            out = (obs, family.cast_action(action), reward * mask, mask)
            return (next_obs, env_state, jnp.logical_and(alive, jnp.logical_not(terminated))), out

        keys = jax.random.split(key_steps, family.episode_length)
        _, (obs_t, action_t, reward_t, mask_t) = jax.lax.scan(
            step, (obs, env_state, jnp.asarray(True)), keys
        )
        return obs_t, action_t, reward_t, mask_t, context

    obs, action, reward, mask, context = jax.vmap(one_episode)(jax.random.split(key, num_episodes))
    return Episodes(
        obs=obs.astype(jnp.float32), action=action, reward=reward, mask=mask, context=context
    )
