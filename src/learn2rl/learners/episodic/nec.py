"""Neural episodic control (NEC).

Pritzel et al. 2017, "Neural Episodic Control" (arXiv 1703.01988). One agent on one
discrete-action gymnax environment:

- an embedding network ``h = f(s)`` (here an MLP on the flattened observation, ``Torso``);
- one differentiable neural dictionary per action, ``Q(s, a) = sum_i w_i v_i`` over the
  ``num_neighbours`` nearest keys of ``h`` in ``DND_a`` with the inverse-distance kernel
  (the paper: p = 50 neighbours, delta = 10^-3);
- epsilon-greedy actions on ``Q``; the neighbours a lookup used become recently used;
- N-step targets ``Q^(N)(s_t, a) = sum_{j<N} gamma^j r_{t+j} + gamma^N max_a' Q(s_{t+N}, a')``
  (the paper: N = 100), written into ``DND_{a_t}`` under the key ``h_t`` computed when the
  action was taken, with the tabular step ``Q_i <- Q_i + alpha (Q^(N) - Q_i)`` on an exact key
  match (alpha tuned in the paper, value not printed), appended otherwise (LRU eviction when
  full), and the triple ``(s_t, a_t, Q^(N))`` appended to a replay buffer;
- a gradient step on the squared error ``(Q(s, a) - Q^(N))^2`` of a replay minibatch, for the
  embedding network (``optimizer``) and, through the lookup, the keys and values of the
  neighbours it used (the DND is trained end to end; a sparse SGD step here).

Online N-step targets: each environment keeps its last N steps pending, every reward is added to
them as it arrives (``sum gamma^j r``), the step taken N steps ago is completed with the
bootstrap ``gamma^N max_a Q(s_t, a)`` read from the memories at the step where it is needed
(the current Q at write time), and an episode end completes all of its pending steps (a
termination without bootstrap, a time limit bootstrapped from the true final observation). One
update is ``rollout_length`` steps of each of ``num_envs`` environments followed by one gradient
step once the replay holds ``learning_starts`` items.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax
from flax import struct

from learn2rl.learners.base import (
    ConfigMixin,
    SeedsOverDevices,
    check_choice,
    check_layer_sizes,
    check_non_negative,
    check_positive,
    check_positive_ints,
    check_unit_interval,
    scanned_chunk,
)
from learn2rl.learners.episodic import common
from learn2rl.ops import dnd


@dataclass(frozen=True)
class Config(ConfigMixin):
    """NEC settings. Defaults: Breakout-MinAtar, one environment, a gradient step every 4 steps,
    200k environment steps."""

    learner = "nec"

    env: str = "Breakout-MinAtar"
    """A gymnax environment with discrete actions (``metagradient.GYMNAX_DISCRETE``); observations
    are flattened."""
    num_updates: int = 50_000
    """Updates in a run (each ``num_envs * rollout_length`` environment steps and one gradient
    step)."""
    updates_per_chunk: int = 1000
    """Updates per jitted chunk."""
    num_envs: int = 1
    """Parallel environments sharing the memories (the paper: one)."""
    rollout_length: int = 4
    """Steps of each environment per gradient step (the paper: every 16 Atari frames, i.e. 4
    agent steps at frame skip 4)."""
    hidden_sizes: tuple[int, ...] = (128,)
    """ReLU layers of the embedding network before its linear key layer."""
    key_size: int = 64
    """Size of the embedding h, the dictionaries' keys."""
    capacity: int = 50_000
    """Entries per action's dictionary (the paper: 5 x 10^5; exact search costs O(capacity) per
    lookup)."""
    num_neighbours: int = 50
    """p, the neighbours of a lookup (the paper: 50)."""
    delta: float = 1e-3
    """delta of the kernel 1 / (||h - h_i||^2 + delta) (the paper: 10^-3)."""
    tabular_learning_rate: float = 0.1
    """alpha of the write of an exactly matching key, Q_i <- Q_i + alpha (Q^(N) - Q_i) (the
    paper: 0.1)."""
    n_step: int = 100
    """N of the N-step targets (the paper: 100)."""
    discount: float = 0.99
    """gamma (the paper: 0.99)."""
    replay_size: int = 100_000
    """Items (observation, action, N-step target) the replay keeps (the paper: 10^5)."""
    batch_size: int = 32
    """Replay items per gradient step (the paper: 32)."""
    learning_starts: int = 1000
    """Replay items needed before the first gradient step (the paper does not print its value)."""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """Optax optimiser of the embedding network."""
    learning_rate: float = 1e-4
    """Step size of the embedding network (the paper used RMSProp; its rate is not printed)."""
    memory_learning_rate: float = 0.01
    """SGD step size on the keys and values of the neighbours a minibatch lookup used (per item
    of the half squared error); 0 leaves the memories to the tabular writes."""
    epsilon_start: float = 1.0
    """Exploration rate at the first step."""
    epsilon_end: float = 0.001
    """Exploration rate after the decay (the paper: "a low epsilon", tuned)."""
    epsilon_decay_steps: int = 20_000
    """Environment steps (summed over environments) of the linear decay; 0: ``epsilon_end``."""
    seed: int = 0
    """Random seed; the same config and seed give the same numbers."""

    def __post_init__(self):
        common.check_common(self)
        check_positive_ints(
            self,
            "key_size",
            "capacity",
            "num_neighbours",
            "n_step",
            "replay_size",
            "batch_size",
            "learning_starts",
        )
        check_layer_sizes(self)
        common.check_at_most(self, "num_neighbours", "capacity")
        common.check_at_most(self, "batch_size", "replay_size")
        common.check_at_most(self, "learning_starts", "replay_size")
        check_positive(self, "delta", "learning_rate")
        check_unit_interval(self, "tabular_learning_rate")
        check_non_negative(self, "memory_learning_rate")
        check_choice(self, "optimizer", ("adam", "rmsprop"))


def make_optimizer(name: str, learning_rate: float) -> optax.GradientTransformation:
    if name == "adam":
        return optax.adam(learning_rate)
    return optax.rmsprop(learning_rate, decay=0.95, eps=0.01)


@struct.dataclass
class Pending:
    """The last ``n_step`` steps of each environment awaiting their target (slot = step mod N):
    observation, key, action, discounted rewards so far, how many rewards, and whether the slot
    holds a step not yet written."""

    obs: jax.Array  # [E, N, D]
    keys: jax.Array  # [E, N, P]
    actions: jax.Array  # [E, N]
    returns: jax.Array  # [E, N]
    counts: jax.Array  # [E, N] int32
    active: jax.Array  # [E, N] bool


@struct.dataclass
class TrainState:
    network: Any
    opt_state: Any
    memories: dnd.DND  # one dictionary per action, stacked: keys [A, C, P]
    replay: common.Ring  # {"obs": [D], "action": [], "target": []}
    pending: Pending
    env_state: Any  # [E]
    obs: jax.Array  # [E, D]
    running_return: jax.Array  # [E]
    last_return: jax.Array
    step: jax.Array  # steps of each environment so far
    update: jax.Array
    key: jax.Array

    @property
    def params(self) -> dict[str, Any]:
        """What the agent acts with: the embedding network and the dictionaries."""
        return {"network": self.network, "memories": self.memories}


class NEC(SeedsOverDevices):
    """Neural episodic control on one discrete-action gymnax environment."""

    progress_metric = "episode_return"

    def __init__(self, config: Config, devices: list | None = None):
        self.config = config
        self.env = common.DiscreteEnv(config.env)
        self.num_actions = self.env.num_actions
        self.torso = common.Torso(tuple(config.hidden_sizes), config.key_size)
        self.optimizer = make_optimizer(config.optimizer, config.learning_rate)
        self.devices = list(devices or jax.local_devices())[:1]
        self._chunks: dict[int, Callable] = {}

    @property
    def steps_per_update(self) -> int:
        return self.config.num_envs * self.config.rollout_length

    # --- the agent's maths ---------------------------------------------------------------------
    def lookup(self, memories: dnd.DND, key: jax.Array) -> dnd.Lookup:
        """Every action's dictionary queried with one key: ``value`` is ``Q(s, .)``."""
        c = self.config
        return common.lookup_actions(memories, key, c.num_neighbours, c.delta, "inverse_distance")

    def q_values(self, params, obs: jax.Array) -> jax.Array:
        return self.lookup(params["memories"], self.torso.apply(params["network"], obs)).value

    def act(self, params, obs: jax.Array, key: jax.Array, epsilon: float = 0.0) -> jax.Array:
        return common.epsilon_greedy(key, self.q_values(params, obs), epsilon)

    def minibatch_loss(self, network, neighbour_keys, neighbour_values, batch, valid):
        """``mean_b (Q(s_b, a_b) - Q^(N)_b)^2 / 2`` with ``Q`` from the given neighbours' keys
        ``[B, p, P]`` and values ``[B, p]`` of each item's action dictionary: a function of the
        network and of those keys and values, so one gradient reaches all three."""
        c = self.config
        h = self.torso.apply(network, batch["obs"])

        def q(h, keys, values, ok):
            d = jnp.sum((keys - h) ** 2, -1)
            return jnp.sum(dnd.kernel_weights(d, ok, c.delta) * values)

        errors = jax.vmap(q)(h, neighbour_keys, neighbour_values, valid) - batch["target"]
        return 0.5 * jnp.mean(errors**2)

    def learn(self, network, opt_state, memories: dnd.DND, batch, apply=True):
        """One gradient step on a replay minibatch (applied where ``apply``): Adam/RMSProp on the
        network, SGD on the keys and values of the neighbours the lookups used (scatter-added,
        so a slot used by several items gets the sum of their steps)."""
        c = self.config
        h = self.torso.apply(network, batch["obs"])
        # Each item searches its own action's dictionary only.
        indices, valid = dnd.nearest_batch(memories, h, c.num_neighbours, batch["action"])
        actions = jnp.broadcast_to(batch["action"][:, None], indices.shape)
        keys = memories.keys[actions, indices]
        values = memories.values[actions, indices]
        loss, (g_net, g_keys, g_values) = jax.value_and_grad(self.minibatch_loss, (0, 1, 2))(
            network, keys, values, batch, valid
        )
        updates, new_opt_state = self.optimizer.update(g_net, opt_state, network)
        network, opt_state = jax.lax.cond(
            apply,
            lambda: (optax.apply_updates(network, updates), new_opt_state),
            lambda: (network, opt_state),
        )
        # The loss is a mean over the batch: the per-item step is batch_size times its gradient.
        step = jnp.where(apply, c.memory_learning_rate * c.batch_size, 0.0)
        memories = memories.replace(
            keys=memories.keys.at[actions, indices].add(-step * g_keys),
            values=memories.values.at[actions, indices].add(-step * g_values),
        )
        return network, opt_state, memories, loss

    def _write(self, memories, actions, keys, targets, mask):
        c = self.config
        return common.write_memories(
            memories, actions, keys, targets, mask, "blend", c.tabular_learning_rate
        )

    # --- the learner ---------------------------------------------------------------------------
    def init(self, seed: int | None = None) -> TrainState:
        seed = self.config.seed if seed is None else seed
        return self.place(jax.jit(self._init)(jax.random.PRNGKey(seed)))

    def _init(self, key: jax.Array) -> TrainState:
        c, env = self.config, self.env
        k_net, k_reset, k_run = jax.random.split(key, 3)
        e, n, d = c.num_envs, c.n_step, env.observation_size
        network = self.torso.init(k_net, jnp.zeros((d,), jnp.float32))
        obs, env_state = jax.vmap(env.reset)(jax.random.split(k_reset, e))
        example = {
            "obs": jnp.zeros((d,), jnp.float32),
            "action": jnp.int32(0),
            "target": jnp.float32(0.0),
        }
        pending = Pending(
            obs=jnp.zeros((e, n, d), jnp.float32),
            keys=jnp.zeros((e, n, c.key_size), jnp.float32),
            actions=jnp.zeros((e, n), jnp.int32),
            returns=jnp.zeros((e, n), jnp.float32),
            counts=jnp.zeros((e, n), jnp.int32),
            active=jnp.zeros((e, n), bool),
        )
        return TrainState(
            network=network,
            opt_state=self.optimizer.init(network),
            memories=common.init_memories(self.num_actions, c.capacity, c.key_size),
            replay=common.ring_init(example, c.replay_size),
            pending=pending,
            env_state=env_state,
            obs=obs,
            running_return=jnp.zeros((e,), jnp.float32),
            last_return=jnp.float32(0.0),
            step=jnp.int32(0),
            update=jnp.int32(0),
            key=k_run,
        )

    def place(self, state: TrainState) -> TrainState:
        return jax.device_put(state, self.devices[0])

    def _env_step(self, carry, key):
        state, total, count = carry
        c = self.config
        e, n = c.num_envs, c.n_step
        k_act, k_env = jax.random.split(key)
        memories, pending, replay = state.memories, state.pending, state.replay
        h = self.torso.apply(state.network, state.obs)  # [E, P]
        look = jax.vmap(lambda hq: self.lookup(memories, hq))(h)  # fields [E, A, ...]
        q = look.value

        # The neighbours just used become recently used (LRU), before any write can evict them.
        flat = lambda x: jnp.swapaxes(x, 0, 1).reshape(self.num_actions, -1)  # noqa: E731
        memories = jax.vmap(dnd.mark_used)(memories, flat(look.indices), flat(look.valid))

        # The step taken N steps ago (same slot) is completed with gamma^N max_a Q(s_t, a); it is
        # written below, with the steps that episode ends complete.
        slot = state.step % n
        due = {
            "obs": pending.obs[:, slot],
            "action": pending.actions[:, slot],
            "key": pending.keys[:, slot],
            "target": pending.returns[:, slot] + c.discount**n * jnp.max(q, -1),
            "mask": pending.active[:, slot],
        }

        epsilon = common.linear_epsilon(
            state.step * e, c.epsilon_start, c.epsilon_end, c.epsilon_decay_steps
        )
        actions = jax.vmap(common.epsilon_greedy, (0, 0, None))(
            jax.random.split(k_act, e), q, epsilon
        )
        next_obs, env_state, reward, terminated, truncated, final_obs = jax.vmap(self.env.step)(
            jax.random.split(k_env, e), state.env_state, actions
        )

        # This step joins the pending ones; every pending step collects gamma^count r.
        pending = Pending(
            obs=pending.obs.at[:, slot].set(state.obs),
            keys=pending.keys.at[:, slot].set(h),
            actions=pending.actions.at[:, slot].set(actions),
            returns=pending.returns.at[:, slot].set(0.0),
            counts=pending.counts.at[:, slot].set(0),
            active=pending.active.at[:, slot].set(True),
        )
        pending = pending.replace(
            returns=pending.returns
            + jnp.where(pending.active, c.discount**pending.counts * reward[:, None], 0.0),
            counts=pending.counts + pending.active,
        )

        # An episode end completes every pending step of its environment, oldest first.
        done = terminated | truncated
        cut = truncated & ~terminated

        def final_values(_):
            return jnp.max(
                self.lookup_many(memories, self.torso.apply(state.network, final_obs)).value, -1
            )

        bootstrap = jax.lax.cond(
            jnp.any(cut), final_values, lambda _: jnp.zeros((e,), jnp.float32), None
        )
        bootstrap = jnp.where(cut, bootstrap, 0.0)
        order = (slot + 1 + jnp.arange(n)) % n
        ended = {
            "obs": pending.obs[:, order],
            "action": pending.actions[:, order],
            "key": pending.keys[:, order],
            "target": pending.returns[:, order]
            + c.discount ** pending.counts[:, order] * bootstrap[:, None],
            "mask": pending.active[:, order] & done[:, None],
        }

        # One sequence of writes: the due steps (environment order), then the ended episodes'
        # steps (environment order, oldest first). The replay gets the same items in that order.
        items = jax.tree.map(
            lambda a, b: jnp.concatenate([a, b.reshape(e * n, *b.shape[2:])]), due, ended
        )
        memories = self._write(
            memories, items["action"], items["key"], items["target"], items["mask"]
        )
        replay = common.ring_add(
            replay,
            {"obs": items["obs"], "action": items["action"], "target": items["target"]},
            items["mask"],
        )
        pending = pending.replace(active=pending.active & ~done[:, None])

        running, total, count = common.track_returns(
            state.running_return, reward, done, total, count
        )
        state = state.replace(
            memories=memories,
            replay=replay,
            pending=pending,
            env_state=env_state,
            obs=next_obs,
            running_return=running,
            step=state.step + 1,
        )
        return (state, total, count), (epsilon, jnp.mean(q))

    def lookup_many(self, memories: dnd.DND, keys: jax.Array) -> dnd.Lookup:
        """A batch of keys ``[B, P]`` against every action's dictionary: fields ``[B, A, ...]``."""
        c = self.config
        return common.lookup_actions_batch(
            memories, keys, c.num_neighbours, c.delta, "inverse_distance"
        )

    def _update(self, state: TrainState, _):
        c = self.config
        key = jax.random.fold_in(state.key, state.update)
        k_steps, k_batch = jax.random.split(key)
        carry = (state, jnp.float32(0.0), jnp.int32(0))
        (state, total, count), (epsilon, q_mean) = jax.lax.scan(
            self._env_step, carry, jax.random.split(k_steps, c.rollout_length)
        )

        # The step is computed from the start and applied once the replay is ready (a cond over
        # the small network state only).
        ready = state.replay.size >= c.learning_starts
        batch = common.ring_sample(state.replay, k_batch, c.batch_size)
        network, opt_state, memories, loss = self.learn(
            state.network, state.opt_state, state.memories, batch, ready
        )
        loss = jnp.where(ready, loss, 0.0)
        state = state.replace(network=network, opt_state=opt_state, memories=memories)
        last_return = jnp.where(count > 0, total / jnp.maximum(count, 1), state.last_return)
        metrics = {
            "episode_return": last_return,
            "episodes": count,
            "epsilon": epsilon[-1],
            "loss": loss,
            "q_mean": jnp.mean(q_mean),
            "memory_fill": jnp.mean(state.memories.size) / c.capacity,
        }
        return state.replace(last_return=last_return, update=state.update + 1), metrics

    def train_chunk(self, state: TrainState, num_updates: int):
        return scanned_chunk(self._chunks, self._update, state, num_updates)

    # --- evaluation ----------------------------------------------------------------------------
    def episode_returns(
        self, params, num_episodes: int, key: jax.Array, epsilon: float = 0.0
    ) -> jax.Array:
        """Returns of ``num_episodes`` fresh episodes acting epsilon-greedily (greedy by default)
        with ``params``; the memories are read, not written."""
        return common.episode_returns(
            self.env, lambda p, o, k: self.act(p, o, k, epsilon), params, num_episodes, key
        )

    def agent(self, params, name: str | None = None, epsilon: float = 0.0):
        """The trained agent as an ``Agent`` acting on ``TrialObs.obs`` (read-only memories)."""
        c = self.config
        kind_key = (
            "nec",
            c.env,
            tuple(c.hidden_sizes),
            c.key_size,
            c.capacity,
            c.num_neighbours,
            c.delta,
            float(epsilon),
        )
        return common.trial_agent(
            kind_key,
            lambda p, o, k: self.act(p, o, k, epsilon),
            self.env.observation_size,
            params,
            name or "nec",
        )
