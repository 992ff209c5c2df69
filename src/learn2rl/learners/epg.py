"""Evolved Policy Gradients: a loss evolved so that policies trained on it earn high returns.

Houthooft, Chen, Isola, Stadie, Wolski, Ho & Abbeel 2018, "Evolved Policy Gradients" (NeurIPS
2018, arXiv 1802.04821); the official code is openai/EPG (``epg/losses.py``, ``epg/agents.py``,
``epg/rollout.py``, ``epg/evolution.py``, ``epg/launch_local.py``). docs/learners/epg.md lists
the settings that change numbers and where each comes from.

**Inner loop** (the paper's Algorithm 1, inner part; ``run_batch_rl`` in ``epg/rollout.py``): a
fresh Gaussian MLP policy (tanh layers, state-independent log-std) lives for ``epochs`` epochs on
one task. Each epoch it acts ``steps_per_epoch`` (M) steps, appending ``(obs, action, reward,
done)`` to a FIFO buffer of the last ``buffer_size`` (N) steps, then takes Adam steps on
minibatches of the newest M steps against

    L = (1 - alpha) L_phi + alpha L_PPO,

``L_phi`` the learned loss and ``L_PPO`` PPO's clipped surrogate with a KL penalty and a value
loss (``epg/agents.py``). ``alpha`` (``ppo_weight``) is annealed from 1 to 0 over the first
``ppo_fraction`` of meta-training (the paper's Sec. 3.3 "PPO bootstrapping"; 1/8 in
``epg/evolution.py``) and is 0 at meta-test time.

**The loss** (the paper's Figure 2, Sec. 3.2; ``Conv1DLoss`` in ``epg/losses.py``): temporal 1-D
convolutions slide over the buffer, every step a vector of features (observation, action, reward,
done, the current policy's mean and log-std, and optionally the time in the lifetime), and their
mean over time goes through a dense layer to a context vector. A per-sample MLP head maps
``[step features, context, current policy outputs]`` of each minibatch sample to a scalar; the
loss is their mean. The policy outputs in both branches are recomputed from the current policy
parameters at every minibatch step, so the policy gradient flows through the context too. With
``loss_symmetry`` (ours) the loss is averaged over the task family's mirror symmetries.

**Outer loop** (Sec. 3.1; ``ES.train`` in ``epg/evolution.py``): OpenAI-ES over the loss
parameters (evosax ``Open_ES``: antithetic noise, centred-rank fitness shaping, Adam, L2 weight
decay). A member's fitness is the mean return of its final policy (``fitness_episodes`` episodes
after the lifetime, as ``ret_to_obj`` of the last 3 episodes) averaged over ``tasks_per_member``
fresh training tasks; evosax minimises, so it is told minus that.

One update is one ES generation: ``population_size`` lifetimes x ``tasks_per_member`` tasks, one
``jax.vmap`` inside the chunk's ``jax.jit``; a lifetime is a ``jax.lax.scan`` over epochs. The
population is the learner's batch (``learners.base.ShardedChunks``): each device, of this host
or of every host in a multi-process run, runs its share of the members' lifetimes and the
fitnesses are gathered for the ES step, which every device takes alike. The same seed gives the
same numbers on any device count (the lifetimes are computed exactly as on one device).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen as nn
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.learners.base import (
    ConfigMixin,
    ShardedChunks,
    check_layer_sizes,
    check_non_negative,
    check_non_negative_ints,
    check_positive,
    check_positive_ints,
    check_seed,
    check_unit_interval,
)
from learn2rl.types import AgentKind, GradientAgent


@dataclass(frozen=True)
class Config(ConfigMixin):
    """EPG settings. Defaults: ``control/point-dir`` at CPU scale (population 32 x 4 common tasks,
    lifetimes of 16 epochs x 40 steps, a loss of 4-channel convolutions); the paper's hopper
    settings are in docs/learners/epg.md."""

    learner = "epg"

    task: str = "control/point-dir"
    """A continuous-control task family id (``control/point-dir``, ``control/cheetah-dir``...)."""
    num_updates: int = 200
    """ES generations in a run."""
    updates_per_chunk: int = 10
    """Generations per jitted chunk."""
    population_size: int = 32
    """ES population (even: antithetic pairs). The official run: 8 (``outer_n_samples_per_ep``)."""
    tasks_per_member: int = 4
    """Fresh training tasks per population member; the fitness averages their final returns."""
    steps_per_epoch: int = 40
    """M: environment steps between two inner updates (official: 64, ``inner_opt_freq``)."""
    epochs: int = 16
    """Inner updates in a lifetime (official: 128, ``inner_max_n_epoch``)."""
    buffer_size: int = 160
    """N: steps the loss's convolutions see, the newest last (official: 8 M = 512)."""
    minibatch_size: int = 20
    """Samples per inner Adam step; each epoch takes M / minibatch_size steps (official: 32)."""
    inner_learning_rate: float = 1e-2
    """Adam step size of the policy (official: 1e-3)."""
    policy_hidden_sizes: tuple[int, ...] = (32, 32)
    """Tanh layers of the policy and value networks (official: 64, 64)."""
    conv_channels: tuple[int, ...] = (4, 4)
    """Channels of the temporal convolutions (official: 16, 32)."""
    conv_kernels: tuple[int, ...] = (6, 4)
    """Kernel sizes of the temporal convolutions (official: 6, 4)."""
    conv_strides: tuple[int, ...] = (5, 2)
    """Strides of the temporal convolutions (official: 5, 2)."""
    context_size: int = 4
    """Width of the context vector (official: 32)."""
    head_size: int = 8
    """Hidden width of the per-sample head (official: 16)."""
    loss_symmetry: bool = False
    """Average the learned loss over the task family's mirror symmetries (``symmetries()`` of
    the family: signed permutations of the observation and action coordinates that keep the
    rewards and the training prior), so that it treats mirror-image tasks alike; not in the
    paper. ``control/point-dir`` declares the eight symmetries of the square (two with
    ``split="half"``); a family that declares none is an error."""
    time_input: bool = True
    """Give the loss the normalised time in the lifetime as a step feature (not in the official
    code; it lets the loss change its behaviour over the lifetime)."""
    ppo_fraction: float = 0.05
    """The PPO weight alpha falls linearly from 1 to 0 over this fraction of the run (official:
    1/8); 0 means no PPO term at all."""
    ppo_clip: float = 0.2
    """PPO's ratio clip (official: 0.2)."""
    ppo_kl_coef: float = 0.001
    """Weight of KL(old || new) in the PPO term (official: 0.001)."""
    discount: float = 0.99
    """gamma of PPO's GAE (official: 0.99)."""
    gae_lambda: float = 0.95
    """lambda of PPO's GAE (official: 0.95)."""
    es_sigma: float = 0.05
    """Standard deviation of the ES noise (official: 0.01)."""
    es_learning_rate: float = 0.03
    """Adam step size of the ES mean (official: 1e-2) ..."""
    es_final_learning_rate: float = 0.01
    """... falling linearly to this at half the run (official: 1e-3)."""
    es_beta1: float = 0.9
    """Adam's beta1 of the ES update (official: 0)."""
    weight_decay: float = 0.001
    """L2 coefficient on the loss parameters, added to the rank gradient as in the official code
    (``- outer_l2 * theta``)."""
    fitness_episodes: int = 3
    """Episodes of the final policy whose mean return is the fitness (official: 3)."""
    validation_every: int = 10
    """Every this many generations the ES mean trains fresh policies with the PPO weight at 0 on
    ``validation_tasks`` fixed training-split tasks, and the best-scoring loss so far is kept as
    the run's result (``TrainState.params``), as the official ``ES.train`` keeps the theta of its
    best test run (every ``plot_freq`` = 10 epochs, 7 lifetimes); 0 keeps the last mean. In a
    ``learn2rl sweep`` (seeds vmapped, so the generation counter is batched) the validation
    lifetimes are computed every generation and kept only when due: about
    ``validation_tasks / (population_size * tasks_per_member)`` more work per generation."""
    validation_tasks: int = 32
    """Tasks (one lifetime each, the same ones at every validation) scoring the ES mean."""
    common_tasks: bool = True
    """All members of a generation train on the same tasks with the same random draws (common
    random numbers: an antithetic pair then differs by its noise only); the official code gives
    every worker its own task (False)."""
    seed: int = 0
    """Random seed; the same config and seed give the same numbers."""

    def __post_init__(self):
        check_positive_ints(
            self,
            "num_updates",
            "updates_per_chunk",
            "population_size",
            "tasks_per_member",
            "steps_per_epoch",
            "epochs",
            "buffer_size",
            "minibatch_size",
            "context_size",
            "head_size",
            "fitness_episodes",
            "validation_tasks",
        )
        check_non_negative_ints(self, "validation_every")
        if self.population_size % 2:
            raise Learn2RLError(
                "config.population_size must be even (antithetic pairs), "
                f"got {self.population_size!r}"
            )
        if self.steps_per_epoch % self.minibatch_size:
            raise Learn2RLError(
                f"config.minibatch_size must divide steps_per_epoch ({self.steps_per_epoch}), "
                f"got {self.minibatch_size!r}"
            )
        if self.buffer_size < self.steps_per_epoch:
            raise Learn2RLError(
                f"config.buffer_size must be >= steps_per_epoch ({self.steps_per_epoch}), "
                f"got {self.buffer_size!r}"
            )
        for name in ("policy_hidden_sizes", "conv_channels", "conv_kernels", "conv_strides"):
            check_layer_sizes(self, name)
        if not len(self.conv_channels) == len(self.conv_kernels) == len(self.conv_strides):
            raise Learn2RLError(
                "config.conv_kernels and conv_strides must have one entry per conv_channels "
                f"entry, got {self.conv_kernels!r}, {self.conv_strides!r}"
            )
        if conv_length(self.buffer_size, self.conv_kernels, self.conv_strides) < 1:
            raise Learn2RLError(
                f"config.buffer_size ({self.buffer_size}) is too short for the convolutions "
                f"(kernels {self.conv_kernels}, strides {self.conv_strides})"
            )
        check_positive(
            self, "inner_learning_rate", "es_sigma", "es_learning_rate", "es_final_learning_rate"
        )
        check_non_negative(self, "ppo_kl_coef", "weight_decay")
        check_unit_interval(self, "ppo_fraction", "ppo_clip", "discount", "gae_lambda", "es_beta1")
        for name in ("time_input", "common_tasks", "loss_symmetry"):
            if not isinstance(getattr(self, name), bool):
                raise Learn2RLError(
                    f"config.{name} must be true or false, got {getattr(self, name)!r}"
                )
        check_seed(self)

    @property
    def lifetime(self) -> int:
        """Environment steps of one inner loop."""
        return self.epochs * self.steps_per_epoch


def conv_length(length: int, kernels, strides) -> int:
    """Time steps left after VALID convolutions of these kernels and strides."""
    for kernel, stride in zip(kernels, strides, strict=True):
        length = (length - kernel) // stride + 1 if length >= kernel else 0
    return length


def ppo_weight(update: jax.Array, num_updates: int, fraction: float) -> jax.Array:
    """alpha at generation ``update``: 1 at the start, linearly to 0 at ``fraction *
    num_updates``, then 0 (``PiecewiseSchedule([(0, 1), (n / 8, 0)])`` in ``epg/evolution.py``)."""
    if fraction <= 0:
        return jnp.float32(0.0)
    end = max(fraction * num_updates, 1e-9)
    return jnp.clip(1.0 - jnp.asarray(update, jnp.float32) / end, 0.0, 1.0)


# --- networks -------------------------------------------------------------------------------------
class GaussianPolicy(nn.Module):
    """``obs -> (mean, log_std)``: tanh MLP mean (last layer initialised small, as the official
    ``NN`` with std 0.01), state-independent log-std starting at 0."""

    action_size: int
    hidden_sizes: tuple[int, ...]

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = obs
        for size in self.hidden_sizes:
            x = jnp.tanh(nn.Dense(size)(x))
        small = nn.initializers.variance_scaling(1e-4, "fan_in", "normal")
        mean = nn.Dense(self.action_size, kernel_init=small)(x)
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_size,))
        return mean, jnp.broadcast_to(log_std, mean.shape)


class ValueNet(nn.Module):
    hidden_sizes: tuple[int, ...]

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs
        for size in self.hidden_sizes:
            x = jnp.tanh(nn.Dense(size)(x))
        return nn.Dense(1)(x)[..., 0]


class LossNetwork(nn.Module):
    """The evolved loss (Figure 2): ``(buffer [N, F], samples [B, G]) -> per-sample loss [B]``.

    ``buffer`` holds every buffered step's features and current policy outputs, oldest first;
    temporal convolutions (leaky ReLU) over it, averaged over time and through one dense layer,
    give the context. ``samples`` holds each minibatch sample's features and current policy
    outputs; the head (one leaky-ReLU layer, then a scalar) sees them with the context."""

    channels: tuple[int, ...]
    kernels: tuple[int, ...]
    strides: tuple[int, ...]
    context_size: int
    head_size: int

    def setup(self):
        self.convs = [
            nn.Conv(c, (k,), strides=(s,), padding="VALID", name=f"conv{i}")
            for i, (c, k, s) in enumerate(
                zip(self.channels, self.kernels, self.strides, strict=True)
            )
        ]
        self.context_layer = nn.Dense(self.context_size, name="context")
        self.head_hidden = nn.Dense(self.head_size, name="head_hidden")
        self.head_out = nn.Dense(1, name="head_out")

    def __call__(self, buffer: jax.Array, samples: jax.Array) -> jax.Array:
        context = self.context(buffer)
        x = jnp.concatenate(
            [samples, jnp.broadcast_to(context, (samples.shape[0], context.shape[-1]))], -1
        )
        return self.head_out(nn.leaky_relu(self.head_hidden(x)))[..., 0]

    def context(self, buffer: jax.Array) -> jax.Array:
        x = buffer[None]  # [1, N, F]: features are channels, time is the convolved axis
        for conv in self.convs:
            x = nn.leaky_relu(conv(x))
        return self.context_layer(jnp.mean(x, axis=(0, 1)))


def gaussian_log_prob(mean, log_std, action):
    return jnp.sum(
        -0.5 * ((action - mean) / jnp.exp(log_std)) ** 2 - log_std - 0.5 * math.log(2 * math.pi),
        -1,
    )


def gaussian_kl(mean0, log_std0, mean1, log_std1):
    """KL(N0 || N1) per sample (diagonal Gaussians)."""
    var0, var1 = jnp.exp(2 * log_std0), jnp.exp(2 * log_std1)
    return jnp.sum(log_std1 - log_std0 + (var0 + (mean0 - mean1) ** 2) / (2 * var1) - 0.5, -1)


def gae(r_t, done_t, v_t, v_tp1, discount, lambda_):
    """Advantages ``A_t = delta_t + discount lambda (1 - done_t) A_{t+1}``, ``delta_t = r_t +
    discount (1 - done_t) v_tp1 - v_t`` (``gamma_expand`` in ``epg/agents.py``)."""
    not_done = 1.0 - done_t
    delta = r_t + discount * not_done * v_tp1 - v_t

    def backward(a_next, inputs):
        d, c = inputs
        a = d + discount * lambda_ * c * a_next
        return a, a

    _, advantages = jax.lax.scan(backward, jnp.float32(0.0), (delta, not_done), reverse=True)
    return advantages


# --- the inner loop ---------------------------------------------------------------------------
@struct.dataclass
class Steps:
    """Steps of experience, time first: what the buffer and a collected epoch hold."""

    obs: jax.Array  # [T, D]
    action: jax.Array  # [T, A] as sampled (before the family clips it)
    reward: jax.Array  # [T]
    done: jax.Array  # [T] 1.0 where an episode ended
    time: jax.Array  # [T] step index in the lifetime / lifetime length


@struct.dataclass
class Inner:
    """What one inner loop carries from epoch to epoch."""

    agent: Any  # {"policy": ..., "value": ...}
    opt_state: Any
    buffer: Steps  # the last ``buffer_size`` steps (zeros before the lifetime filled it)


class EPGCore:
    """EPG's maths as pure functions: the loss network on a buffer, one epoch of inner updates, a
    lifetime on one task, and the fitness. The learner vmaps them; tests call them directly."""

    def __init__(self, config: Config, family):
        self.config = config
        self.family = family
        self.obs_size = int(family.observation_size)
        self.action_size = int(family.action_size)
        hidden = tuple(config.policy_hidden_sizes)
        self.policy = GaussianPolicy(self.action_size, hidden)
        self.value = ValueNet(hidden)
        self.loss_net = LossNetwork(
            tuple(config.conv_channels),
            tuple(config.conv_kernels),
            tuple(config.conv_strides),
            config.context_size,
            config.head_size,
        )
        self.optimizer = optax.adam(config.inner_learning_rate)
        self.symmetries = None  # [G, D, D] and [G, A, A], or None: the loss is used as it is
        if config.loss_symmetry:
            maps = family.symmetries() if hasattr(family, "symmetries") else []
            if not maps:
                raise Learn2RLError(
                    f"config.loss_symmetry needs a family with symmetries; {family.family_id} "
                    "declares none"
                )
            self.symmetries = (
                jnp.asarray(np.stack([o for o, _ in maps]), jnp.float32),
                jnp.asarray(np.stack([a for _, a in maps]), jnp.float32),
            )
        self.step_features = self.obs_size + self.action_size + 2 + int(config.time_input)
        self.input_size = self.step_features + 2 * self.action_size

    # -- parameters
    def init_loss(self, key: jax.Array):
        c = self.config
        buffer = jnp.zeros((c.buffer_size, self.input_size), jnp.float32)
        return self.loss_net.init(key, buffer, jnp.zeros((1, self.input_size), jnp.float32))

    def init_inner(self, key: jax.Array) -> Inner:
        k_policy, k_value = jax.random.split(key)
        obs = jnp.zeros((self.obs_size,), jnp.float32)
        agent = {"policy": self.policy.init(k_policy, obs), "value": self.value.init(k_value, obs)}
        n = self.config.buffer_size
        buffer = Steps(
            obs=jnp.zeros((n, self.obs_size), jnp.float32),
            action=jnp.zeros((n, self.action_size), jnp.float32),
            reward=jnp.zeros((n,), jnp.float32),
            done=jnp.zeros((n,), jnp.float32),
            time=jnp.zeros((n,), jnp.float32),
        )
        return Inner(agent=agent, opt_state=self.optimizer.init(agent), buffer=buffer)

    # -- the learned loss
    def features(self, steps: Steps) -> jax.Array:
        """``[T, step_features]``: observation, action, reward, done (and time)."""
        columns = [steps.obs, steps.action, steps.reward[:, None], steps.done[:, None]]
        if self.config.time_input:
            columns.append(steps.time[:, None])
        return jnp.concatenate(columns, -1)

    def learned_loss(self, loss_params, policy_params, buffer: Steps, rows: jax.Array):
        """L_phi of the policy on the buffer rows ``rows`` (the minibatch): the mean of the head's
        outputs. The policy's outputs are recomputed for the whole buffer from ``policy_params``,
        so the gradient flows through the context branch and the head."""
        mean, log_std = self.policy.apply(policy_params, buffer.obs)
        return self.loss_value(loss_params, buffer, mean, log_std, rows)

    def loss_value(self, loss_params, buffer: Steps, mean, log_std, rows: jax.Array):
        """The loss network's mean output on ``rows`` given the buffer and the policy's outputs
        on it; with ``loss_symmetry``, its mean over the family's symmetries ``(O, P)``, each
        applied to the observations (``O``), the actions and means (``P``) and the log-stds
        (``|P|``, a permutation) of the buffer and the samples alike."""

        def plain(steps: Steps, mean, log_std):
            inputs = jnp.concatenate([self.features(steps), mean, log_std], -1)
            return jnp.mean(self.loss_net.apply(loss_params, inputs, inputs[rows]))

        if self.symmetries is None:
            return plain(buffer, mean, log_std)

        def mirrored(obs_map, action_map):
            steps = buffer.replace(obs=buffer.obs @ obs_map.T, action=buffer.action @ action_map.T)
            return plain(steps, mean @ action_map.T, log_std @ jnp.abs(action_map).T)

        return jnp.mean(jax.vmap(mirrored)(*self.symmetries))

    def ppo_loss(self, agent, batch: Steps, old_mean, old_log_std, advantages, targets):
        """PPO's clipped surrogate + KL(old || new) + value regression (``epg/agents.py``)."""
        c = self.config
        mean, log_std = self.policy.apply(agent["policy"], batch.obs)
        ratio = jnp.exp(
            gaussian_log_prob(mean, log_std, batch.action)
            - gaussian_log_prob(old_mean, old_log_std, batch.action)
        )
        clipped = jnp.clip(ratio, 1.0 - c.ppo_clip, 1.0 + c.ppo_clip)
        surrogate = jnp.minimum(ratio * advantages, clipped * advantages)
        kl = gaussian_kl(old_mean, old_log_std, mean, log_std)
        values = self.value.apply(agent["value"], batch.obs)
        value_loss = jnp.mean((values - targets) ** 2)
        return -jnp.mean(surrogate) + c.ppo_kl_coef * jnp.mean(kl) + value_loss

    def epoch_update(self, loss_params, inner: Inner, epoch: Steps, key, alpha) -> Inner:
        """Push the epoch's M steps into the buffer, then one pass of Adam steps over minibatches
        of them on ``(1 - alpha) L_phi + alpha L_PPO``."""
        c = self.config
        m = c.steps_per_epoch
        buffer = jax.tree_util.tree_map(
            lambda old, new: jnp.concatenate([old[m:], new]), inner.buffer, epoch
        )
        agent = inner.agent
        values = self.value.apply(agent["value"], epoch.obs)
        next_values = jnp.concatenate([values[1:], values[-1:]])  # as the official code
        advantages = gae(epoch.reward, epoch.done, values, next_values, c.discount, c.gae_lambda)
        targets = advantages + values
        normalised = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        old_mean, old_log_std = self.policy.apply(agent["policy"], epoch.obs)
        order = jax.random.permutation(key, m).reshape(-1, c.minibatch_size)
        use_ppo = c.ppo_fraction > 0

        def total(agent, idx):
            loss = self.learned_loss(loss_params, agent["policy"], buffer, c.buffer_size - m + idx)
            if not use_ppo:
                return loss
            batch = jax.tree_util.tree_map(lambda x: x[idx], epoch)
            ppo = self.ppo_loss(
                agent, batch, old_mean[idx], old_log_std[idx], normalised[idx], targets[idx]
            )
            return (1.0 - alpha) * loss + alpha * ppo

        def step(carry, idx):
            agent, opt_state = carry
            grads = jax.grad(total)(agent, idx)
            # A non-finite gradient skips the step, as the official code does.
            finite = jnp.all(
                jnp.asarray([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)])
            )
            updates, new_opt_state = self.optimizer.update(grads, opt_state, agent)
            new_agent = optax.apply_updates(agent, updates)
            keep = lambda new, old: jax.tree_util.tree_map(  # noqa: E731
                lambda a, b: jnp.where(finite, a, b), new, old
            )
            return (keep(new_agent, agent), keep(new_opt_state, opt_state)), None

        (agent, opt_state), _ = jax.lax.scan(step, (agent, inner.opt_state), order)
        return Inner(agent=agent, opt_state=opt_state, buffer=buffer)

    # -- acting
    def act(self, policy_params, obs, key):
        mean, log_std = self.policy.apply(policy_params, obs)
        return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)

    def collect(self, policy_params, task, env_state, obs, start, key):
        """M steps of the policy on ``task`` (episodes reset automatically)."""
        family, c = self.family, self.config

        def step(carry, inputs):
            env_state, obs = carry
            t, key = inputs
            k_act, k_env = jax.random.split(key)
            action = self.act(policy_params, obs, k_act)
            next_obs, env_state, reward, terminated, truncated, _ = family.step(
                k_env, env_state, action, task
            )
            done = jnp.logical_or(terminated, truncated).astype(jnp.float32)
            record = Steps(obs, action, reward.astype(jnp.float32), done, t / c.lifetime)
            return (env_state, next_obs.astype(jnp.float32)), record

        times = start + jnp.arange(c.steps_per_epoch, dtype=jnp.float32)
        keys = jax.random.split(key, c.steps_per_epoch)
        (env_state, obs), steps = jax.lax.scan(step, (env_state, obs), (times, keys))
        return steps, env_state, obs

    def final_episodes(self, policy_params, task, key, episodes=None, deterministic=False):
        """``(mean return, mean velocity)`` of ``episodes`` (default ``fitness_episodes``) fresh
        episodes of the policy, actions sampled (as ``run_batch_rl``'s final evaluation) or, with
        ``deterministic``, the policy's mean; the velocity is the mean clipped action."""
        family = self.family

        def episode(key):
            k_reset, k_steps = jax.random.split(key)
            obs, env_state = family.reset(k_reset, task)

            def step(carry, key):
                env_state, obs, alive = carry
                k_act, k_env = jax.random.split(key)
                if deterministic:
                    action = self.policy.apply(policy_params, obs)[0]
                else:
                    action = self.act(policy_params, obs, k_act)
                obs, env_state, reward, terminated, truncated, _ = family.step(
                    k_env, env_state, action, task
                )
                out = (alive * reward, alive * family.clip_action(action))
                alive = alive * (1.0 - jnp.logical_or(terminated, truncated))
                return (env_state, obs.astype(jnp.float32), alive), out

            keys = jax.random.split(k_steps, family.episode_length)
            _, (rewards, actions) = jax.lax.scan(step, (env_state, obs, jnp.float32(1.0)), keys)
            return jnp.sum(rewards), jnp.mean(actions, 0)

        count = self.config.fitness_episodes if episodes is None else episodes
        returns, velocities = jax.vmap(episode)(jax.random.split(key, count))
        return jnp.mean(returns), jnp.mean(velocities, 0)

    def lifetime(self, loss_params, task, key, alpha) -> dict[str, jax.Array]:
        """A fresh policy trained on ``task`` for a lifetime: ``final_return`` (the fitness),
        ``final_velocity``, ``curve`` (each epoch's return rate: mean reward per step times the
        episode length) and the trained ``policy``'s parameters."""
        c = self.config
        k_init, k_reset, k_epochs, k_final = jax.random.split(key, 4)
        inner = self.init_inner(k_init)
        obs, env_state = self.family.reset(k_reset, task)

        def epoch(carry, inputs):
            inner, env_state, obs = carry
            index, key = inputs
            k_collect, k_update = jax.random.split(key)
            steps, env_state, obs = self.collect(
                inner.agent["policy"],
                task,
                env_state,
                obs.astype(jnp.float32),
                (index * c.steps_per_epoch).astype(jnp.float32),
                k_collect,
            )
            inner = self.epoch_update(loss_params, inner, steps, k_update, alpha)
            return (inner, env_state, obs), jnp.mean(steps.reward) * self.family.episode_length

        inputs = (jnp.arange(c.epochs), jax.random.split(k_epochs, c.epochs))
        (inner, _, _), curve = jax.lax.scan(epoch, (inner, env_state, obs), inputs)
        final_return, final_velocity = self.final_episodes(inner.agent["policy"], task, k_final)
        return {
            "final_return": final_return,
            "final_velocity": final_velocity,
            "curve": curve,
            "policy": inner.agent["policy"],
        }


# --- the learner --------------------------------------------------------------------------------
@struct.dataclass
class TrainState:
    loss_params: Any  # the ES mean: the evolved loss
    es_opt_state: Any  # the ES optimiser's state (Adam moments, step count)
    update: jax.Array
    key: jax.Array
    best_loss_params: Any  # the ES mean that scored best on the validation tasks so far
    best_score: jax.Array  # its validation score (mean final return, PPO weight 0)
    last_score: jax.Array  # the latest validation score

    @property
    def params(self) -> dict[str, Any]:
        """The run's result: the best-validated loss (the last ES mean when
        ``validation_every`` is 0, which keeps ``best_loss_params`` equal to it)."""
        return {"loss": self.best_loss_params}


def open_es(config: Config, template) -> tuple[Any, Any]:
    """evosax ``Open_ES`` as EPG uses it: antithetic noise of std ``es_sigma``, centred ranks,
    and Adam (beta1 ``es_beta1``, step size falling linearly to ``es_final_learning_rate`` at half
    the run) on the rank gradient plus ``weight_decay`` times the mean. evosax's gradient is the
    official one divided by sigma, so the decay is divided by sigma too: Adam then takes the
    official step. Returns ``(strategy, its params)``."""
    from evosax.algorithms import Open_ES

    schedule = optax.linear_schedule(
        config.es_learning_rate,
        config.es_final_learning_rate,
        max(1, config.num_updates // 2),
    )
    optimizer = optax.chain(
        optax.add_decayed_weights(config.weight_decay / config.es_sigma),
        optax.adam(schedule, b1=config.es_beta1),
    )
    strategy = Open_ES(
        population_size=config.population_size,
        solution=template,
        use_antithetic_sampling=True,
        optimizer=optimizer,
        std_schedule=optax.constant_schedule(config.es_sigma),
    )
    return strategy, strategy.default_params


VALIDATION_STREAM = 0x7A11D  # folded into the run key: the validation tasks' own stream


class EPG:
    """Evolved Policy Gradients on a continuous-control task family (see the module text)."""

    progress_metric = "fitness"

    def __init__(self, config: Config, family=None, devices: list | None = None):
        from learn2rl.tasks import make

        self.config = config
        self.family = family if family is not None else make(config.task)
        if not getattr(self.family, "continuous", False):
            raise Learn2RLError(
                f"config.task must be a continuous-control family, got {config.task!r}"
            )
        self.episodes_per_trial = 1
        self.core = EPGCore(config, self.family)
        # The population is the batch: each device runs the lifetimes of its share of the
        # members (all hosts' devices in a multi-process run) and the fitnesses are gathered.
        self.chunks = ShardedChunks(
            config.population_size, "members", devices, what="population_size"
        )
        self.devices, self.mesh = self.chunks.devices, self.chunks.mesh
        template = self.core.init_loss(jax.random.PRNGKey(0))
        self.strategy, self.es_params = open_es(config, template)
        # One fresh policy's lifetime per task (batched along axis 0), the loss shared.
        self._per_task = jax.vmap(self.core.lifetime, in_axes=(None, 0, 0, None))
        self._per_task_jit = jax.jit(self._per_task)
        self._validation_jit = jax.jit(self.validation_score)

    @property
    def steps_per_update(self) -> int:
        c = self.config
        episodes = c.fitness_episodes * self.family.episode_length
        return c.population_size * c.tasks_per_member * (c.lifetime + episodes)

    def init(self, seed: int | None = None) -> TrainState:
        seed = self.config.seed if seed is None else seed
        key = jax.random.PRNGKey(seed)
        k_loss, k_es, k_run = jax.random.split(key, 3)
        loss_params = self.core.init_loss(k_loss)
        es_state = self.strategy.init(k_es, loss_params, self.es_params)
        score = self._validation_jit(loss_params, k_run) if self.config.validation_every else 0.0
        state = TrainState(
            loss_params=loss_params,
            es_opt_state=es_state.opt_state,
            update=jnp.int32(0),
            key=k_run,
            best_loss_params=loss_params,
            best_score=jnp.float32(score),
            last_score=jnp.float32(score),
        )
        return self.place(state)

    def validation_score(self, loss_params, run_key: jax.Array) -> jax.Array:
        """Mean final return of fresh policies trained by ``loss_params`` alone (PPO weight 0)
        on ``validation_tasks`` training-split tasks, the same tasks and draws for every call
        with the same run key, so that two validations compare the losses and not the luck."""
        c = self.config
        k_tasks, k_life = jax.random.split(jax.random.fold_in(run_key, VALIDATION_STREAM))
        keys = jax.random.split(k_tasks, c.validation_tasks)
        tasks = jax.vmap(lambda k: self.family.sample(k, "train"))(keys)
        lives = jax.random.split(k_life, c.validation_tasks)
        results = self._per_task(loss_params, tasks, lives, jnp.float32(0.0))
        return jnp.mean(results["final_return"])

    def _validate(self, state: TrainState) -> TrainState:
        """Score the ES mean every ``validation_every`` generations and after the last one; keep
        the best loss."""
        every = self.config.validation_every
        if not every:
            return state.replace(best_loss_params=state.loss_params)

        def check(state):
            score = self.validation_score(state.loss_params, state.key)
            better = score > state.best_score
            best = jax.tree_util.tree_map(
                lambda new, old: jnp.where(better, new, old),
                state.loss_params,
                state.best_loss_params,
            )
            return state.replace(
                best_loss_params=best,
                best_score=jnp.maximum(score, state.best_score),
                last_score=score,
            )

        due = (state.update % every == 0) | (state.update == self.config.num_updates)
        return jax.lax.cond(due, check, lambda s: s, state)

    def place(self, state: TrainState) -> TrainState:
        return self.chunks.place(state)

    def ppo_weight(self, update) -> jax.Array:
        return ppo_weight(update, self.config.num_updates, self.config.ppo_fraction)

    def _update(self, state: TrainState, members: jax.Array):
        """One generation; this device runs the lifetimes of population ``members``."""
        c = self.config
        key = jax.random.fold_in(state.key, state.update)
        k_es, k_ask, k_tasks, k_life, k_tell = jax.random.split(key, 5)
        es_state = self.strategy.init(k_es, state.loss_params, self.es_params)
        es_state = es_state.replace(opt_state=state.es_opt_state, generation_counter=state.update)
        population, es_state = self.strategy.ask(k_ask, es_state, self.es_params)
        draws = c.tasks_per_member * (1 if c.common_tasks else c.population_size)
        tasks = jax.vmap(lambda k: self.family.sample(k, "train"))(jax.random.split(k_tasks, draws))
        keys = jax.random.split(k_life, draws)
        if c.common_tasks:
            tasks, keys = jax.tree_util.tree_map(
                lambda x: jnp.broadcast_to(x, (c.population_size, *x.shape)), (tasks, keys)
            )
        else:
            tasks, keys = jax.tree_util.tree_map(
                lambda x: x.reshape(c.population_size, c.tasks_per_member, *x.shape[1:]),
                (tasks, keys),
            )
        alpha = self.ppo_weight(state.update)
        mine = jax.tree_util.tree_map(lambda x: x[members], (population, tasks, keys))
        results = jax.vmap(self._per_task, in_axes=(0, 0, 0, None))(*mine, alpha)
        # Every device gets every member's results, in population order, for the ES step.
        results = jax.lax.all_gather(results, "members", tiled=True)
        returns = jnp.mean(results["final_return"], axis=1)  # [population]
        es_state, _ = self.strategy.tell(k_tell, population, -returns, es_state, self.es_params)
        loss_params = self.strategy.get_mean(es_state)
        state = self._validate(
            state.replace(
                loss_params=loss_params,
                es_opt_state=es_state.opt_state,
                update=state.update + 1,
            )
        )
        metrics = {
            "fitness": jnp.mean(returns),
            "fitness_max": jnp.max(returns),
            "fitness_min": jnp.min(returns),
            "lifetime_return": jnp.mean(results["curve"]),
            "ppo_weight": alpha,
            "loss_param_norm": optax.tree.norm(loss_params),
        }
        if c.validation_every:
            metrics["validation"] = state.last_score
            metrics["validation_best"] = state.best_score
        return state, metrics

    def _local_updates(self, state: TrainState, members: jax.Array, *, num_updates: int):
        return jax.lax.scan(lambda s, _: self._update(s, members), state, None, num_updates)

    def train_chunk(self, state: TrainState, num_updates: int):
        return self.chunks.run(self._local_updates, state, num_updates)

    def train_members(self, states: TrainState, num_updates: int):
        """Several train states (a leading member axis, e.g. seeds) at once (``learn2rl
        sweep``)."""
        return self.chunks.run(self._local_updates, states, num_updates, members=True)

    # --- meta-test: fresh policies trained by a loss --------------------------------------------
    def train_policies(self, loss_params, tasks, key: jax.Array, alpha: float = 0.0):
        """Fresh policies trained for a lifetime on each of ``tasks`` (batched along axis 0) by
        ``(1 - alpha) L_phi + alpha L_PPO`` (``alpha = 1``: PPO alone, the loss unused; 0: the
        learned loss alone, as at meta-test). Returns numpy-ready arrays: ``final_return`` [T],
        ``final_velocity`` [T, A], the learning ``curve`` [T, epochs] and the trained
        ``policy`` parameters (a leading task axis)."""
        num = int(jax.tree_util.tree_leaves(tasks)[0].shape[0])
        keys = jax.random.split(key, num)
        return self._per_task_jit(loss_params, tasks, keys, jnp.float32(alpha))

    def policy_returns(self, policies, tasks, key: jax.Array, episodes: int = 5):
        """Mean return of ``episodes`` episodes of each trained policy (``train_policies``'s
        ``policy``, a leading task axis) on its task, acting with the policy's mean: the
        deterministic evaluation of the off-policy learners' meta-tests."""
        num = int(jax.tree_util.tree_leaves(tasks)[0].shape[0])

        def one(policy, task, key):
            return self.core.final_episodes(policy, task, key, episodes, deterministic=True)[0]

        return jax.jit(jax.vmap(one))(policies, tasks, jax.random.split(key, num))

    def random_loss(self, seed: int):
        """A randomly initialised loss (the control of the experiments)."""
        return self.core.init_loss(jax.random.PRNGKey(seed))

    def agent(self, params, name: str | None = None, alpha: float = 0.0) -> GradientAgent:
        """The loss ``params["loss"]`` as a ``GradientAgent``: a fresh policy that adapts by one
        EPG epoch after every batch of ``steps_per_epoch / episode_length`` episodes (its state
        carries the buffer), so that ``evaluation.evaluate`` runs the meta-test lifetime. Needs
        ``steps_per_epoch`` to be a multiple of the episode length; terminated episodes' padding
        steps enter the buffer as zero-reward steps."""
        c, core, family = self.config, self.core, self.family
        length = family.episode_length
        if c.steps_per_epoch % length:
            raise Learn2RLError(
                f"config.steps_per_epoch ({c.steps_per_epoch}) must be a multiple of the episode "
                f"length ({length}) for the GradientAgent view of EPG"
            )
        per_adapt = c.steps_per_epoch // length

        def build(p):
            def init(key):
                return (core.init_inner(key), jnp.int32(0))

            def act(key, state, context, obs):
                return core.act(state[0].agent["policy"], obs, key)

            def adapt(key, state, episodes):
                inner, epoch = state
                e, t = episodes.reward.shape
                done = jnp.zeros((e, t), jnp.float32).at[:, -1].set(1.0)
                start = epoch * c.steps_per_epoch
                steps = Steps(
                    obs=episodes.obs.reshape(e * t, -1),
                    action=episodes.action.reshape(e * t, -1),
                    reward=(episodes.reward * episodes.mask).reshape(e * t),
                    done=done.reshape(e * t),
                    time=(start + jnp.arange(e * t, dtype=jnp.float32)) / c.lifetime,
                )
                inner = core.epoch_update(p["loss"], inner, steps, key, jnp.float32(alpha))
                return (inner, epoch + 1)

            return GradientAgent(
                name=name or "epg",
                init=init,
                begin_episode=lambda key, state: jnp.zeros((0,), jnp.float32),
                act=act,
                adapt=adapt,
                episodes_per_adapt=per_adapt,
            )

        kind_key = ("epg", repr(sorted(c.to_dict().items())), family, alpha)
        return AgentKind(kind_key, build).bind(params)
