"""DQN, the baseline of the episodic-control comparisons, with NEC's torso and update budget.

Mnih et al. 2015, "Human-level control through deep reinforcement learning" (Nature 518): a Q
network trained on uniform replay minibatches towards ``r + gamma max_a' Q_target(s', a')`` with a
periodically copied target network, the Huber loss and epsilon-greedy actions annealed linearly.
Pritzel et al. 2017 (NEC, arXiv 1703.01988, experiments) compare NEC with DQN; here the network is
NEC's embedding torso (``common.Torso``: the same hidden layers and key size) with a ReLU and a
linear Q head on top, and one update is the same ``num_envs * rollout_length`` environment steps
and one gradient step as an NEC update, so equal configs give equal budgets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from flax import struct

from learn2rl.learners.base import (
    ConfigMixin,
    SeedsOverDevices,
    check_choice,
    check_layer_sizes,
    check_positive,
    check_positive_ints,
    scanned_chunk,
)
from learn2rl.learners.episodic import common
from learn2rl.learners.episodic.nec import make_optimizer


@dataclass(frozen=True)
class Config(ConfigMixin):
    """DQN settings, matched to NEC's defaults: Breakout-MinAtar, one environment, a gradient
    step every 4 steps, 200k environment steps."""

    learner = "dqn"

    env: str = "Breakout-MinAtar"
    """A gymnax environment with discrete actions (``metagradient.GYMNAX_DISCRETE``); observations
    are flattened."""
    num_updates: int = 50_000
    """Updates in a run (each ``num_envs * rollout_length`` environment steps and one gradient
    step)."""
    updates_per_chunk: int = 1000
    """Updates per jitted chunk."""
    num_envs: int = 1
    """Parallel environments."""
    rollout_length: int = 4
    """Steps of each environment per gradient step (Mnih et al.: 4)."""
    hidden_sizes: tuple[int, ...] = (128,)
    """ReLU layers of the torso (NEC's embedding network) before its linear key layer."""
    key_size: int = 64
    """Width of the torso's last layer (NEC's key size); a ReLU and the Q head follow."""
    discount: float = 0.99
    """gamma."""
    replay_size: int = 100_000
    """Transitions the replay keeps."""
    batch_size: int = 32
    """Transitions per gradient step (Mnih et al.: 32)."""
    learning_starts: int = 1000
    """Transitions needed before the first gradient step."""
    target_update_period: int = 250
    """Updates between copies of the online network into the target network (250 updates =
    1000 environment steps at the defaults)."""
    huber_delta: float = 1.0
    """Width of the quadratic part of the Huber loss (Mnih et al.: error clipping at 1)."""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """Optax optimiser."""
    learning_rate: float = 1e-4
    """Step size."""
    epsilon_start: float = 1.0
    """Exploration rate at the first step."""
    epsilon_end: float = 0.01
    """Exploration rate after the decay."""
    epsilon_decay_steps: int = 20_000
    """Environment steps (summed over environments) of the linear decay; 0: ``epsilon_end``."""
    seed: int = 0
    """Random seed; the same config and seed give the same numbers."""

    def __post_init__(self):
        common.check_common(self)
        check_positive_ints(
            self, "key_size", "replay_size", "batch_size", "learning_starts", "target_update_period"
        )
        check_layer_sizes(self)
        common.check_at_most(self, "batch_size", "replay_size")
        common.check_at_most(self, "learning_starts", "replay_size")
        check_positive(self, "learning_rate", "huber_delta")
        check_choice(self, "optimizer", ("adam", "rmsprop"))


class QNetwork(nn.Module):
    """``obs -> Q(obs, .)``: NEC's torso, a ReLU, a linear head."""

    hidden_sizes: tuple[int, ...]
    key_size: int
    num_actions: int

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        h = common.Torso(self.hidden_sizes, self.key_size)(obs)
        return nn.Dense(self.num_actions)(nn.relu(h))


@struct.dataclass
class TrainState:
    network: Any
    target_network: Any
    opt_state: Any
    replay: common.Ring  # {"obs", "action", "reward", "next_obs", "terminated"}
    env_state: Any  # [E]
    obs: jax.Array  # [E, D]
    running_return: jax.Array  # [E]
    last_return: jax.Array
    step: jax.Array  # steps of each environment so far
    update: jax.Array
    key: jax.Array

    @property
    def params(self) -> dict[str, Any]:
        return {"network": self.network}


class DQN(SeedsOverDevices):
    """DQN on one discrete-action gymnax environment."""

    progress_metric = "episode_return"

    def __init__(self, config: Config, devices: list | None = None):
        self.config = config
        self.env = common.DiscreteEnv(config.env)
        self.num_actions = self.env.num_actions
        self.net = QNetwork(tuple(config.hidden_sizes), config.key_size, self.num_actions)
        self.optimizer = make_optimizer(config.optimizer, config.learning_rate)
        self.devices = list(devices or jax.local_devices())[:1]
        self._chunks: dict[int, Callable] = {}

    @property
    def steps_per_update(self) -> int:
        return self.config.num_envs * self.config.rollout_length

    def q_values(self, params, obs: jax.Array) -> jax.Array:
        return self.net.apply(params["network"], obs)

    def act(self, params, obs: jax.Array, key: jax.Array, epsilon: float = 0.0) -> jax.Array:
        return common.epsilon_greedy(key, self.q_values(params, obs), epsilon)

    def loss(self, network, target_network, batch) -> jax.Array:
        """Mean Huber loss of ``Q(s, a) - (r + gamma (1 - terminated) max_a' Q_target(s', a'))``."""
        c = self.config
        q = self.net.apply(network, batch["obs"])
        q_taken = jnp.take_along_axis(q, batch["action"][:, None], -1)[:, 0]
        next_q = jnp.max(self.net.apply(target_network, batch["next_obs"]), -1)
        target = batch["reward"] + c.discount * (1.0 - batch["terminated"]) * next_q
        errors = q_taken - jax.lax.stop_gradient(target)
        return jnp.mean(optax.huber_loss(errors, delta=c.huber_delta))

    # --- the learner ---------------------------------------------------------------------------
    def init(self, seed: int | None = None) -> TrainState:
        seed = self.config.seed if seed is None else seed
        return self.place(jax.jit(self._init)(jax.random.PRNGKey(seed)))

    def _init(self, key: jax.Array) -> TrainState:
        c, env = self.config, self.env
        k_net, k_reset, k_run = jax.random.split(key, 3)
        d = env.observation_size
        network = self.net.init(k_net, jnp.zeros((d,), jnp.float32))
        obs, env_state = jax.vmap(env.reset)(jax.random.split(k_reset, c.num_envs))
        example = {
            "obs": jnp.zeros((d,), jnp.float32),
            "action": jnp.int32(0),
            "reward": jnp.float32(0.0),
            "next_obs": jnp.zeros((d,), jnp.float32),
            "terminated": jnp.float32(0.0),
        }
        return TrainState(
            network=network,
            target_network=network,
            opt_state=self.optimizer.init(network),
            replay=common.ring_init(example, c.replay_size),
            env_state=env_state,
            obs=obs,
            running_return=jnp.zeros((c.num_envs,), jnp.float32),
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
        e = c.num_envs
        k_act, k_env = jax.random.split(key)
        q = self.net.apply(state.network, state.obs)
        epsilon = common.linear_epsilon(
            state.step * e, c.epsilon_start, c.epsilon_end, c.epsilon_decay_steps
        )
        actions = jax.vmap(common.epsilon_greedy, (0, 0, None))(
            jax.random.split(k_act, e), q, epsilon
        )
        next_obs, env_state, reward, terminated, truncated, final_obs = jax.vmap(self.env.step)(
            jax.random.split(k_env, e), state.env_state, actions
        )
        replay = common.ring_add(
            state.replay,
            {
                "obs": state.obs,
                "action": actions,
                "reward": reward,
                "next_obs": final_obs,
                "terminated": terminated.astype(jnp.float32),
            },
            jnp.ones((e,), bool),
        )
        done = terminated | truncated
        running, total, count = common.track_returns(
            state.running_return, reward, done, total, count
        )
        state = state.replace(
            replay=replay,
            env_state=env_state,
            obs=next_obs,
            running_return=running,
            step=state.step + 1,
        )
        return (state, total, count), (epsilon, jnp.mean(q))

    def _update(self, state: TrainState, _):
        c = self.config
        key = jax.random.fold_in(state.key, state.update)
        k_steps, k_batch = jax.random.split(key)
        carry = (state, jnp.float32(0.0), jnp.int32(0))
        (state, total, count), (epsilon, q_mean) = jax.lax.scan(
            self._env_step, carry, jax.random.split(k_steps, c.rollout_length)
        )

        def learn(state):
            batch = common.ring_sample(state.replay, k_batch, c.batch_size)
            loss, grads = jax.value_and_grad(self.loss)(state.network, state.target_network, batch)
            updates, opt_state = self.optimizer.update(grads, state.opt_state, state.network)
            network = optax.apply_updates(state.network, updates)
            return state.replace(network=network, opt_state=opt_state), loss

        ready = state.replay.size >= c.learning_starts
        state, loss = jax.lax.cond(ready, learn, lambda s: (s, jnp.float32(0.0)), state)
        update = state.update + 1
        copy = update % c.target_update_period == 0
        target = jax.tree.map(
            lambda online, old: jnp.where(copy, online, old), state.network, state.target_network
        )
        last_return = jnp.where(count > 0, total / jnp.maximum(count, 1), state.last_return)
        metrics = {
            "episode_return": last_return,
            "episodes": count,
            "epsilon": epsilon[-1],
            "loss": loss,
            "q_mean": jnp.mean(q_mean),
        }
        state = state.replace(target_network=target, last_return=last_return, update=update)
        return state, metrics

    def train_chunk(self, state: TrainState, num_updates: int):
        return scanned_chunk(self._chunks, self._update, state, num_updates)

    # --- evaluation ----------------------------------------------------------------------------
    def episode_returns(
        self, params, num_episodes: int, key: jax.Array, epsilon: float = 0.0
    ) -> jax.Array:
        """Returns of ``num_episodes`` fresh episodes acting epsilon-greedily (greedy by
        default)."""
        return common.episode_returns(
            self.env, lambda p, o, k: self.act(p, o, k, epsilon), params, num_episodes, key
        )

    def agent(self, params, name: str | None = None, epsilon: float = 0.0):
        """The trained Q network as an ``Agent`` acting on ``TrialObs.obs``."""
        c = self.config
        kind_key = ("dqn", c.env, tuple(c.hidden_sizes), c.key_size, float(epsilon))
        return common.trial_agent(
            kind_key,
            lambda p, o, k: self.act(p, o, k, epsilon),
            self.env.observation_size,
            params,
            name or "dqn",
        )
