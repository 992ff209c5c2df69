"""One off-policy actor-critic agent as pure functions: TD3 / DDPG pieces that TD3, DDPG and
MetaGenRL's population share.

An ``AgentState`` is everything one agent owns: a deterministic policy ``pi(s) = tanh(MLP(s))``
in normalised action units, twin critics ``Q1, Q2`` (stacked on a leading axis of 2, so both are
one ``vmap``), their target copies, two Adam states, a replay buffer and the environment it is
stepping. ``AgentCore(env, settings)`` builds the functions; callers ``vmap`` them over a
population and ``scan`` them over steps. What the policy is trained *on* is the caller's choice:
``policy_step`` takes any loss of the policy parameters (DDPG's ``-Q1(s, pi(s))``, a learned
objective, off-policy REINFORCE).

TD3 (Fujimoto et al. 2018) as configured here: clipped double-Q targets
``r + gamma (1 - terminated) min_j Q'_j(s', clip(pi'(s') + clip(N(0, 0.2), -0.5, 0.5), -1, 1))``,
the policy and the targets (Polyak, tau 0.005) updated every ``policy_delay`` critic updates.
DDPG (Lillicrap et al. 2016) is the same with one critic (``twin=False``), no target-policy noise
and ``policy_delay = 1``. Exploration: uniform random actions for the first ``random_steps`` steps,
then ``pi(s)`` plus Gaussian noise of ``exploration_noise`` (normalised units), clipped to [-1, 1].
Only ``terminated`` stops bootstrapping; a time limit (``truncated``) does not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from learn2rl.learners.offpolicy import replay
from learn2rl.nets.mlp import MLP
from learn2rl.tasks.adapters import ContinuousEnv


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """The mean of ``x`` over the entries where ``mask`` is 1 (0 if there are none)."""
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def nanmean_or_zero(x: jax.Array) -> jax.Array:
    """The mean of the non-NaN entries (steps that ran no loss are NaN), 0 if there are none."""
    valid = ~jnp.isnan(x)
    return jnp.where(valid, x, 0.0).sum() / jnp.maximum(valid.sum(), 1)


@dataclass(frozen=True)
class AgentSettings:
    """The hyperparameters of one agent (the learners' configs fill them in)."""

    hidden_sizes: tuple[int, ...] = (256, 256)
    layer_norm: bool = False
    policy_learning_rate: float = 3e-4
    critic_learning_rate: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    twin: bool = True
    target_noise: float = 0.2
    target_noise_clip: float = 0.5
    exploration_noise: float = 0.1
    random_steps: int = 1000
    buffer_size: int = 100_000
    max_grad_norm: float | None = None  # global-norm clip of the policy's gradient

    @classmethod
    def from_config(cls, config: Any, **fixed: Any) -> AgentSettings:
        """The settings a learner config gives: every field above that the config has (by
        name), then ``fixed``; the rest keep their defaults."""
        values = {f.name: getattr(config, f.name) for f in fields(cls) if hasattr(config, f.name)}
        values["hidden_sizes"] = tuple(values["hidden_sizes"])
        return cls(**{**values, **fixed})


@struct.dataclass
class AgentState:
    policy: Any
    critics: Any  # two critics' parameters stacked on a leading axis of 2
    target_policy: Any
    target_critics: Any
    policy_opt: Any
    critic_opt: Any
    buffer: replay.ReplayBuffer
    env_state: Any
    obs: jax.Array
    steps: jax.Array  # int32: environment steps taken
    episode_return: jax.Array  # float32: return of the episode in progress
    last_return: jax.Array  # float32: return of the last finished episode (0 before the first)
    episodes: jax.Array  # int32: finished episodes


class AgentCore:
    """The pure functions of one agent on ``env`` with ``settings``."""

    def __init__(self, env: ContinuousEnv, settings: AgentSettings):
        self.env = env
        self.eval_env = env.for_evaluation()
        self.settings = settings
        s = settings
        self.policy_net = MLP(env.action_size, s.hidden_sizes, layer_norm=s.layer_norm)
        self.critic_net = MLP(1, s.hidden_sizes, layer_norm=s.layer_norm)
        clip = [optax.clip_by_global_norm(s.max_grad_norm)] if s.max_grad_norm else []
        self.policy_tx = optax.chain(*clip, optax.adam(s.policy_learning_rate))
        self.critic_tx = optax.adam(s.critic_learning_rate)  # the official code clips only pi

    # --- networks ------------------------------------------------------------------------------
    def act(self, policy_params, obs: jax.Array) -> jax.Array:
        """The deterministic action ``tanh(MLP(obs))`` in [-1, 1] (any leading batch shape)."""
        return jnp.tanh(self.policy_net.apply(policy_params, obs))

    def q(self, critic_params, obs: jax.Array, action: jax.Array) -> jax.Array:
        """One critic's ``Q(s, a)`` (leading batch shape of ``obs``)."""
        return self.critic_net.apply(critic_params, jnp.concatenate([obs, action], -1))[..., 0]

    def q1(self, critics, obs, action):
        return self.q(jax.tree_util.tree_map(lambda p: p[0], critics), obs, action)

    # --- state -------------------------------------------------------------------------------
    def init(self, key: jax.Array) -> AgentState:
        env, s = self.env, self.settings
        k_pi, k_q, k_env = jax.random.split(key, 3)
        obs0 = jnp.zeros((env.observation_size,), jnp.float32)
        act0 = jnp.zeros((env.action_size,), jnp.float32)
        policy = self.policy_net.init(k_pi, obs0)
        critics = jax.vmap(lambda k: self.critic_net.init(k, jnp.concatenate([obs0, act0])))(
            jax.random.split(k_q, 2)
        )
        obs, env_state = env.reset(k_env)
        return AgentState(
            policy=policy,
            critics=critics,
            target_policy=policy,
            target_critics=critics,
            policy_opt=self.policy_tx.init(policy),
            critic_opt=self.critic_tx.init(critics),
            buffer=replay.init(s.buffer_size, env.observation_size, env.action_size),
            env_state=env_state,
            obs=obs,
            steps=jnp.int32(0),
            episode_return=jnp.float32(0.0),
            last_return=jnp.float32(0.0),
            episodes=jnp.int32(0),
        )

    def reset_policy(self, state: AgentState, key: jax.Array) -> AgentState:
        """``state`` with a freshly initialised policy (and target policy and optimizer state);
        critics, buffer and environment are kept."""
        policy = self.policy_net.init(key, jnp.zeros((self.env.observation_size,), jnp.float32))
        return state.replace(
            policy=policy, target_policy=policy, policy_opt=self.policy_tx.init(policy)
        )

    # --- acting ------------------------------------------------------------------------------
    def collect(self, state: AgentState, key: jax.Array) -> tuple[AgentState, jax.Array]:
        """One environment step with exploration; the transition goes to the buffer, the
        environment resets after an episode ends. Returns the new state and whether an episode
        finished on this step."""
        env, s = self.env, self.settings
        k_rand, k_noise, k_step = jax.random.split(key, 3)
        noisy = self.act(state.policy, state.obs) + s.exploration_noise * jax.random.normal(
            k_noise, (env.action_size,)
        )
        uniform = jax.random.uniform(k_rand, (env.action_size,), minval=-1.0, maxval=1.0)
        action = jnp.where(state.steps < s.random_steps, uniform, jnp.clip(noisy, -1.0, 1.0))
        next_obs, env_state, reward, terminated, truncated, obs = env.step_and_reset(
            k_step, state.env_state, action
        )
        done = jnp.logical_or(terminated, truncated)
        buffer = replay.add(
            state.buffer,
            replay.Transition(
                obs=state.obs,
                action=action,
                reward=reward,
                next_obs=next_obs,
                terminated=terminated.astype(jnp.float32),
                episode_end=done.astype(jnp.float32),
            ),
        )
        episode_return = state.episode_return + reward
        state = state.replace(
            buffer=buffer,
            env_state=env_state,
            obs=obs,
            steps=state.steps + 1,
            episode_return=jnp.where(done, 0.0, episode_return),
            last_return=jnp.where(done, episode_return, state.last_return),
            episodes=state.episodes + done.astype(jnp.int32),
        )
        return state, done

    # --- learning ----------------------------------------------------------------------------
    def critic_step(
        self, state: AgentState, batch: replay.Transition, mask: jax.Array, key: jax.Array
    ) -> tuple[AgentState, jax.Array]:
        """One TD step of the critics on ``batch`` (any leading shape; ``mask`` weights the
        entries). Returns the new state and the loss."""
        s = self.settings
        next_action = self.act(state.target_policy, batch.next_obs)
        if s.target_noise > 0:
            noise = jnp.clip(
                s.target_noise * jax.random.normal(key, next_action.shape),
                -s.target_noise_clip,
                s.target_noise_clip,
            )
            next_action = jnp.clip(next_action + noise, -1.0, 1.0)
        target_q = jax.vmap(self.q, in_axes=(0, None, None))(
            state.target_critics, batch.next_obs, next_action
        )
        next_value = jnp.min(target_q, axis=0) if s.twin else target_q[0]
        target = batch.reward + s.gamma * (1.0 - batch.terminated) * next_value
        target = jax.lax.stop_gradient(target)
        used = 2 if s.twin else 1

        def loss_fn(critics):
            q = jax.vmap(self.q, in_axes=(0, None, None))(critics, batch.obs, batch.action)
            return sum(masked_mean(jnp.square(q[j] - target), mask) for j in range(used))

        loss, grads = jax.value_and_grad(loss_fn)(state.critics)
        updates, critic_opt = self.critic_tx.update(grads, state.critic_opt, state.critics)
        return state.replace(
            critics=optax.apply_updates(state.critics, updates), critic_opt=critic_opt
        ), loss

    def ddpg_loss(self, policy_params, critics, batch: replay.Transition, mask) -> jax.Array:
        """DDPG's policy loss: ``-mean Q1(s, pi(s))`` over the valid entries."""
        q = self.q1(critics, batch.obs, self.act(policy_params, batch.obs))
        return -masked_mean(q, mask)

    def policy_step(
        self, state: AgentState, loss_fn: Callable[[Any], jax.Array]
    ) -> tuple[AgentState, jax.Array]:
        """One Adam step of the policy on ``loss_fn(policy_params)``, then the Polyak update of
        the target networks. Returns the new state and the loss."""
        loss, grads = jax.value_and_grad(loss_fn)(state.policy)
        updates, policy_opt = self.policy_tx.update(grads, state.policy_opt, state.policy)
        policy = optax.apply_updates(state.policy, updates)
        tau = self.settings.tau
        soft = lambda t, p: (1.0 - tau) * t + tau * p  # noqa: E731
        return state.replace(
            policy=policy,
            policy_opt=policy_opt,
            target_policy=jax.tree_util.tree_map(soft, state.target_policy, policy),
            target_critics=jax.tree_util.tree_map(soft, state.target_critics, state.critics),
        ), loss

    # --- evaluation --------------------------------------------------------------------------
    def episode_return(self, policy_params, key: jax.Array) -> jax.Array:
        """The return of one episode of the deterministic policy (no exploration noise), on the
        environment's evaluation copy (``ContinuousEnv.for_evaluation``)."""
        env = self.eval_env

        def step(carry, k):
            obs, env_state, total, alive = carry
            next_obs, env_state, reward, terminated, truncated = env.step(
                k, env_state, self.act(policy_params, obs)
            )
            total = total + jnp.where(alive, reward, 0.0)
            alive = jnp.logical_and(alive, jnp.logical_not(jnp.logical_or(terminated, truncated)))
            return (next_obs, env_state, total, alive), None

        k_reset, k_steps = jax.random.split(key)
        obs, env_state = env.reset(k_reset)
        carry = (obs, env_state, jnp.float32(0.0), jnp.asarray(True))
        (_, _, total, _), _ = jax.lax.scan(
            step, carry, jax.random.split(k_steps, env.max_episode_steps)
        )
        return total
