"""A fixed-action trial under ``lax.scan``, for the jit-vs-no-jit tier of the family tests."""

from __future__ import annotations

import jax
import numpy as np

from learn2rl.trial import Trial


def scan_trial(trial: Trial, params, actions, seed: int = 1, extract=None):
    """Per-step ``(observation, reward, episode_done, extract(env_state))`` of ``trial`` on
    ``params`` under a fixed action sequence, jitted and not: returns ``(jitted, eager)``."""
    keys = jax.random.split(jax.random.PRNGKey(seed), trial.max_steps)
    extract = extract or (lambda env_state: env_state.time)

    def rollout(params):
        _, state = trial.reset(jax.random.PRNGKey(seed + 1), params)

        def body(state, inputs):
            key, action = inputs
            obs, state, reward, done, _ = trial.step(key, state, action, params)
            return state, (obs.obs, reward, done, extract(state.env_state))

        return jax.lax.scan(body, state, (keys, actions))[1]

    fast = jax.jit(rollout)(params)
    with jax.disable_jit():
        slow = rollout(params)
    return [np.asarray(a) for a in fast], [np.asarray(b) for b in slow]
