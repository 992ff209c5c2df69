"""Reference agents for the Harlow task (``learn2rl.tasks.harlow``; Harlow 1949, Wang et al. 2016).

- ``random``: a coin flip (50% on every presentation); the generic ``baselines.generic`` agent.
- ``wsls-objects``: win-stay, lose-shift on *objects*, the optimal agent that does not know the
  task: a guess on presentation 1, then always the rewarded object (expected total 0.5 + 5 = 5.5
  over 6 presentations).
- ``wsls-sides``: win-stay, lose-shift on *sides* (a position habit): 50% on every presentation,
  since the places are reshuffled; it shows that the task needs memory of object identity.
- ``oracle``: privileged; knows which object is rewarded and picks the side that shows it on every
  presentation, the first included (6 of 6).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from learn2rl.baselines.generic import random_agent
from learn2rl.tasks.harlow import HarlowParams, HarlowTask
from learn2rl.types import Agent


def _is_win(family: HarlowTask, reward) -> jax.Array:
    return reward > 0.5 * (family.correct_reward + family.incorrect_reward)


def _side_showing(obs: jax.Array, target: jax.Array, d: int) -> jax.Array:
    """0 if the left object is nearer to ``target`` (ties: left), else 1."""
    left, right = obs[:d], obs[d:]
    return jnp.where(jnp.sum((left - target) ** 2) <= jnp.sum((right - target) ** 2), 0, 1).astype(
        jnp.int32
    )


def wsls_objects_agent(family: HarlowTask) -> Agent:
    """Win-stay, lose-shift on objects: after the first presentation it knows the rewarded object
    (the one it chose if that paid, else the other) and picks the side that shows it."""
    d = family.num_features

    def init(key, task):
        return {
            "target": jnp.zeros((d,)),
            "known": jnp.asarray(False),
            "last_obs": jnp.zeros((2 * d,)),
        }

    def act(key, state, obs):
        shown = state["last_obs"]
        chosen = jnp.where(obs.prev_action == 0, shown[:d], shown[d:])
        other = jnp.where(obs.prev_action == 0, shown[d:], shown[:d])
        learned = jnp.where(_is_win(family, obs.prev_reward), chosen, other)
        has_feedback = obs.prev_action >= 0
        target = jnp.where(has_feedback, learned, state["target"])
        known = state["known"] | has_feedback
        towards = _side_showing(obs.obs, target, d)
        action = jnp.where(known, towards, jax.random.randint(key, (), 0, 2, jnp.int32))
        return action, {"target": target, "known": known, "last_obs": obs.obs}

    return Agent("wsls-objects", init, act)


def wsls_sides_agent(family: HarlowTask) -> Agent:
    """Win-stay, lose-shift on sides: repeats the last side after a win, switches after a loss."""

    def init(key, task):
        return jnp.int32(0)

    def act(key, state, obs):
        stay = jnp.where(_is_win(family, obs.prev_reward), obs.prev_action, 1 - obs.prev_action)
        guess = jax.random.randint(key, (), 0, 2, jnp.int32)
        return jnp.where(obs.prev_action >= 0, stay, guess).astype(jnp.int32), state

    return Agent("wsls-sides", init, act)


def oracle_agent(family: HarlowTask) -> Agent:
    """Privileged: knows the rewarded object (object 0 of the task) and picks its side."""
    d = family.num_features

    def init(key, task: HarlowParams):
        return task.objects[0]

    def act(key, target, obs):
        return _side_showing(obs.obs, target, d), target

    return Agent("oracle", init, act, privileged=True)


# The registry's table: factory(family, num_episodes, **options).
BASELINES = {
    "random": lambda family, num_episodes: random_agent(family),
    "oracle": lambda family, num_episodes: oracle_agent(family),
    "wsls-objects": lambda family, num_episodes: wsls_objects_agent(family),
    "wsls-sides": lambda family, num_episodes: wsls_sides_agent(family),
}
