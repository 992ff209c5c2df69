"""Single continuous-control environments for the off-policy learners (TD3, DDPG, MetaGenRL).

A meta-RL task family is a distribution over MDPs; an off-policy agent trains on *one* MDP for its
lifetime. ``ContinuousEnv`` is that MDP with the interface the off-policy learners need, pure JAX so
a whole population of agents steps inside one ``jit``:

- ``reset(key) -> (obs, state)`` and ``step(key, state, action) -> (next_obs, state, reward,
  terminated, truncated)``, with **no automatic reset** (the learner stores the true ``next_obs``
  of the last step of an episode in its replay buffer, then resets);
- actions are **normalised**: the learner's policy emits vectors in ``[-1, 1]^action_size`` and the
  environment maps them affinely onto its own action box (after clipping), so one learned objective
  sees the same action scale on every environment;
- ``terminated`` (a terminal state: no bootstrapping) and ``truncated`` (the time limit) are
  separate.

Three kinds exist. ``GymnaxEnv`` wraps a gymnax environment with continuous actions and its
default parameters (``Pendulum-v1``, ``MountainCarContinuous-v0``, ``Reacher-misc``,
``Swimmer-misc``). ``FamilyEnv`` wraps a learn2rl ``ControlFamily`` with one task fixed for the
agent's lifetime (test task ``task_index``), e.g. ``control/point-goal`` with its goal fixed.
``tasks.host.GymnasiumEnv`` (``gymnasium:<id>``) steps a gymnasium environment on the host from
inside ``jit``. ``make_env(name)`` builds any of them from its name. The pure-JAX environments
compare and hash by name, so learners that close over them hit the same compiled functions.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from learn2rl.errors import Learn2RLError

GYMNAX_CONTINUOUS = ("Pendulum-v1", "MountainCarContinuous-v0", "Reacher-misc", "Swimmer-misc")


class ContinuousEnv:
    """One continuous-control MDP with normalised actions and no automatic reset.

    Subclasses set ``name``, ``observation_size``, ``action_size``, ``max_episode_steps`` and the
    action box ``action_low`` / ``action_high`` (float32 arrays of ``action_size``), and implement
    ``reset`` and ``_step`` (which takes actions in the environment's own units).
    """

    name: str
    observation_size: int
    action_size: int
    max_episode_steps: int
    action_low: jax.Array
    action_high: jax.Array

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        """A fresh episode: (observation float32[observation_size], state)."""
        raise NotImplementedError

    def _step(self, key, state, action):
        raise NotImplementedError

    def scale_action(self, action: jax.Array) -> jax.Array:
        """``action`` in [-1, 1] (clipped first) mapped affinely onto the environment's box."""
        unit = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        return self.action_low + (unit + 1.0) * 0.5 * (self.action_high - self.action_low)

    def step(self, key: jax.Array, state: Any, action: jax.Array):
        """One step with a normalised action: ``(next_obs, state, reward, terminated,
        truncated)``; reward float32, the two flags bool. Stepping past the end of an episode is
        the caller's mistake (the learners reset when either flag is set)."""
        return self._step(key, state, self.scale_action(action))

    def step_and_reset(self, key: jax.Array, state: Any, action: jax.Array):
        """``step``, then a reset if the episode ended: ``(next_obs, state, reward, terminated,
        truncated, obs)`` where ``next_obs`` is the true next observation (for the replay buffer)
        and ``state`` / ``obs`` are where the agent continues from (a fresh episode's after an
        end). Pure-JAX environments compute both branches and select; host-stepped ones reset
        only when needed."""
        k_step, k_reset = jax.random.split(key)
        next_obs, next_state, reward, terminated, truncated = self.step(k_step, state, action)
        reset_obs, reset_state = self.reset(k_reset)
        done = jnp.logical_or(terminated, truncated)
        pick = lambda a, b: jnp.where(done, a, b)  # noqa: E731
        continued = jax.tree_util.tree_map(pick, reset_state, next_state)
        return next_obs, continued, reward, terminated, truncated, pick(reset_obs, next_obs)

    def for_evaluation(self) -> ContinuousEnv:
        """The environment evaluation episodes run on: ``self`` for pure-JAX environments (their
        state is data); host-stepped environments return a copy with environments of its own, so
        evaluating never disturbs a training episode."""
        return self

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.name == self.name

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.name))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}: obs {self.observation_size}, "
            f"actions {self.action_size}, {self.max_episode_steps} steps)"
        )


class GymnaxEnv(ContinuousEnv):
    """A gymnax environment with a continuous action box, at its default parameters."""

    def __init__(self, env_id: str):
        import gymnax

        if env_id not in GYMNAX_CONTINUOUS:
            raise Learn2RLError(
                f"unknown continuous gymnax environment {env_id!r}; known: "
                f"{', '.join(GYMNAX_CONTINUOUS)}"
            )
        self.name = env_id
        self._env, self._params = gymnax.make(env_id)
        space = self._env.action_space(self._params)
        obs_shape = self._env.observation_space(self._params).shape
        self.observation_size = int(obs_shape[0])
        self.action_size = int(space.shape[0]) if space.shape else 1
        self._scalar_action = not space.shape
        self.action_low = jnp.broadcast_to(jnp.asarray(space.low, jnp.float32), (self.action_size,))
        self.action_high = jnp.broadcast_to(
            jnp.asarray(space.high, jnp.float32), (self.action_size,)
        )
        self.max_episode_steps = int(self._params.max_steps_in_episode)

    def reset(self, key):
        obs, state = self._env.reset_env(key, self._params)
        return jnp.asarray(obs, jnp.float32).reshape(self.observation_size), state

    def _step(self, key, state, action):
        if self._scalar_action:
            action = action[0]
        obs, state, reward, done, _ = self._env.step_env(key, state, action, self._params)
        truncated = state.time >= self.max_episode_steps
        terminated = jnp.logical_and(done, jnp.logical_not(truncated))
        obs = jnp.asarray(obs, jnp.float32).reshape(self.observation_size)
        return obs, state, jnp.asarray(reward, jnp.float32).reshape(()), terminated, truncated


class FamilyEnv(ContinuousEnv):
    """A learn2rl continuous-control family with one task fixed (test task ``task_index``)."""

    def __init__(self, task_id: str, task_index: int = 0):
        from learn2rl.tasks.registry import make

        family = make(task_id)
        if not getattr(family, "continuous", False):
            raise Learn2RLError(
                f"{task_id} has discrete actions; off-policy learners need a continuous-control "
                "family (control/...)"
            )
        self.family = family
        self.task_index = task_index
        self.name = task_id if task_index == 0 else f"{task_id}#{task_index}"
        self._params = family.task(task_index)
        self.observation_size = int(family.observation_size)
        self.action_size = int(family.action_size)
        self.action_low = jnp.broadcast_to(
            jnp.asarray(family.action_low, jnp.float32), (self.action_size,)
        )
        self.action_high = jnp.broadcast_to(
            jnp.asarray(family.action_high, jnp.float32), (self.action_size,)
        )
        self.max_episode_steps = int(family.episode_length)

    def reset(self, key):
        obs, state = self.family.reset_env(key, self._params)
        return jnp.asarray(obs, jnp.float32).reshape(self.observation_size), state

    def _step(self, key, state, action):
        obs, state, reward, terminated, _ = self.family.step_env(key, state, action, self._params)
        truncated = self.family.is_truncated(state, self._params)
        terminated = jnp.logical_and(jnp.asarray(terminated), jnp.logical_not(truncated))
        obs = jnp.asarray(obs, jnp.float32).reshape(self.observation_size)
        return obs, state, jnp.asarray(reward, jnp.float32).reshape(()), terminated, truncated


def list_envs() -> list[str]:
    """Names of the pure-JAX environments ``make_env`` accepts: the continuous gymnax
    environments and the learn2rl continuous-control families (``<id>`` for test task 0,
    ``<id>#<i>`` for test task i). ``make_env`` also accepts ``gymnasium:<id>`` for any gymnasium
    environment with Box spaces (``tasks.host.GymnasiumEnv``, stepped on the host); those are not
    listed (gymnasium's registry is open-ended and needs optional extras)."""
    from learn2rl.tasks.registry import list_tasks

    return [*GYMNAX_CONTINUOUS, *(t for t in list_tasks() if t.startswith("control/"))]


def make_env(name: str) -> ContinuousEnv:
    """The environment called ``name`` (see ``list_envs``, and ``gymnasium:<id>`` for a
    host-stepped gymnasium environment); a one-line error for unknown names."""
    if name.startswith("gymnasium:"):
        from learn2rl.tasks.host import GymnasiumEnv

        return GymnasiumEnv(name.partition(":")[2])
    if name in GYMNAX_CONTINUOUS:
        return GymnaxEnv(name)
    task_id, _, index = name.partition("#")
    if task_id.startswith("control/") and task_id in list_envs():
        if index and not index.isdigit():
            raise Learn2RLError(
                f"environment {name!r}: the task index after '#' must be an integer"
            )
        return FamilyEnv(task_id, int(index) if index else 0)
    raise Learn2RLError(
        f"unknown environment {name!r}; known: {', '.join(list_envs())} (and gymnasium:<id>)"
    )
