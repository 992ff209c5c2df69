"""A task family whose tasks are *which environment*: the MetaGenRL split for RL^2.

MetaGenRL (Kirsch, van Steenkiste and Schmidhuber 2020, "Improving Generalization in Meta
Reinforcement Learning using Learned Objectives", arXiv 1910.04098) meta-trains a learned
objective on environments A and B and meta-tests it on an unseen environment C whose observation
and action sizes differ. Comparing RL^2 on the same split needs a task family in which a task is
one of those environments: ``EnvMixture(train_envs, test_envs)``, built from names that
``tasks.adapters.make_env`` accepts (``Pendulum-v1``, ``Reacher-misc``, ``control/point-goal``...).

- **Tasks.** A task's parameters are an int32 index into ``train_envs + test_envs``. Test task ``i``
  is test environment ``i mod len(test_envs)`` (so the first N test tasks cycle through the test
  environments evenly), training task ``2**20 + j`` is training environment ``j mod
  len(train_envs)``; ``sample(key, split)`` draws uniformly among the split's environments. A test
  environment is never drawn by the "train" split, and vice versa (unless a name is in both lists).
- **Observations** are the environment's own, zero-padded at the end to the largest observation
  size of the mixture. The agent is not told which environment it is in; only the observations
  (their values, and which entries are padding) and the rewards can tell it.
- **Actions** are vectors of the largest action size with the box ``[-1, 1]``; an environment reads
  its first ``action_size`` entries and maps them onto its own action box (the adapters clip and
  scale), so the same policy output means "the same fraction of the box" in every environment.
- **Episodes** end at the environment's own time limit (its adapter's ``truncated`` flag, kept in
  the state) or at a terminal state; ``episode_length`` is the longest time limit of the mixture.
  In a ``Trial`` of K episodes on a short-lived environment, the steps after its K-th episode are
  the trial's no-op steps.

The state holds every environment's state (a tuple) and the index; ``reset_env`` / ``step_env``
dispatch with ``lax.switch``, each branch returning the whole tuple with only its own entry
changed, so the branches agree in shape. Under ``vmap`` over tasks the switch becomes a select,
which computes every environment's branch: a batch costs the sum of its environments' steps.

Ids: ``make("mix:Pendulum-v1+control/point-goal->Reacher-misc")`` (training environments before
``->``, test environments after, each list joined by ``+``) builds this family; ``mixture_id``
writes such an id and ``from_id`` reads it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.adapters import ContinuousEnv, make_env
from learn2rl.tasks.base import split_range, strong_leaves
from learn2rl.tasks.control.base import ControlFamily

PREFIX = "mix:"
SPLIT_MARK = "->"
JOIN_MARK = "+"


@struct.dataclass
class MixtureParams:
    index: jax.Array  # int32 []: the environment, a position in train_envs + test_envs


@struct.dataclass
class MixtureState:
    time: jax.Array  # int32 []: steps taken in this episode
    index: jax.Array  # int32 []: the environment being stepped (as in the params)
    env_states: tuple  # one state per environment; only entry ``index`` is live
    terminated: jax.Array  # bool []: the last step reached a terminal state
    truncated: jax.Array  # bool []: the last step reached the environment's time limit


class EnvMixture(ControlFamily):
    """Tasks = environments: training tasks among ``train_envs``, test tasks among ``test_envs``.

    Sizes: observations float32[``observation_size``] (the largest of the environments, zero
    padded), actions float32[``action_size``] (the largest) in ``[-1, 1]``.
    """

    action_low = -1.0
    action_high = 1.0
    # The environment objects follow from their names (which are compared); an MJX-backed one
    # holds a compiled model that must not be hashed.
    _derived_attributes = ("envs",)

    def __init__(self, train_envs: tuple[str, ...], test_envs: tuple[str, ...]):
        super().__init__()
        self.train_envs = _check_names("train_envs", train_envs)
        self.test_envs = _check_names("test_envs", test_envs)
        self.envs: tuple[ContinuousEnv, ...] = tuple(
            _make(field, name)
            for field, names in (("train_envs", self.train_envs), ("test_envs", self.test_envs))
            for name in names
        )
        self.observation_size = max(env.observation_size for env in self.envs)
        self.action_size = max(env.action_size for env in self.envs)
        self.episode_length = max(env.max_episode_steps for env in self.envs)
        self.family_id = mixture_id(self.train_envs, self.test_envs)

    # --- the tasks ---------------------------------------------------------------------------
    def task(self, index: jax.Array | int) -> MixtureParams:
        """Task ``index``: test indices (below 2**20) pick test environment ``index mod
        len(test_envs)``; every other index picks training environment ``(index - 2**20) mod
        len(train_envs)``. Pure JAX, vmappable."""
        index = jnp.asarray(index, jnp.int32)
        test_low, test_high = split_range("test")
        train_low, _ = split_range("train")
        is_test = (index >= test_low) & (index < test_high)
        num_train = len(self.train_envs)
        test_env = num_train + jnp.remainder(index - test_low, len(self.test_envs))
        train_env = jnp.remainder(index - train_low, num_train)
        return MixtureParams(index=jnp.where(is_test, test_env, train_env).astype(jnp.int32))

    def sample(self, key: jax.Array, split: str = "train") -> MixtureParams:
        """A task of ``split`` whose environment is uniform among the split's environments."""
        low, _ = split_range(split)
        pool = len(self.test_envs) if split == "test" else len(self.train_envs)
        return self.task(low + jax.random.randint(key, (), 0, pool, dtype=jnp.int32))

    def sample_params(self, key: jax.Array) -> MixtureParams:
        """The training prior: an environment uniform among ``train_envs``."""
        return self.sample(key, "train")

    def environment(self, params: MixtureParams) -> str:
        """The name of the environment of a (concrete, unbatched) task."""
        return (self.train_envs + self.test_envs)[int(params.index)]

    # --- dynamics ----------------------------------------------------------------------------
    def pad_observation(self, obs: jax.Array) -> jax.Array:
        """An environment's observation float32[n] zero-padded to float32[observation_size]."""
        obs = jnp.asarray(obs, jnp.float32)
        return jnp.pad(obs, (0, self.observation_size - obs.shape[0]))

    def reset_env(self, key: jax.Array, params: MixtureParams):
        """A fresh episode of the task's environment: (padded observation, MixtureState)."""
        # The other entries hold zeros of their environment's state shape: placeholders that
        # keep the tuple's structure fixed. Under vmap over tasks every branch runs, so they are
        # stepped too, and the select then discards those results.
        placeholders = tuple(
            jax.tree.map(
                lambda leaf: jnp.zeros(leaf.shape, leaf.dtype),
                jax.eval_shape(lambda k, env=env: env.reset(k)[1], key),
            )
            for env in self.envs
        )

        def branch(position: int, env: ContinuousEnv):
            def reset(key):
                obs, state = env.reset(key)
                states = list(placeholders)
                states[position] = strong_leaves(state)
                return self.pad_observation(obs), tuple(states)

            return reset

        index = jnp.asarray(params.index, jnp.int32)
        branches = [branch(position, env) for position, env in enumerate(self.envs)]
        obs, env_states = jax.lax.switch(index, branches, key)
        state = MixtureState(
            time=jnp.int32(0),
            index=index,
            env_states=env_states,
            terminated=jnp.asarray(False),
            truncated=jnp.asarray(False),
        )
        return obs, state

    def step_env(self, key: jax.Array, state: MixtureState, action: jax.Array, params):
        """One step of the task's environment: ``action`` is float32[self.action_size] in
        [-1, 1], of which the environment reads its own first ``action_size`` entries. Returns
        ``(padded obs, state, reward float32 [], terminated bool [], info)``."""
        action = jnp.asarray(action, jnp.float32).reshape((self.action_size,))

        def branch(position: int, env: ContinuousEnv):
            def step(key, env_states, action):
                obs, env_state, reward, terminated, truncated = env.step(
                    key, env_states[position], action[: env.action_size]
                )
                env_states = list(env_states)
                env_states[position] = strong_leaves(env_state)
                flags = (jnp.asarray(terminated, bool), jnp.asarray(truncated, bool))
                return self.pad_observation(obs), tuple(env_states), reward, *flags

            return step

        branches = [branch(position, env) for position, env in enumerate(self.envs)]
        obs, env_states, reward, terminated, truncated = jax.lax.switch(
            jnp.asarray(params.index, jnp.int32), branches, key, state.env_states, action
        )
        state = state.replace(
            time=state.time + 1,
            env_states=env_states,
            terminated=terminated,
            truncated=truncated,
        )
        return obs, state, jnp.asarray(reward, jnp.float32), terminated, {}

    def is_truncated(self, state: MixtureState, params: Any) -> jax.Array:
        """The environment's own time limit was reached by the last step."""
        return state.truncated

    def is_terminated(self, state: MixtureState, params: Any) -> jax.Array:
        """The last step reached a terminal state of the environment."""
        return state.terminated


def _check_names(field: str, names) -> tuple[str, ...]:
    if isinstance(names, str) or not isinstance(names, (tuple, list)):
        raise Learn2RLError(f"{field} must be a tuple of environment names, got {names!r}")
    names = tuple(names)
    if not names:
        raise Learn2RLError(f"{field} must name at least one environment")
    if not all(isinstance(name, str) for name in names):
        raise Learn2RLError(f"{field} must hold environment names (strings), got {names!r}")
    if len(set(names)) != len(names):
        raise Learn2RLError(f"{field} names an environment twice: {', '.join(names)}")
    return names


def _make(field: str, name) -> ContinuousEnv:
    if isinstance(name, str) and name.startswith("gymnasium:"):
        # lax.switch under vmap runs every branch: a host-stepped environment would be stepped
        # for every task of the batch, whichever environment the task is.
        raise Learn2RLError(
            f"{field}: {name} is stepped on the host; a mixture needs pure-JAX environments "
            "(learn2rl.tasks.adapters.list_envs)"
        )
    try:
        return make_env(name)
    except Learn2RLError as error:
        raise Learn2RLError(f"{field}: {error}") from None


def mixture_id(train_envs, test_envs) -> str:
    """The task id of the mixture: ``mix:A+B->C`` (``+`` joins names, ``->`` splits the lists)."""
    return PREFIX + JOIN_MARK.join(train_envs) + SPLIT_MARK + JOIN_MARK.join(test_envs)


def from_id(task_id: str) -> EnvMixture:
    """The ``EnvMixture`` of an id ``mix:<train>+<train>...-><test>+...`` (see ``mixture_id``)."""
    if not task_id.startswith(PREFIX):
        raise Learn2RLError(f"mixture id {task_id!r} must start with {PREFIX!r}")
    sides = task_id[len(PREFIX) :].split(SPLIT_MARK)
    if len(sides) != 2:
        raise Learn2RLError(
            f"mixture id {task_id!r} must be {PREFIX}<train>+<train>...{SPLIT_MARK}<test>+..., "
            f"with one {SPLIT_MARK!r}"
        )
    train, test = (tuple(side.split(JOIN_MARK)) if side else () for side in sides)
    if "" in train + test:
        raise Learn2RLError(f"mixture id {task_id!r} has an empty environment name")
    return EnvMixture(train, test)
