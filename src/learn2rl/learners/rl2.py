"""RL^2 / "learning to reinforcement learn": a recurrent policy meta-trained over many tasks.

Duan et al. 2016, "RL^2: Fast Reinforcement Learning via Slow Reinforcement Learning" (arXiv
1611.02779);
Wang et al. 2016, "Learning to reinforcement learn" (arXiv 1611.05763).

Algorithm (one update):
    1. draw ``num_tasks`` tasks from the training split;
    2. run one trial (``num_episodes`` episodes) on each with the recurrent policy, its state reset
    only
       at the start of the trial, so the network must learn about the task within its activations;
    3. compute GAE(lambda) advantages over the whole trial (episode ends inside a trial do not cut
    the
       return: the meta-objective is the total reward of the trial);
    4. take an A2C step (policy gradient + value regression + entropy bonus) or several PPO epochs.
After meta-training, ``adapt`` is just running the network: its hidden state is the fast learner.

Implementation notes.
- A2C differentiates through the rollout itself: the loss is a function of the parameters that
*runs*
  the trial (sampled actions enter through ``stop_gradient``), so one forward pass serves both
  acting
  and the gradient. This saves the second forward pass a collect-then-train loop would need.
- Training runs in jitted chunks of ``updates_per_chunk`` updates (``lax.scan``); between chunks the
  Python loop logs, checkpoints and draws progress. Per-update randomness is ``fold_in(key,
  update)``,
  so a run resumed from a checkpoint replays exactly what the uninterrupted run would have done.
- The task batch is split across all local devices with ``jax.shard_map`` (gradients averaged with
  ``pmean``). On a CPU, ``learn2rl.devices.use_cpu_cores()`` exposes each core as a device; two
  single-threaded streams beat one two-threaded stream for these small matmuls. Results are
  bit-identical for the same config, seed and device count.
- Continuous-control families (``family.continuous``) get a diagonal Gaussian policy: the network
  returns ``(mean, log_std)`` instead of logits and ``DiagonalGaussian`` replaces ``Categorical``
  in sampling, log-probabilities, entropies and the greedy action; nothing else changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.learners.base import (
    ConfigMixin,
    ShardedChunks,
    check_choice,
    check_non_negative,
    check_positive,
    check_positive_ints,
    check_seed,
    check_unit_interval,
)
from learn2rl.nets.recurrent import CELLS, RecurrentActorCritic
from learn2rl.ops import gaussian
from learn2rl.ops.losses import categorical_entropy, ppo_clip_objective
from learn2rl.ops.returns import generalized_advantage_estimation
from learn2rl.tasks import make
from learn2rl.tasks.base import TaskFamily
from learn2rl.trial import Trial
from learn2rl.types import Agent, AgentKind, TrialObs


@dataclass(frozen=True)
class Config(ConfigMixin):
    """RL^2 settings. Defaults: two-armed Bernoulli bandits, 100 pulls, a GRU-48 trained by A2C."""

    learner = "rl2"

    task: str = "bandit/independent-2arm"
    """Task family id (``learn2rl list``)."""
    num_episodes: int = 100
    """Episodes per trial (for one-pull bandit episodes: pulls per trial)."""
    algorithm: Literal["a2c", "ppo"] = "a2c"
    """Outer-loop ("slow") RL algorithm."""
    cell: Literal["gru", "lstm", "ln-gru", "wn-gru"] = "gru"
    """Recurrent cell: ``gru`` (tanh), ``lstm``, or Duan et al.'s normalised ReLU GRU with
    LayerNorm (``ln-gru``) or weight normalisation (``wn-gru``) (``nets.recurrent.NormGRUCell``)."""
    value_network: Literal["shared", "separate"] = "shared"
    """``shared``: the value head sits on the policy's recurrent state; ``separate``: a second
    recurrent core of the same cell and size computes the value (Duan et al. 2016)."""
    value_loss: Literal["mse", "huber"] = "mse"
    """Value regression loss: squared error, or Huber with delta 1 (robust to rare large
    returns)."""
    state_heads: bool = False
    """Policy and value heads indexed by the observation (``nets.recurrent``): for a one-hot
    state, the current state's row of a per-state head; a general bilinear head otherwise."""
    index_head: int = 0
    """Width of an index-shaped policy head (0: a linear head): every action is scored by one
    shared rule, ``v . tanh(P_a h + b_a + G h)``, from ``index_head`` features of its own
    (``nets.recurrent``), as an index policy scores every arm; with the reward decoder on a
    bandit, each arm's decoded mean is its first feature. Discrete actions, no ``state_heads``."""
    reward_decoder_coef: float = 0.0
    """Weight of an auxiliary loss (0: off): a decoder reads, from the recurrent state, the mean
    reward each action has paid in the current state so far in the trial, regressed onto the
    observed means of the trial's earlier steps (families with one-hot states, e.g. tabular
    MDPs, or without observations, e.g. bandits)."""
    reward_decoder_target: Literal["observed", "expected"] = "observed"
    """What the decoder regresses onto: ``observed``, the mean reward each action has paid in the
    current state so far in the trial (actions not tried there are left out); ``expected``, the
    task's expected reward of every action in the current state (``family.expected_reward``,
    read from the training task's parameters), as VariBAD's reward decoder does (Zintgraf et al.
    2020): given the history, its squared-error optimum is the posterior mean reward under the
    task distribution, for untried actions too."""
    normalize_returns: bool = False
    """The value head predicts returns standardised by the running mean and standard deviation of
    all value targets seen so far (Duan et al. 2016's value network fits such normalised
    returns); values are mapped back to return units for the advantages."""
    hidden_size: int = 48
    """Recurrent units (48 as in Wang et al. 2016)."""
    num_tasks: int = 1024
    """Trials run in parallel per update, each on a freshly drawn training task."""
    num_updates: int = 2000
    """Total updates."""
    updates_per_chunk: int = 50
    """Updates per jitted chunk (logging, checkpoints and progress happen between chunks)."""
    learning_rate: float = 2e-3
    """Adam step size at the start; decays linearly to ``final_learning_rate``."""
    final_learning_rate: float = 2e-4
    """Adam step size at the end of training."""
    gamma: float = 0.99
    """Discount within a trial (at the start of training, see ``final_gamma``)."""
    final_gamma: float | None = None
    """If set, the discount moves linearly from ``gamma`` to this over training: a short horizon
    first (credit for a reward goes to the action just before it, which is quick to learn), a
    long one later (exploration that pays off episodes later). ``None``: ``gamma`` throughout."""
    gae_lambda: float = 0.3
    """GAE lambda (1 = Monte-Carlo returns)."""
    value_coef: float = 0.5
    """Weight of the value regression loss."""
    entropy_coef: float = 0.05
    """Entropy bonus at the start; decays linearly to ``final_entropy_coef``."""
    final_entropy_coef: float = 0.0
    """Entropy bonus at the end of training."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip."""
    normalize_advantages: bool = True
    """Scale advantages to zero mean and unit variance over each batch of trials."""
    ppo_epochs: int = 4
    """PPO: passes over each batch of trials."""
    ppo_minibatches: int = 4
    """PPO: minibatches (of whole trials) per epoch."""
    ppo_clip: float = 0.2
    """PPO: ratio clip epsilon."""
    ppo_target_kl: float | None = None
    """PPO: stop an update's remaining minibatch steps once the mean KL from the policy that
    collected the trials to the current one, measured on a minibatch before its step, exceeds this
    (Duan et al. 2016 bound the mean KL at 0.01). ``None``: all ``ppo_epochs`` always run."""
    weight_decay: float = 0.0
    """Decoupled weight decay on the weight matrices (AdamW; 0: plain Adam)."""
    init_std: float = 0.5
    """Continuous-action families: the Gaussian policy's standard deviation at the start, in units
    of the half-width of the family's action box (a learned, state-independent parameter per
    action dimension). Ignored for discrete families."""
    previous_obs: bool = False
    """Also feed the previous step's observation, so each input is a whole transition
    ``(s, a, r, s')`` (nets/recurrent.py). Off by default (Duan et al. feed ``(s', a, r, d)``)."""
    seed: int = 0
    """Random seed; the same config and seed give the same numbers."""

    def __post_init__(self):
        check_positive_ints(
            self,
            "num_episodes",
            "hidden_size",
            "num_tasks",
            "num_updates",
            "updates_per_chunk",
            "ppo_epochs",
            "ppo_minibatches",
        )
        check_positive(
            self, "learning_rate", "final_learning_rate", "max_grad_norm", "ppo_clip", "init_std"
        )
        check_unit_interval(self, "gamma", "gae_lambda")
        check_unit_interval(self, "final_gamma", optional=True)
        check_non_negative(
            self,
            "value_coef",
            "entropy_coef",
            "final_entropy_coef",
            "weight_decay",
            "reward_decoder_coef",
            "index_head",
        )
        check_positive(self, "ppo_target_kl", optional=True)
        if self.index_head and self.state_heads:
            raise Learn2RLError("config.index_head and config.state_heads cannot both be on")
        check_choice(self, "algorithm", ("a2c", "ppo"))
        check_choice(self, "cell", CELLS)
        check_choice(self, "value_network", ("shared", "separate"))
        check_choice(self, "value_loss", ("mse", "huber"))
        check_choice(self, "reward_decoder_target", ("observed", "expected"))
        check_seed(self)
        if self.algorithm == "ppo" and self.num_tasks % self.ppo_minibatches:
            raise Learn2RLError(
                f"config.num_tasks ({self.num_tasks}) must be divisible by config.ppo_minibatches "
                f"({self.ppo_minibatches})"
            )


def action_scale(family: TaskFamily) -> float:
    """Half-width of a continuous family's action box (1.0 where it is unbounded)."""
    half_width = (float(family.action_high) - float(family.action_low)) / 2.0
    return half_width if math.isfinite(half_width) and half_width > 0 else 1.0


def _kernels(params) -> Any:
    """True for weight matrices (weight decay applies to them, not to biases or norm scales)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: getattr(path[-1], "key", None) == "kernel", params
    )


def observed_mean_rewards(transitions: Transition, num_actions: int):
    """For each step of one trial: the mean reward each action has paid in the current state at
    the trial's earlier steps, ``[T, num_actions]``, and a mask of the actions tried there.

    The state is the step's (one-hot) observation, or a single state for a family without
    observations (bandits); steps after the trial's end count nothing.
    """
    states = transitions.obs.obs.reshape(transitions.reward.shape[0], -1).astype(jnp.float32)
    if states.shape[1] == 0:
        states = jnp.ones((states.shape[0], 1), jnp.float32)
    taken = jax.nn.one_hot(transitions.action, num_actions) * transitions.valid[:, None]
    pairs = states[:, :, None] * taken[:, None, :]  # [T, S, A]: the pair visited at t
    rewards = pairs * transitions.reward[:, None, None]
    # Exclusive sums: what the network has seen when it acts at t.
    counts = jnp.cumsum(pairs, axis=0) - pairs
    sums = jnp.cumsum(rewards, axis=0) - rewards
    counts = jnp.einsum("ts,tsa->ta", states, counts)
    sums = jnp.einsum("ts,tsa->ta", states, sums)
    mask = (counts > 0) * transitions.valid[:, None]
    return jax.lax.stop_gradient(sums / jnp.maximum(counts, 1.0)), mask


def to_returns(value: jax.Array, returns: Moments | None) -> jax.Array:
    """The value head's output in return units (unchanged without return normalisation)."""
    return value if returns is None else returns.mean + returns.std * value


class Categorical:
    """Discrete actions: the policy output is a logits vector; actions are int32 indices."""

    @staticmethod
    def sample(key, logits):
        return jax.random.categorical(key, logits)

    @staticmethod
    def log_prob(logits, action):
        return jax.nn.log_softmax(logits)[action]

    @staticmethod
    def entropy(logits):
        return categorical_entropy(logits)

    @staticmethod
    def mode(logits):
        return jnp.argmax(logits)


class DiagonalGaussian:
    """Continuous actions: the policy output is ``(mean, log_std)``; actions are float32 vectors
    (unclipped: the family clips them to its bounds, the density is that of the sampled vector)."""

    @staticmethod
    def sample(key, policy):
        return gaussian.sample(key, *policy)

    @staticmethod
    def log_prob(policy, action):
        return gaussian.log_prob(*policy, action)

    @staticmethod
    def entropy(policy):
        return gaussian.entropy(policy[1])

    @staticmethod
    def mode(policy):
        return policy[0]


@struct.dataclass
class Moments:
    """Running mean and variance of the value targets (``normalize_returns``)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def empty(cls) -> Moments:
        return cls(mean=jnp.float32(0.0), var=jnp.float32(1.0), count=jnp.float32(0.0))

    @property
    def std(self) -> jax.Array:
        return jnp.sqrt(jnp.maximum(self.var, 1e-4))

    def merge(self, values: jax.Array, weight: jax.Array, axis_name: str) -> Moments:
        """Fold in the weighted ``values`` of every device (Chan et al.'s parallel update)."""
        count = jax.lax.psum(weight.sum(), axis_name)
        mean = jax.lax.psum(jnp.sum(weight * values), axis_name) / jnp.maximum(count, 1.0)
        var = jax.lax.psum(jnp.sum(weight * (values - mean) ** 2), axis_name)
        var = var / jnp.maximum(count, 1.0)
        total = self.count + count
        delta = mean - self.mean
        new_mean = self.mean + delta * count / total
        new_var = self.var * self.count + var * count + delta**2 * self.count * count / total
        return Moments(mean=new_mean, var=new_var / total, count=total)


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    update: jax.Array  # updates done so far
    key: jax.Array  # base key; update u uses fold_in(key, u)
    returns: Moments | None = None  # value-target moments (``normalize_returns`` only)


@struct.dataclass
class Transition:
    obs: TrialObs
    action: jax.Array
    reward: jax.Array
    valid: jax.Array
    log_prob: jax.Array
    entropy: jax.Array
    value: jax.Array
    decoded: jax.Array | None = None  # the reward decoder's output (``reward_decoder_coef``)
    # the task's expected reward of each action in the step's state (``reward_decoder_target``)
    expected: jax.Array | None = None


class RL2:
    """RL^2 for one task family: ``init`` -> ``train_chunk`` (jitted) -> ``agent(params)``.

    A ``types.Learner``; ``family`` defaults to ``make(config.task)``. ``network``: a recurrent
    actor-critic with ``RecurrentActorCritic``'s interface (``(state, obs) -> (state, policy,
    value)``, ``initial_state``, ``initialize``) to train instead of the one the config
    describes (the episodic LSTM of ``learners.episodic.episodic_lstm``)."""

    progress_metric = "trial_return"

    def __init__(
        self,
        config: Config,
        family: TaskFamily | None = None,
        devices: list | None = None,
        network: Any = None,
    ):
        self.config = config
        self.family = make(config.task) if family is None else family
        family = self.family
        self.trial = Trial(family, config.num_episodes)
        continuous = bool(getattr(family, "continuous", False))
        self.network = RecurrentActorCritic(
            num_actions=family.action_size if continuous else family.num_actions,
            max_steps=self.trial.max_steps,
            hidden_size=config.hidden_size,
            cell=config.cell,
            continuous=continuous,
            action_scale=action_scale(family) if continuous else 1.0,
            init_std=config.init_std,
            previous_obs=config.previous_obs,
            obs_size=int(np.prod(family.observation_space().shape)),
            separate_value=config.value_network == "separate",
            state_heads=config.state_heads,
            reward_decoder=config.reward_decoder_coef > 0,
            index_head=config.index_head,
        )
        if network is not None:
            self.network = network
        if config.index_head and continuous:
            raise Learn2RLError(
                f"config.index_head needs a family with discrete actions; {config.task} has "
                "continuous ones"
            )
        if config.reward_decoder_coef > 0 and continuous:
            raise Learn2RLError(
                "config.reward_decoder_coef needs a family with discrete actions; "
                f"{config.task} has continuous ones"
            )
        if (
            config.reward_decoder_coef > 0
            and config.reward_decoder_target == "expected"
            and not family.has_expected_reward
        ):
            raise Learn2RLError(
                "config.reward_decoder_target=expected needs a family with expected rewards "
                f"(has_expected_reward); {config.task} has none"
            )
        self.action_dist = DiagonalGaussian if continuous else Categorical
        # PPO splits each device's share of the batch into minibatches again.
        per_device = config.ppo_minibatches if config.algorithm == "ppo" else 1
        self.chunks = ShardedChunks(config.num_tasks, "tasks", devices, per_device)
        self.devices, self.mesh = self.chunks.devices, self.chunks.mesh
        schedule = optax.linear_schedule(
            config.learning_rate, config.final_learning_rate, config.num_updates
        )
        if config.weight_decay > 0:
            adam = optax.adamw(schedule, weight_decay=config.weight_decay, mask=_kernels)
        else:
            adam = optax.adam(schedule)
        self.optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), adam)

    @property
    def episodes_per_trial(self) -> int:
        """Episodes of one trial (``config.num_episodes``)."""
        return self.config.num_episodes

    @property
    def steps_per_update(self) -> int:
        """Environment steps of one update: ``num_tasks`` trials of ``trial.max_steps``."""
        return self.config.num_tasks * self.trial.max_steps

    # --- setup ------------------------------------------------------------------------------
    def init(self, seed: int | None = None) -> TrainState:
        seed = self.config.seed if seed is None else seed
        key = jax.random.PRNGKey(seed)
        init_key, run_key = jax.random.split(key)
        obs, _ = self.trial.reset(init_key, self.family.default_params)
        params = self.network.init(init_key, self.network.initial_state(), obs, method="initialize")
        state = TrainState(
            params=params,
            opt_state=self.optimizer.init(params),
            update=jnp.int32(0),
            key=run_key,
            returns=Moments.empty() if self.config.normalize_returns else None,
        )
        return self.place(state)

    def place(self, state: TrainState) -> TrainState:
        """Replicate a train state over the devices (as ``train_chunk`` returns it), so that a fresh
        or restored state and a trained one hit the same compiled chunk."""
        return self.chunks.place(state)

    def entropy_coef(self, update: jax.Array) -> jax.Array:
        c = self.config
        frac = jnp.minimum(update / c.num_updates, 1.0)
        return c.entropy_coef + (c.final_entropy_coef - c.entropy_coef) * frac

    def gamma(self, update: jax.Array) -> jax.Array:
        """The discount at ``update`` (``gamma``, or its linear schedule to ``final_gamma``)."""
        c = self.config
        if c.final_gamma is None:
            return jnp.float32(c.gamma)
        frac = jnp.minimum(update / c.num_updates, 1.0)
        return jnp.float32(c.gamma + (c.final_gamma - c.gamma) * frac)

    # --- one trial --------------------------------------------------------------------------
    def rollout(self, params, key: jax.Array, task_params: Any) -> Transition:
        """Run one trial with the current policy (unbatched); differentiable in ``params``."""
        key_reset, key_steps = jax.random.split(key)
        obs, state = self.trial.reset(key_reset, task_params)

        def step(carry, step_key):
            obs, state, hidden = carry
            hidden, policy, value = self.network.apply(params, hidden, obs)
            decoded = self._decode(params, hidden, obs)
            key_act, key_env = jax.random.split(step_key)
            action = self.action_dist.sample(key_act, jax.lax.stop_gradient(policy))
            valid = jnp.logical_not(state.trial_done)
            expected = self._expected_rewards(task_params, state)
            next_obs, state, reward, _, _ = self.trial.step(key_env, state, action, task_params)
            transition = Transition(
                obs=obs,
                action=action,
                reward=reward,
                valid=valid,
                log_prob=self.action_dist.log_prob(policy, action),
                entropy=self.action_dist.entropy(policy),
                value=value,
                decoded=decoded,
                expected=expected,
            )
            return (next_obs, state, hidden), transition

        carry = (obs, state, self.network.initial_state())
        keys = jax.random.split(key_steps, self.trial.max_steps)
        _, transitions = jax.lax.scan(step, carry, keys)
        return transitions

    def advantages(
        self,
        transitions: Transition,
        gamma: jax.Array | float | None = None,
        returns: Moments | None = None,
    ):
        """GAE over the whole trial (unbatched); values enter as constants. ``gamma`` defaults
        to ``config.gamma``; ``returns`` maps a normalised value head back to returns."""
        gamma = self.config.gamma if gamma is None else gamma
        discount = gamma * transitions.valid[1:].astype(jnp.float32)
        discount = jnp.concatenate([discount, jnp.zeros((1,))])  # the trial's end is terminal
        values = to_returns(jax.lax.stop_gradient(transitions.value), returns) * transitions.valid
        return generalized_advantage_estimation(
            transitions.reward, discount, values, jnp.float32(0.0), self.config.gae_lambda
        )

    def _value_targets(self, transitions: Transition, advantage, returns: Moments | None):
        """Value targets in the head's units (the returns' moments updated with this batch)."""
        target = jax.lax.stop_gradient(advantage + to_returns(transitions.value, returns))
        if returns is None:
            return target, None
        returns = returns.merge(target, transitions.valid.astype(jnp.float32), "tasks")
        return (target - returns.mean) / returns.std, returns

    def _combine(self, policy_objective, value, target, entropy, valid, entropy_coef):
        """Mean over a trial's valid steps of -objective + c_v * value error - c_H * entropy."""
        weight = valid.astype(jnp.float32) / jnp.maximum(valid.sum(), 1)
        policy_loss = -jnp.sum(weight * policy_objective)
        if self.config.value_loss == "huber":
            value_loss = jnp.sum(weight * optax.huber_loss(value, target, delta=1.0))
        else:
            value_loss = 0.5 * jnp.sum(weight * (value - target) ** 2)
        mean_entropy = jnp.sum(weight * entropy)
        loss = policy_loss + self.config.value_coef * value_loss - entropy_coef * mean_entropy
        return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": mean_entropy}

    # --- the reward decoder (auxiliary) ---------------------------------------------------------
    def _decode(self, params, hidden, obs: TrialObs) -> jax.Array | None:
        if self.config.reward_decoder_coef == 0:
            return None
        return self.network.apply(params, hidden, obs, method="decode")

    def _expected_rewards(self, task_params, state) -> jax.Array | None:
        """The task's expected reward of every action in the trial state's current environment
        state (``reward_decoder_target="expected"``; ``None`` otherwise)."""
        c = self.config
        if c.reward_decoder_coef == 0 or c.reward_decoder_target != "expected":
            return None
        actions = jnp.arange(self.network.num_actions)
        expected = jax.vmap(self.family.expected_reward, (None, None, 0))
        return expected(task_params, state.env_state, actions).astype(jnp.float32)

    def _decoder_loss(self, transitions: Transition, metrics: dict) -> jax.Array:
        """``reward_decoder_coef`` x the decoder's mean squared error on one trial (0 without a
        decoder), and ``metrics`` with the error added as ``decoder_loss``."""
        if self.config.reward_decoder_coef == 0:
            return jnp.float32(0.0), metrics
        if self.config.reward_decoder_target == "expected":
            target = transitions.expected
            mask = jnp.broadcast_to(transitions.valid[:, None], target.shape).astype(jnp.float32)
        else:
            target, mask = observed_mean_rewards(transitions, self.network.num_actions)
        error = 0.5 * jnp.sum(mask * (transitions.decoded - target) ** 2)
        loss = error / jnp.maximum(mask.sum(), 1.0)
        return self.config.reward_decoder_coef * loss, {**metrics, "decoder_loss": loss}

    # --- A2C ----------------------------------------------------------------------------------
    def _a2c_loss(self, params, keys, tasks, entropy_coef, gamma, returns):
        """Mean A2C loss over this device's trials; runs the trials (one pass for act + grad)."""
        t = jax.vmap(partial(self.rollout, params))(keys, tasks)
        advantage = jax.vmap(self.advantages, (0, None, None))(t, gamma, returns)
        target, returns = self._value_targets(t, advantage, returns)
        if self.config.normalize_advantages:
            advantage = self._normalize(advantage, t.valid)
        losses, metrics = jax.vmap(self._combine, in_axes=(0, 0, 0, 0, 0, None))(
            t.log_prob * jax.lax.stop_gradient(advantage),
            t.value,
            target,
            t.entropy,
            t.valid,
            entropy_coef,
        )
        decoder_losses, metrics = jax.vmap(self._decoder_loss)(t, metrics)
        losses = losses + decoder_losses
        metrics["trial_return"] = jnp.sum(t.reward, axis=1)
        return losses.mean(), (jax.tree.map(jnp.mean, metrics), returns)

    @staticmethod
    def _normalize(advantage, valid):
        """Zero-mean, unit-variance advantages over the valid steps of all devices' trials."""
        weight = valid.astype(jnp.float32)
        count = jax.lax.psum(weight.sum(), "tasks")
        mean = jax.lax.psum(jnp.sum(weight * advantage), "tasks") / count
        var = jax.lax.psum(jnp.sum(weight * (advantage - mean) ** 2), "tasks") / count
        return jax.lax.stop_gradient((advantage - mean) / (jnp.sqrt(var) + 1e-8))

    def _a2c_update(self, params, opt_state, keys, tasks, entropy_coef, gamma, returns):
        grads, (metrics, returns) = jax.grad(self._a2c_loss, has_aux=True)(
            params, keys, tasks, entropy_coef, gamma, returns
        )
        grads, metrics = jax.lax.pmean((grads, metrics), "tasks")
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, returns, metrics

    # --- PPO ----------------------------------------------------------------------------------
    def _replay(self, params, transitions: Transition):
        """Re-run the network over a stored trial (unbatched): log-probs, entropies, values and
        the reward decoder's outputs (``None`` without one)."""

        def step(hidden, inputs):
            obs, action = inputs
            hidden, policy, value = self.network.apply(params, hidden, obs)
            return hidden, (
                self.action_dist.log_prob(policy, action),
                self.action_dist.entropy(policy),
                value,
                self._decode(params, hidden, obs),
            )

        _, outputs = jax.lax.scan(
            step, self.network.initial_state(), (transitions.obs, transitions.action)
        )
        return outputs

    def _ppo_update(
        self, params, opt_state, keys, tasks, entropy_coef, gamma, returns, key_shuffle
    ):
        c = self.config
        transitions = jax.vmap(partial(self.rollout, params))(keys, tasks)
        advantages = jax.vmap(self.advantages, (0, None, None))(transitions, gamma, returns)
        targets, returns = self._value_targets(transitions, advantages, returns)
        num_local = keys.shape[0]
        minibatch = num_local // c.ppo_minibatches

        def minibatch_loss(params, batch):
            t, adv, target = batch
            if c.normalize_advantages:
                adv = self._normalize(adv, t.valid)

            def task_loss(t, adv, target):
                log_prob, entropy, value, decoded = self._replay(params, t)
                log_ratio = log_prob - t.log_prob
                objective = ppo_clip_objective(log_ratio, adv, c.ppo_clip)
                loss, metrics = self._combine(
                    objective, value, target, entropy, t.valid, entropy_coef
                )
                decoder_loss, metrics = self._decoder_loss(t.replace(decoded=decoded), metrics)
                loss = loss + decoder_loss
                # KL(old || new) per step, by the non-negative estimator (r - 1) - log r.
                kl = jnp.expm1(log_ratio) - log_ratio
                weight = t.valid / jnp.maximum(t.valid.sum(), 1)
                metrics["approx_kl"] = jax.lax.stop_gradient(jnp.sum(weight * kl))
                clipped = jnp.abs(jnp.exp(log_ratio) - 1.0) > c.ppo_clip
                metrics["clip_fraction"] = jnp.sum(weight * clipped)
                return loss, metrics

            losses, metrics = jax.vmap(task_loss)(t, adv, target)
            return losses.mean(), jax.tree.map(jnp.mean, metrics)

        def sgd_step(carry, batch):
            params, opt_state, stopped = carry
            grads, metrics = jax.grad(minibatch_loss, has_aux=True)(params, batch)
            grads, metrics = jax.lax.pmean((grads, metrics), "tasks")
            updates, new_opt_state = self.optimizer.update(grads, opt_state, params)
            new = (optax.apply_updates(params, updates), new_opt_state)
            if c.ppo_target_kl is None:
                params, opt_state = new
            else:
                # The KL was measured before this step: past the bound, this and every later
                # step of the update are skipped (on every device alike, after the pmean).
                stopped = jnp.logical_or(stopped, metrics["approx_kl"] > c.ppo_target_kl)
                params, opt_state = jax.tree.map(
                    lambda old, new: jnp.where(stopped, old, new), (params, opt_state), new
                )
            metrics["sgd_steps"] = 1.0 - stopped.astype(jnp.float32)
            return (params, opt_state, stopped), metrics

        def epoch(carry, epoch_key):
            order = jax.random.permutation(epoch_key, num_local)
            batches = jax.tree.map(
                lambda x: x[order].reshape((c.ppo_minibatches, minibatch) + x.shape[1:]),
                (transitions, advantages, targets),
            )
            return jax.lax.scan(sgd_step, carry, batches)

        (params, opt_state, _), metrics = jax.lax.scan(
            epoch,
            (params, opt_state, jnp.bool_(False)),
            jax.random.split(key_shuffle, c.ppo_epochs),
        )
        metrics = jax.tree.map(jnp.mean, metrics)  # sgd_steps: the fraction taken
        metrics["trial_return"] = jnp.sum(transitions.reward, axis=1).mean()
        metrics = jax.lax.pmean(metrics, "tasks")
        return params, opt_state, returns, metrics

    # --- training chunks ------------------------------------------------------------------------
    def _local_updates(self, state: TrainState, device_tasks: jax.Array, *, num_updates: int):
        """Runs on each device with its slice ``device_tasks`` of the task-batch indices."""
        c = self.config

        def one_update(carry, _):
            params, opt_state, returns, update = carry
            update_key = jax.random.fold_in(state.key, update)
            key_tasks, key_trials, key_shuffle = jax.random.split(update_key, 3)
            # Keys are drawn for the whole batch and sliced, so each task's randomness does not
            # depend on how many devices share the batch.
            task_keys = jax.random.split(key_tasks, c.num_tasks)[device_tasks]
            trial_keys = jax.random.split(key_trials, c.num_tasks)[device_tasks]
            tasks = jax.vmap(partial(self.family.sample, split="train"))(task_keys)
            entropy_coef, gamma = self.entropy_coef(update), self.gamma(update)
            if c.algorithm == "a2c":
                params, opt_state, returns, metrics = self._a2c_update(
                    params, opt_state, trial_keys, tasks, entropy_coef, gamma, returns
                )
            else:
                params, opt_state, returns, metrics = self._ppo_update(
                    params,
                    opt_state,
                    trial_keys,
                    tasks,
                    entropy_coef,
                    gamma,
                    returns,
                    jax.random.fold_in(key_shuffle, device_tasks[0]),
                )
            return (params, opt_state, returns, update + 1), metrics

        carry = (state.params, state.opt_state, state.returns, state.update)
        (params, opt_state, returns, update), metrics = jax.lax.scan(
            one_update, carry, None, length=num_updates
        )
        state = state.replace(params=params, opt_state=opt_state, returns=returns, update=update)
        return state, metrics

    def train_chunk(self, state: TrainState, num_updates: int) -> tuple[TrainState, dict]:
        """``num_updates`` updates inside one jit; returns per-update metrics (arrays)."""
        return self.chunks.run(self._local_updates, state, num_updates)

    def train_members(self, states: TrainState, num_updates: int) -> tuple[TrainState, dict]:
        """``train_chunk`` for a stack of train states (e.g. ``init`` of several seeds stacked
        on a leading axis), trained side by side in one compiled call (``learn2rl sweep``)."""
        return self.chunks.run(self._local_updates, states, num_updates, members=True)

    # --- the adapted agent -------------------------------------------------------------------
    def agent(self, params, greedy: bool = False, name: str = "rl2", network: Any = None) -> Agent:
        """The meta-trained policy as an ``Agent``: adaptation is the recurrent state update.

        ``greedy`` takes the most likely action: the argmax of the logits, or the Gaussian's mean.
        ``network``: run ``params`` in this network instead of the learner's (one with the same
        parameters but other switches, e.g. the episodic LSTM with retrieval off).
        """
        network = self.network if network is None else network
        action_dist = self.action_dist

        def build(params):
            def init(key, task_params):
                return network.initial_state()

            def act(key, hidden, obs):
                hidden, policy, _ = network.apply(params, hidden, obs)
                action = action_dist.mode(policy) if greedy else action_dist.sample(key, policy)
                return action, hidden

            return Agent(name=name, init=init, act=act)

        # The functions depend on nothing else (the network module compares by its fields), so
        # every checkpoint of every learner with this network shares one compiled evaluation.
        return AgentKind(("rl2", network, action_dist, greedy), build).bind(params)
