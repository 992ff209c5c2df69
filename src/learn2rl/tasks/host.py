"""Gymnasium continuous-control environments stepped on the host, from inside ``jit``.

``GymnasiumEnv("HalfCheetah-v5")`` (``make_env("gymnasium:HalfCheetah-v5")``) is a
``tasks.adapters.ContinuousEnv`` whose simulators are ordinary gymnasium environments (C MuJoCo,
Box2D, classic control) living in Python, so the off-policy learners (TD3, DDPG, MetaGenRL) train
on the environments of the MetaGenRL paper (Kirsch et al. 2020) with their jitted code unchanged.

How it works:

- The environment keeps a **pool** of gymnasium instances; instance ``k`` serves row ``k`` of a
  batched call. The JAX state (``HostEnvState``) is only the id of the episode (the seed of the
  reset that began it) and the steps taken; the simulator state stays on the host.
- ``reset``, ``step`` and ``step_and_reset`` are ``jax.experimental.io_callback`` calls (ordered,
  so a pool sees its calls in program order) wrapped in ``jax.custom_batching.custom_vmap``: under
  ``vmap`` (also nested, e.g. agents x evaluation episodes) **one** host call receives the whole
  batch (the mapped axes merged, outer first) and steps instance ``i`` with row ``i`` in a Python
  loop.
- Host resets are seeded from the JAX key (``host_seed(key)``), so a run is reproducible given
  the same sequence of calls; the step itself takes no key (the simulator's own ``np_random``,
  seeded at reset, drives any noise). Because the episode id is the reset seed, a row whose state
  is a fresh episode (steps 0) that its instance is not playing is reset with that seed first, an
  exact replay. This is what makes a reset shared by several rows correct: ``vmap`` calls a
  reset whose key is not mapped over an axis once for the whole axis (MetaGenRL evaluates every
  agent on the same evaluation keys), and the first step, mapped over agents, gives each agent
  its own instance.
- Actions in [-1, 1] are mapped onto the gymnasium Box (``ContinuousEnv.scale_action``) and passed
  as float64; observations come back as float32. ``terminated`` and ``truncated`` are gymnasium's
  own (the ``TimeLimit`` wrapper of the spec's ``max_episode_steps`` truncates), kept apart.
- ``step_and_reset`` resets on the host only the instances whose episode ended, and returns the
  terminal ``next_obs`` plus the fresh episode's obs.
- Stepping an episode that already ended is a no-op: the last observation, reward 0, the end
  flags again. ``core.episode_return`` relies on this: it keeps stepping for
  ``max_episode_steps`` after an episode terminated.
- ``for_evaluation()`` is a copy with a pool of its own, so evaluation episodes never reset a
  training episode.

Limits:

- **Resuming after a kill is not bit-identical.** The simulator state is not in the checkpoint:
  a state in mid-episode whose (episode id, steps) does not match its instance (a resumed run,
  or a second live train state on the same environment object, which shares its pool) restarts
  as a fresh episode: that step returns reward 0, ``truncated=True`` and the fresh episode's first
  observation. A resumed run therefore stores one such transition per agent and then continues
  with new episodes.
- A step must be mapped over every ``vmap`` axis it runs under (its state or action must depend
  on the mapped inputs), so that every row owns an instance, and rows must keep their positions
  from call to call. The learners' steps do both (actions come from per-agent policies and keys).
- One ``GymnasiumEnv`` object serves one batch of live episodes. Environments compare by
  identity (each owns its instances), not by name as the pure-JAX ones do.
- No gradients flow through the step, and ``lax.cond`` on a batched predicate would run the host
  call for every row: call these functions outside conditionals (the learners do).
- Throughput: one host round trip per (batched) step, then a Python loop over the batch. On a
  shared 2-core CPU a jitted scan of random-action ``step_and_reset`` ran about 2,500 env-steps/s
  for one ``Pendulum-v1`` (about 60 us of it the callback itself) and 15,700 for a vmapped batch
  of 8; ``HalfCheetah-v5`` 2,300 and 10,700 (a plain gymnasium loop: 13,700 and 15,700). TD3
  with its default networks spends far longer learning than stepping (about 80-110 env-steps/s
  either way there). On an accelerator every step is also a device-host round trip. A pure-JAX
  environment runs thousands of copies per step; this runs them one after another on one CPU
  core, so keep populations small (the paper's 20 agents are fine).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.custom_batching import custom_vmap
from jax.experimental import io_callback

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.adapters import ContinuousEnv

PREFIX = "gymnasium:"
_NO_EPISODE = -1  # the episode id of a simulator never reset (seeds are >= 0)


def host_seed(key: jax.Array) -> jax.Array:
    """The int32 seed in [0, 2^31 - 1) that a host reset with ``key`` passes to gymnasium."""
    return jax.random.randint(key, (), 0, 2**31 - 1, dtype=jnp.int32)


@struct.dataclass
class HostEnvState:
    """The JAX side of one host environment: ``episode`` (int32, the seed of the reset that
    began the episode) and ``steps`` (int32, steps taken in the episode)."""

    episode: jax.Array
    steps: jax.Array


@dataclass
class _Simulator:
    env: Any
    episode: int = _NO_EPISODE
    steps: int = 0
    obs: np.ndarray | None = None
    ended: bool = False
    terminated: bool = False
    truncated: bool = False


@dataclass
class _Pool:
    """Gymnasium instances, created on demand; ``calls`` counts host calls."""

    env_id: str
    observation_size: int
    simulators: list[_Simulator] = field(default_factory=list)
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def grow(self, size: int, first: Any = None) -> None:
        import gymnasium

        if first is not None and not self.simulators:
            self.simulators.append(_Simulator(first))
        while len(self.simulators) < size:
            self.simulators.append(_Simulator(gymnasium.make(self.env_id)))

    def start(self, sim: _Simulator, seed: int) -> np.ndarray:
        obs, _ = sim.env.reset(seed=seed)
        sim.episode, sim.steps, sim.ended = seed, 0, False
        sim.terminated = sim.truncated = False
        sim.obs = np.asarray(obs, np.float32).reshape(self.observation_size)
        return sim.obs

    def reset(self, seeds: np.ndarray):
        """Instance ``i`` starts an episode with seed ``seeds[i]``: (obs, episodes, steps)."""
        seeds = np.asarray(seeds)
        with self.lock:
            self.calls += 1
            n = len(seeds)
            self.grow(n)
            obs = np.stack([self.start(self.simulators[i], int(seeds[i])) for i in range(n)])
            return obs, np.asarray(seeds, np.int32), np.zeros(n, np.int32)

    def step(self, auto_reset: bool, episodes, steps, actions, seeds):
        """Instance ``i`` steps with ``actions[i]`` from the state (``episodes[i]``,
        ``steps[i]``); see the module docstring for the replayed reset, the no-op after an
        episode's end and the restart of a stale state. ``seeds`` seed the restarts and, with
        ``auto_reset``, the resets after an episode's end."""
        # io_callback may hand over jax Arrays: index numpy copies (a jax index is a dispatch)
        episodes, steps, actions, seeds = (np.asarray(x) for x in (episodes, steps, actions, seeds))
        with self.lock:
            self.calls += 1
            n = len(episodes)
            self.grow(n)
            next_obs = np.zeros((n, self.observation_size), np.float32)
            obs = np.zeros((n, self.observation_size), np.float32)
            reward = np.zeros(n, np.float32)
            terminated = np.zeros(n, bool)
            truncated = np.zeros(n, bool)
            for i, sim in enumerate(self.simulators[:n]):
                episode, step = int(episodes[i]), int(steps[i])
                if (sim.episode, sim.steps) != (episode, step):
                    if step == 0:  # a fresh episode: replay its reset
                        self.start(sim, episode)
                    else:  # mid-episode, but the simulator is elsewhere: restart
                        next_obs[i] = obs[i] = self.start(sim, int(seeds[i]))
                        truncated[i] = True
                        continue
                if not sim.ended:
                    o, r, term, trunc, _ = sim.env.step(np.asarray(actions[i], np.float64))
                    sim.obs = np.asarray(o, np.float32).reshape(self.observation_size)
                    sim.steps += 1
                    sim.terminated, sim.truncated = bool(term), bool(trunc)
                    sim.ended = sim.terminated or sim.truncated
                    reward[i] = r
                next_obs[i] = obs[i] = sim.obs
                terminated[i], truncated[i] = sim.terminated, sim.truncated
                if auto_reset and sim.ended:
                    obs[i] = self.start(sim, int(seeds[i]))
            new_episodes = np.array([sim.episode for sim in self.simulators[:n]], np.int32)
            new_steps = np.array([sim.steps for sim in self.simulators[:n]], np.int32)
            result = (next_obs, reward, terminated, truncated, new_episodes.reshape(n))
            result = (*result, new_steps.reshape(n))
            return (*result, obs) if auto_reset else result


def _batched_host_call(callback, result_shapes):
    """``f(*arrays)`` (every array with the same leading batch size ``n``) -> ``callback``'s
    arrays (leading ``n``), computed by ONE ordered host call, also under ``vmap``: the vmap rule
    merges the mapped axis into the batch and calls ``f`` again, so nested ``vmap``s make one
    call with every row. ``result_shapes(n)`` gives the ``ShapeDtypeStruct``s of the results."""

    @custom_vmap
    def call(*args):
        return io_callback(callback, result_shapes(args[0].shape[0]), *args, ordered=True)

    @call.def_vmap
    def rule(axis_size, in_batched, *args):
        args = [
            a if batched else jnp.broadcast_to(a, (axis_size, *a.shape))
            for a, batched in zip(args, in_batched, strict=True)
        ]
        n = args[0].shape[1]
        merged = call(*(a.reshape(axis_size * n, *a.shape[2:]) for a in args))
        out = tuple(x.reshape(axis_size, n, *x.shape[1:]) for x in merged)
        return out, tuple(True for _ in out)

    return call


class GymnasiumEnv(ContinuousEnv):
    """A gymnasium environment with Box observation and action spaces, stepped on the host (see
    the module docstring). ``env_id`` is the gymnasium id (``"HalfCheetah-v5"``); the name is
    ``"gymnasium:<env_id>"``. Observations float32[observation_size], actions normalised to
    [-1, 1]^action_size, ``max_episode_steps`` from the gymnasium spec."""

    host_stepped = True

    def __init__(self, env_id: str, _evaluation: bool = False):
        first = _make_gymnasium(env_id)  # a one-line error if gymnasium is missing
        from gymnasium.spaces import Box

        obs_space, act_space = first.observation_space, first.action_space
        for what, space in (("observation", obs_space), ("action", act_space)):
            if not isinstance(space, Box) or len(space.shape) != 1:
                first.close()
                raise Learn2RLError(
                    f"gymnasium environment {env_id!r} has {what} space {space}; a host "
                    "environment needs 1-D Box observation and action spaces"
                )
        if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
            first.close()
            raise Learn2RLError(
                f"gymnasium environment {env_id!r} has an unbounded action box; normalised "
                "actions need finite bounds"
            )
        limit = first.spec.max_episode_steps if first.spec is not None else None
        if not limit:
            first.close()
            raise Learn2RLError(
                f"gymnasium environment {env_id!r} has no max_episode_steps; the learners need "
                "a time limit"
            )
        self.env_id = env_id
        self.name = PREFIX + env_id
        self.evaluation = _evaluation
        self.observation_size = int(obs_space.shape[0])
        self.action_size = int(act_space.shape[0])
        self.action_low = jnp.asarray(act_space.low, jnp.float32)
        self.action_high = jnp.asarray(act_space.high, jnp.float32)
        self.max_episode_steps = int(limit)
        self._pool = _Pool(env_id, self.observation_size)
        self._pool.grow(1, first)
        self._evaluation_env: GymnasiumEnv | None = self if _evaluation else None
        o, i32 = self.observation_size, jnp.int32

        def shapes(n, auto_reset):
            obs = jax.ShapeDtypeStruct((n, o), jnp.float32)
            flags = jax.ShapeDtypeStruct((n,), jnp.bool_)
            ints = jax.ShapeDtypeStruct((n,), i32)
            out = (obs, jax.ShapeDtypeStruct((n,), jnp.float32), flags, flags, ints, ints)
            return (*out, obs) if auto_reset else out

        self._reset_call = _batched_host_call(
            self._pool.reset,
            lambda n: (
                jax.ShapeDtypeStruct((n, o), jnp.float32),
                *[jax.ShapeDtypeStruct((n,), i32)] * 2,
            ),
        )
        self._step_call = _batched_host_call(
            lambda *a: self._pool.step(False, *a), lambda n: shapes(n, False)
        )
        self._step_reset_call = _batched_host_call(
            lambda *a: self._pool.step(True, *a), lambda n: shapes(n, True)
        )

    @property
    def host_calls(self) -> int:
        """Host calls made so far by this environment's pool (one per batched reset or step)."""
        return self._pool.calls

    @property
    def pool_size(self) -> int:
        """Gymnasium instances in this environment's pool."""
        return len(self._pool.simulators)

    def reset(self, key: jax.Array) -> tuple[jax.Array, HostEnvState]:
        """A fresh episode seeded with ``host_seed(key)`` (on instance ``i`` for row ``i`` of a
        ``vmap``): (observation float32[observation_size], state)."""
        obs, episode, steps = self._reset_call(host_seed(key)[None])
        return obs[0], HostEnvState(episode[0], steps[0])

    def _step(self, key, state: HostEnvState, action):
        out = self._step_call(*self._host_args(key, state, action))
        next_obs, reward, terminated, truncated, episode, steps = (x[0] for x in out)
        return next_obs, state.replace(episode=episode, steps=steps), reward, terminated, truncated

    def step_and_reset(self, key: jax.Array, state: HostEnvState, action: jax.Array):
        """``step``, then, only for an episode that ended, a host reset seeded from ``key``:
        ``(next_obs, state, reward, terminated, truncated, obs)`` as in ``ContinuousEnv``."""
        args = self._host_args(key, state, self.scale_action(action))
        out = self._step_reset_call(*args)
        next_obs, reward, terminated, truncated, episode, steps, obs = (x[0] for x in out)
        state = state.replace(episode=episode, steps=steps)
        return next_obs, state, reward, terminated, truncated, obs

    def _host_args(self, key, state: HostEnvState, action):
        # the seed restarts a stale state (step) or an ended episode (step_and_reset)
        as_row = lambda x, dtype: jnp.asarray(x, dtype)[None]  # noqa: E731
        return (
            as_row(state.episode, jnp.int32),
            as_row(state.steps, jnp.int32),
            as_row(action, jnp.float32).reshape(1, self.action_size),
            host_seed(key)[None],
        )

    def for_evaluation(self) -> GymnasiumEnv:
        """A copy with its own pool of gymnasium instances (built once, then reused), so
        evaluation episodes never disturb a training episode."""
        if self._evaluation_env is None:
            self._evaluation_env = GymnasiumEnv(self.env_id, _evaluation=True)
        return self._evaluation_env

    def close(self) -> None:
        """Close every gymnasium instance of this environment and of its evaluation copy."""
        for sim in self._pool.simulators:
            sim.env.close()
        self._pool.simulators.clear()
        if self._evaluation_env is not None and self._evaluation_env is not self:
            self._evaluation_env.close()

    # each object owns its simulators: two with the same name are still different environments
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        role = ", evaluation copy" if self.evaluation else ""
        return super().__repr__()[:-1] + f"{role}, host-stepped)"


def _make_gymnasium(env_id: str):
    """``gymnasium.make(env_id)`` with gymnasium's errors turned into one-line Learn2RLErrors."""
    try:
        import gymnasium
    except ImportError:
        raise Learn2RLError(
            f"environment {PREFIX}{env_id}: gymnasium is not installed (pip install -e "
            "'.[paper-envs]')"
        ) from None
    if not env_id:
        raise Learn2RLError(f"environment {PREFIX!r} names no gymnasium id")
    try:
        return gymnasium.make(env_id)
    except gymnasium.error.DependencyNotInstalled as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise Learn2RLError(
            f"environment {PREFIX}{env_id} needs a gymnasium extra that is missing "
            f"(pip install -e '.[paper-envs]'): {first_line}"
        ) from None
    except gymnasium.error.Error as error:
        message = " ".join(str(error).split())
        raise Learn2RLError(f"unknown gymnasium environment {env_id!r}: {message}") from None
