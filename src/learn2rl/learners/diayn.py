"""DIAYN: skills learned without a reward, by making them distinguishable from their states.

Eysenbach, Gupta, Ibarz & Levine 2019, "Diversity is All You Need: Learning Skills without a Reward
Function" (ICLR 2019, arXiv 1802.06070). A skill ``z`` is drawn from a fixed uniform prior
``p(z)`` over ``num_skills`` skills at the start of each episode and held for the whole episode;
the policy ``pi(a | s, z)`` sees the skill as a one-hot vector next to the observation. A
discriminator ``q(z | s)`` (an MLP with a softmax over skills) learns, by cross-entropy, which
skill visited a state; the policy is rewarded for visiting states from which its skill can be
told, with the pseudo-reward of the paper's objective

    r(s', z) = log q(z | s') - log p(z),

plus an entropy bonus, so that the skills spread out and each stays as random as it can. The task
family's own reward, goal and termination are ignored: only its dynamics are used, and every
episode runs the family's ``episode_length`` steps.

**Choices here** (docs/learners/diayn.md). The paper trains the policy with SAC; here one update
runs ``num_envs`` whole episodes in parallel (``jax.vmap`` over environments), scores every
transition with the discriminator as it was before the update, and takes PPO epochs (clipped
surrogate, GAE, entropy bonus; ``learn2rl.ops``) on the skill-conditioned Gaussian policy and its
value function, then ``discriminator_steps`` full-batch Adam steps on the discriminator. The
value function also sees the time left in the episode (episodes are fixed-length). One update is
a pure function of the train state and its index (randomness ``fold_in(key, update)``), a chunk
is one ``jit(lax.scan)`` on one device.

``SkillRewardFamily`` (``learn2rl.learners.skills``) turns a trained discriminator into a task
family whose tasks are the skills, the bridge to unsupervised meta-RL (Gupta, Eysenbach, Finn &
Levine 2018, arXiv 1806.04640); ``DIAYN.skill_family(params)`` builds it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.learners.base import (
    ConfigMixin,
    SeedsOverDevices,
    check_layer_sizes,
    check_non_negative,
    check_positive,
    check_positive_ints,
    check_seed,
    check_unit_interval,
    scanned_chunk,
)
from learn2rl.learners.rl2 import action_scale
from learn2rl.nets.mlp import MLP, GaussianMLP
from learn2rl.ops import gaussian
from learn2rl.ops.losses import ppo_clip_objective
from learn2rl.ops.returns import generalized_advantage_estimation
from learn2rl.types import Agent, AgentKind


@dataclass(frozen=True)
class Config(ConfigMixin):
    """DIAYN settings. Defaults: the 2-D point robot, 8 skills, 64 episodes per update, 200
    updates, PPO on the policy and Adam on the discriminator."""

    learner = "diayn"

    task: str = "control/point-goal"
    """A continuous-control task family id (``learn2rl list``); only its dynamics are used (its
    reward, goal and termination are ignored). Options go into the id, e.g.
    ``control/point-goal[episode_length=20]``."""
    num_skills: int = 8
    """Skills under the uniform prior p(z) (at least 2)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layers (tanh) of the skill-conditioned policy and of the value function."""
    discriminator_hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layers (ReLU) of the discriminator q(z | s)."""
    num_envs: int = 64
    """Episodes run in parallel per update, each with a skill drawn from p(z)."""
    num_updates: int = 200
    """Updates in a run (each ``num_envs`` whole episodes)."""
    updates_per_chunk: int = 50
    """Updates per jitted chunk (logging and checkpoints happen between chunks)."""
    learning_rate: float = 3e-3
    """Adam step size of the policy and value function."""
    discriminator_learning_rate: float = 3e-3
    """Adam step size of the discriminator."""
    discriminator_steps: int = 4
    """Full-batch discriminator steps per update, on the update's visited next states."""
    gamma: float = 0.99
    """Discount of the pseudo-reward."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    entropy_coef: float = 0.01
    """Weight of the policy's entropy bonus (the paper's maximum-entropy term)."""
    value_coef: float = 0.5
    """Weight of the value regression loss."""
    ppo_epochs: int = 4
    """PPO passes over each update's episodes."""
    ppo_minibatches: int = 4
    """PPO minibatches (of whole episodes) per epoch; must divide ``num_envs``."""
    ppo_clip: float = 0.2
    """PPO ratio clip epsilon."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip of the policy and value step."""
    init_std: float = 0.5
    """The policy's standard deviation at the start, in units of the half-width of the family's
    action box (a learned, state-independent parameter per action dimension)."""
    seed: int = 0
    """Random seed; the same config and seed give the same numbers."""

    def __post_init__(self):
        if not isinstance(self.task, str) or not self.task:
            raise Learn2RLError(f"config.task must be a task family id, got {self.task!r}")
        check_positive_ints(
            self,
            "num_skills",
            "num_envs",
            "num_updates",
            "updates_per_chunk",
            "discriminator_steps",
            "ppo_epochs",
            "ppo_minibatches",
        )
        if self.num_skills < 2:
            raise Learn2RLError(f"config.num_skills must be at least 2, got {self.num_skills!r}")
        check_layer_sizes(self, "hidden_sizes")
        check_layer_sizes(self, "discriminator_hidden_sizes")
        check_positive(
            self,
            "learning_rate",
            "discriminator_learning_rate",
            "ppo_clip",
            "max_grad_norm",
            "init_std",
        )
        check_unit_interval(self, "gamma", "gae_lambda")
        check_non_negative(self, "entropy_coef", "value_coef")
        check_seed(self)
        if self.num_envs % self.ppo_minibatches:
            raise Learn2RLError(
                f"config.num_envs ({self.num_envs}) must be divisible by config.ppo_minibatches "
                f"({self.ppo_minibatches})"
            )


# --- the discriminator and the pseudo-reward -----------------------------------------------------
def discriminator_network(num_skills: int, hidden_sizes: tuple[int, ...]) -> MLP:
    """The discriminator ``q(z | s)``: an MLP from an observation to ``num_skills`` logits."""
    return MLP(num_skills, tuple(hidden_sizes), "relu")


def pseudo_reward(
    network: nn.Module, disc_params: Any, next_obs: jax.Array, z: jax.Array
) -> jax.Array:
    """``log q(z | s') - log p(z)`` for the uniform prior over the network's skills: the DIAYN
    reward of reaching ``next_obs`` (``[..., observation_size]``) under skill ``z`` (int,
    ``[...]``). Zero everywhere when the discriminator's logits are constant (it tells nothing)."""
    logits = network.apply(disc_params, next_obs)
    num_skills = logits.shape[-1]
    log_q = jnp.take_along_axis(
        jax.nn.log_softmax(logits), jnp.asarray(z, jnp.int32)[..., None], -1
    )[..., 0]
    return log_q + jnp.log(jnp.float32(num_skills))


@struct.dataclass
class Episodes:
    """``num_envs`` episodes of ``T`` steps (time first). ``noise_action`` is the policy's
    sample in units of the action scale (what its log-probability is of)."""

    obs: jax.Array  # [T, N, D]
    noise_action: jax.Array  # [T, N, A]
    log_prob: jax.Array  # [T, N]
    next_obs: jax.Array  # [T, N, D]
    time: jax.Array  # [T, N] float: the step's index / T


@struct.dataclass
class TrainState:
    params: Any  # {"policy", "value", "discriminator"}
    opt_state: Any  # Adam state of policy and value
    disc_opt_state: Any  # Adam state of the discriminator
    update: jax.Array
    key: jax.Array


class DIAYN(SeedsOverDevices):
    """DIAYN on a continuous-control task family (built from ``config.task`` unless given)."""

    progress_metric = "trial_return"

    def __init__(self, config: Config, family: Any = None, devices: list | None = None):
        from learn2rl.tasks import make

        self.config = config
        self.family = make(config.task) if family is None else family
        if not getattr(self.family, "continuous", False):
            raise Learn2RLError(
                f"config.task must be a continuous-control family (DIAYN's Gaussian policy), "
                f"got {config.task!r}"
            )
        family = self.family
        self.episode_length = int(family.episode_length)
        self.episodes_per_trial = 1
        self.observation_size = int(family.observation_size)
        self.action_size = int(family.action_size)
        self.action_scale = action_scale(family)
        k = config.num_skills
        self.policy_net = GaussianMLP(
            self.action_size, tuple(config.hidden_sizes), math.log(config.init_std), "tanh"
        )
        self.value_net = MLP(1, tuple(config.hidden_sizes), "tanh")
        self.discriminator = discriminator_network(k, config.discriminator_hidden_sizes)
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm), optax.adam(config.learning_rate)
        )
        self.disc_optimizer = optax.adam(config.discriminator_learning_rate)
        self.devices = list(devices or jax.local_devices())[:1]
        self._chunks: dict[int, Callable] = {}

    @property
    def steps_per_update(self) -> int:
        return self.config.num_envs * self.episode_length

    # --- networks -------------------------------------------------------------------------------
    def _skill_input(self, obs: jax.Array, z: jax.Array) -> jax.Array:
        onehot = jax.nn.one_hot(z, self.config.num_skills, dtype=jnp.float32)
        return jnp.concatenate([jnp.asarray(obs, jnp.float32), onehot], -1)

    def policy(self, params, obs: jax.Array, z: jax.Array):
        """``(mean, log_std)`` of ``pi(. | s, z)`` in units of the action scale (any batch
        shape of ``obs`` with ``z`` of the same batch shape)."""
        return self.policy_net.apply(params["policy"], self._skill_input(obs, z))

    def value(self, params, obs: jax.Array, z: jax.Array, time: jax.Array) -> jax.Array:
        x = jnp.concatenate([self._skill_input(obs, z), time[..., None]], -1)
        return self.value_net.apply(params["value"], x)[..., 0]

    def pseudo_reward(self, disc_params, next_obs: jax.Array, z: jax.Array) -> jax.Array:
        """``log q(z | s') - log p(z)`` (see the module-level ``pseudo_reward``)."""
        return pseudo_reward(self.discriminator, disc_params, next_obs, z)

    def skill_family(self, params):
        """The task family whose tasks are this run's skills, rewarded by its frozen
        discriminator (``learners.skills.SkillRewardFamily``)."""
        from learn2rl.learners.skills import SkillRewardFamily

        return SkillRewardFamily(
            self.family,
            jax.device_get(params["discriminator"]),
            self.config.num_skills,
            tuple(self.config.discriminator_hidden_sizes),
        )

    # --- state ----------------------------------------------------------------------------------
    def init(self, seed: int | None = None) -> TrainState:
        seed = self.config.seed if seed is None else seed
        return self.place(jax.jit(self._init)(jax.random.PRNGKey(seed)))

    def _init(self, key: jax.Array) -> TrainState:
        k_pi, k_v, k_d, k_run = jax.random.split(key, 4)
        x = jnp.zeros((self.observation_size + self.config.num_skills,), jnp.float32)
        params = {
            "policy": self.policy_net.init(k_pi, x),
            "value": self.value_net.init(k_v, jnp.concatenate([x, jnp.zeros((1,))])),
            "discriminator": self.discriminator.init(
                k_d, jnp.zeros((self.observation_size,), jnp.float32)
            ),
        }
        actor_critic = {"policy": params["policy"], "value": params["value"]}
        return TrainState(
            params=params,
            opt_state=self.optimizer.init(actor_critic),
            disc_opt_state=self.disc_optimizer.init(params["discriminator"]),
            update=jnp.int32(0),
            key=k_run,
        )

    def place(self, state: TrainState) -> TrainState:
        return jax.device_put(state, self.devices[0])

    # --- rollouts -------------------------------------------------------------------------------
    def run_episodes(self, params, key: jax.Array, z: jax.Array, greedy: bool = False) -> Episodes:
        """One whole episode per entry of ``z`` (skills, ``[N]``), each on a freshly drawn
        training task of the family (only its dynamics matter), under ``pi(. | s, z)``."""
        family, n, length = self.family, z.shape[0], self.episode_length
        k_task, k_reset, k_steps = jax.random.split(key, 3)
        tasks = jax.vmap(lambda k: family.sample(k, "train"))(jax.random.split(k_task, n))
        obs, env_state = jax.vmap(family.reset_env)(jax.random.split(k_reset, n), tasks)

        def step(carry, inputs):
            obs, env_state = carry
            t, key = inputs
            k_act, k_env = jax.random.split(key)
            mean, log_std = self.policy(params, obs, z)
            noise_action = mean if greedy else gaussian.sample(k_act, mean, log_std)
            next_obs, env_state, _, _, _ = jax.vmap(family.step_env)(
                jax.random.split(k_env, n), env_state, noise_action * self.action_scale, tasks
            )
            next_obs = jnp.asarray(next_obs, jnp.float32)
            record = Episodes(
                obs=obs,
                noise_action=noise_action,
                log_prob=gaussian.log_prob(mean, log_std, noise_action),
                next_obs=next_obs,
                time=jnp.full((n,), t / length, jnp.float32),
            )
            return (next_obs, env_state), record

        inputs = (jnp.arange(length), jax.random.split(k_steps, length))
        _, episodes = jax.lax.scan(step, (jnp.asarray(obs, jnp.float32), env_state), inputs)
        return episodes

    def final_states(
        self, params, key: jax.Array, episodes_per_skill: int, greedy: bool = False
    ) -> jax.Array:
        """The last observation of ``episodes_per_skill`` fresh episodes of every skill,
        ``[num_skills, episodes_per_skill, observation_size]`` (sampled actions unless
        ``greedy``)."""
        k = self.config.num_skills
        z = jnp.repeat(jnp.arange(k, dtype=jnp.int32), episodes_per_skill)
        episodes = jax.jit(self.run_episodes, static_argnums=3)(params, key, z, greedy)
        return episodes.next_obs[-1].reshape(k, episodes_per_skill, self.observation_size)

    # --- the update -----------------------------------------------------------------------------
    def _ppo_loss(self, actor_critic, batch):
        c = self.config
        obs, z, noise_action, old_log_prob, time, advantage, target = batch
        mean, log_std = self.policy(actor_critic, obs, z)
        log_prob = gaussian.log_prob(mean, log_std, noise_action)
        surrogate = ppo_clip_objective(log_prob - old_log_prob, advantage, c.ppo_clip)
        policy_loss = -jnp.mean(surrogate)
        value_loss = 0.5 * jnp.mean((self.value(actor_critic, obs, z, time) - target) ** 2)
        entropy = jnp.mean(gaussian.entropy(log_std))
        loss = policy_loss + c.value_coef * value_loss - c.entropy_coef * entropy
        return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}

    def _discriminator_loss(self, disc_params, next_obs, z):
        logits = self.discriminator.apply(disc_params, next_obs)
        log_q = jnp.take_along_axis(jax.nn.log_softmax(logits), z[..., None], -1)[..., 0]
        accuracy = jnp.mean((jnp.argmax(logits, -1) == z).astype(jnp.float32))
        return -jnp.mean(log_q), accuracy

    def _update(self, state: TrainState, _):
        c = self.config
        n, length = c.num_envs, self.episode_length
        key = jax.random.fold_in(state.key, state.update)
        k_skill, k_run, k_ppo = jax.random.split(key, 3)
        params = state.params
        z = jax.random.randint(k_skill, (n,), 0, c.num_skills, dtype=jnp.int32)
        episodes = self.run_episodes(params, k_run, z)
        z_t = jnp.broadcast_to(z, (length, n))
        rewards = self.pseudo_reward(params["discriminator"], episodes.next_obs, z_t)
        values = self.value(params, episodes.obs, z_t, episodes.time)
        # Fixed-length episodes: the last step ends the return (the value sees the time left).
        discounts = jnp.full((length,), c.gamma, jnp.float32).at[-1].set(0.0)
        advantages = jax.vmap(
            generalized_advantage_estimation, in_axes=(1, None, 1, 0, None), out_axes=1
        )(rewards, discounts, values, jnp.zeros((n,), jnp.float32), c.gae_lambda)
        targets = advantages + values
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

        # PPO epochs over minibatches of whole episodes (environment axis 1 -> leading axis).
        data = (
            episodes.obs,
            z_t,
            episodes.noise_action,
            episodes.log_prob,
            episodes.time,
            advantages,
            targets,
        )
        data = jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), data)
        per_minibatch = n // c.ppo_minibatches

        def epoch(carry, key):
            def minibatch(carry, indices):
                actor_critic, opt_state = carry
                batch = jax.tree.map(lambda x: x[indices].reshape(-1, *x.shape[2:]), data)
                grads, info = jax.grad(self._ppo_loss, has_aux=True)(actor_critic, batch)
                updates, opt_state = self.optimizer.update(grads, opt_state, actor_critic)
                return (optax.apply_updates(actor_critic, updates), opt_state), info

            order = jax.random.permutation(key, n).reshape(c.ppo_minibatches, per_minibatch)
            return jax.lax.scan(minibatch, carry, order)

        actor_critic = {"policy": params["policy"], "value": params["value"]}
        (actor_critic, opt_state), info = jax.lax.scan(
            epoch, (actor_critic, state.opt_state), jax.random.split(k_ppo, c.ppo_epochs)
        )

        # The discriminator learns which skill visited each next state.
        flat_obs = episodes.next_obs.reshape(length * n, -1)
        flat_z = z_t.reshape(length * n)

        def disc_step(carry, _):
            disc_params, disc_opt_state = carry
            (loss, accuracy), grads = jax.value_and_grad(self._discriminator_loss, has_aux=True)(
                disc_params, flat_obs, flat_z
            )
            updates, disc_opt_state = self.disc_optimizer.update(grads, disc_opt_state)
            return (optax.apply_updates(disc_params, updates), disc_opt_state), (loss, accuracy)

        (disc_params, disc_opt_state), (disc_loss, disc_accuracy) = jax.lax.scan(
            disc_step,
            (params["discriminator"], state.disc_opt_state),
            None,
            c.discriminator_steps,
        )
        metrics = {
            "trial_return": jnp.mean(jnp.sum(rewards, 0)),
            "final_reward": jnp.mean(rewards[-1]),
            # Measured before this update's discriminator steps, on the states just visited.
            "discriminator_accuracy": disc_accuracy[0],
            "discriminator_loss": disc_loss[0],
            **{name: jnp.mean(value) for name, value in info.items()},
        }
        new_state = state.replace(
            params={**actor_critic, "discriminator": disc_params},
            opt_state=opt_state,
            disc_opt_state=disc_opt_state,
            update=state.update + 1,
        )
        return new_state, metrics

    def train_chunk(self, state: TrainState, num_updates: int):
        return scanned_chunk(self._chunks, self._update, state, num_updates)

    # --- evaluation -----------------------------------------------------------------------------
    def agent(self, params, skill: int = 0, name: str | None = None, greedy: bool = False) -> Agent:
        """Skill ``skill`` of the trained policy as an ``Agent`` acting on ``TrialObs.obs`` (the
        family's observation): ``pi(. | s, z=skill)``, sampled or, with ``greedy``, its mean.
        DIAYN meta-learns nothing per task; to adapt to a reward, meta-train RL^2 or MAML on
        ``skill_family(params)`` instead."""
        if isinstance(skill, bool) or not isinstance(skill, int):
            raise Learn2RLError(f"skill must be an integer, got {skill!r}")
        if not 0 <= skill < self.config.num_skills:
            raise Learn2RLError(f"skill must lie in [0, {self.config.num_skills}), got {skill!r}")

        def build(p):
            def act(key, agent_state, trial_obs):
                obs = jnp.asarray(trial_obs.obs, jnp.float32).reshape(self.observation_size)
                mean, log_std = self.policy(p, obs, jnp.int32(skill))
                noise_action = mean if greedy else gaussian.sample(key, mean, log_std)
                return noise_action * self.action_scale, agent_state

            return Agent(name or f"diayn-skill{skill}", lambda key, task: (), act)

        c = self.config
        kind_key = (
            "diayn",
            self.family,
            c.num_skills,
            tuple(c.hidden_sizes),
            c.init_std,
            skill,
            greedy,
        )
        return AgentKind(kind_key, build).bind(params)
