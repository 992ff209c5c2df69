"""Meta-gradient RL: an actor-critic that tunes its own discount and bootstrapping online.

Xu, van Hasselt & Silver 2018, "Meta-Gradient Reinforcement Learning" (NeurIPS 2018, arXiv
1805.09801). One agent learns on one discrete-action gymnax environment (``num_envs`` copies with
automatic reset, rollouts of ``rollout_length`` steps). Its update depends on meta-parameters
``eta = (gamma, lambda)``, each stored as a logit (``gamma = sigmoid(logit)``), through the
lambda-return (the paper's section on meta-gradients for the return)

    g_eta(tau_t) = R_{t+1} + gamma (1 - lambda) v(S_{t+1}) + gamma lambda g_eta(tau_{t+1}).

One update, the paper's online cross-validation with trace decay mu = 0:

1. inner step on the pending rollout ``tau`` (collected by ``theta``):
   ``theta' = theta + optax_update(grad_theta L(tau, theta, eta))`` with the actor-critic loss
   ``L = -(g_eta - v) log pi(A|S) + b/2 (g_eta - v)^2 - c H(pi(.|S))`` (the paper's actor-critic
   update ``f``; ``g_eta`` is a target: no gradient flows into theta through it);
2. collect the next rollout ``tau'`` with ``theta'``;
3. meta-objective on ``tau'``, the policy-gradient part of the same loss with a fixed reference
   ``eta' = (gamma', lambda')``: ``J'(tau', theta', eta') = -(g_eta'(tau') - v_theta'(S'))
   log pi_theta'(A'|S')`` with the advantage under stop-gradient (the paper's policy-gradient
   meta-objective);
4. meta-gradient ``dJ'/d eta = dJ'/d theta' . d theta'/d eta`` (the paper's chain rule, with
   ``d theta / d eta`` taken as 0: no accumulated trace), computed by ``jax.vjp`` through the
   one optax update of step 1, and ``eta`` takes one step of its own optax optimiser;
5. ``tau'`` becomes the next update's pending rollout.

Policy and value share an MLP torso conditioned on ``eta`` (the paper's "conditioned value and
policy functions"): a learned linear embedding ``e_eta = W_eta (gamma, lambda)`` concatenated to
the torso's features, then one more hidden layer and the two heads. The conditioning input is
``eta`` under stop-gradient, as in the paper's meta-gradient, which flows only through the return
``g_eta``. ``eta_embedding=False`` drops the embedding (the paper's ablation);
``meta_gradient=False`` (or ``meta_learning_rate=0``) is the same agent with ``eta`` fixed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
import optax
from flax import linen as nn
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.learners.base import (
    ConfigMixin,
    SeedsOverDevices,
    check_choice,
    check_layer_sizes,
    check_non_negative,
    check_positive,
    check_positive_ints,
    check_seed,
    check_unit_interval,
    scanned_chunk,
)
from learn2rl.types import Agent, AgentKind

# gymnax environments with a discrete action space that build offline (MNISTBandit downloads its
# data; the bandits and FrozenLake have no observation worth an MLP).
GYMNAX_DISCRETE = (
    "Catch-bsuite",
    "DeepSea-bsuite",
    "DiscountingChain-bsuite",
    "MemoryChain-bsuite",
    "UmbrellaChain-bsuite",
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "Asterix-MinAtar",
    "Breakout-MinAtar",
    "Freeway-MinAtar",
    "SpaceInvaders-MinAtar",
    "FourRooms-misc",
    "MetaMaze-misc",
    "Pong-misc",
)


@dataclass(frozen=True)
class Config(ConfigMixin):
    """Meta-gradient actor-critic settings. Defaults: gymnax Catch-bsuite, 16 environments,
    rollouts of 20 steps, 300 updates (96k environment steps)."""

    learner = "metagradient"

    env: str = "Catch-bsuite"
    """A gymnax environment with discrete actions (``metagradient.GYMNAX_DISCRETE``); observations
    are flattened."""
    chain_arm: int | None = None
    """``DiscountingChain-bsuite`` only: the arm whose reward is 1.1 instead of 1 (gymnax's
    ``mapping_seed``; arm ``i`` pays after 1, 3, 10, 30, 100 steps). None keeps gymnax's default,
    arm 0, which pays after one step, so that no discount prefers another arm; arm 2 (10 steps)
    is the best arm for ``gamma > 0.9895`` only."""
    num_updates: int = 300
    """Updates in a run (each ``num_envs * rollout_length`` environment steps)."""
    updates_per_chunk: int = 50
    """Updates per jitted chunk."""
    num_envs: int = 16
    """Parallel environments (reset automatically at episode ends)."""
    rollout_length: int = 20
    """Steps per environment per rollout (the paper's n-step trajectories; IMPALA: 20)."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layers of the torso; one more layer of the last width follows the eta embedding."""
    eta_embedding: bool = True
    """Condition policy and value on eta through a learned linear embedding (as in the paper);
    False is the paper's ablation."""
    embedding_size: int = 16
    """Width of the eta embedding ``W_eta (gamma, lambda)``."""
    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    """Optax optimiser of the inner (agent) update; the meta-gradient goes through it. Adam uses
    ``eps_root=1e-8`` so its square root is differentiable where a gradient entry is 0."""
    learning_rate: float = 3e-3
    """Step size of the inner update (alpha)."""
    max_grad_norm: float | None = None
    """Global-norm clip of the inner gradient (None: no clip)."""
    value_coef: float = 0.5
    """Weight b of the value loss ``(g_eta - v)^2 / 2``."""
    entropy_coef: float = 0.01
    """Weight c of the entropy bonus."""
    initial_gamma: float = 0.99
    """Discount gamma at the start (stored as its logit, so strictly inside (0, 1))."""
    initial_lambda: float = 0.95
    """Bootstrapping parameter lambda at the start (a logit too: strictly inside (0, 1))."""
    outer_critic: bool = False
    """A second value head trained on the reference return ``g_eta'`` and used for ``J'``'s
    bootstrap and baseline (Bonnet et al. 2022's "outer value function"); False uses the inner
    critic there, as the paper does, which biases the meta-gradient towards a myopic gamma."""
    meta_gradient: bool = True
    """Learn eta by meta-gradients; False keeps eta fixed (the plain actor-critic)."""
    meta_optimizer: Literal["adam", "sgd"] = "adam"
    """Optax optimiser of the eta logits."""
    meta_learning_rate: float = 1e-3
    """Step size beta of the meta update (0: eta never moves)."""
    reference_gamma: float = 0.995
    """gamma' of the meta-objective's fixed reference eta' (paper: 0.995)."""
    reference_lambda: float = 1.0
    """lambda' of the meta-objective's fixed reference eta' (paper: 1)."""
    seed: int = 0
    """Random seed; the same config and seed give the same numbers."""

    def __post_init__(self):
        if self.env not in GYMNAX_DISCRETE:
            raise Learn2RLError(
                f"config.env must be a discrete-action gymnax environment, got {self.env!r}; "
                f"known: {', '.join(GYMNAX_DISCRETE)}"
            )
        if self.chain_arm is not None:
            if self.env != "DiscountingChain-bsuite":
                raise Learn2RLError(
                    f"config.chain_arm applies to DiscountingChain-bsuite only, not {self.env!r}"
                )
            if isinstance(self.chain_arm, bool) or self.chain_arm not in range(5):
                raise Learn2RLError(
                    f"config.chain_arm must be an arm 0-4 of DiscountingChain-bsuite, got "
                    f"{self.chain_arm!r}"
                )
        check_positive_ints(
            self, "num_updates", "updates_per_chunk", "num_envs", "rollout_length", "embedding_size"
        )
        check_layer_sizes(self)
        check_positive(self, "learning_rate")
        check_positive(self, "max_grad_norm", optional=True)
        check_non_negative(self, "value_coef", "entropy_coef", "meta_learning_rate")
        for name in ("initial_gamma", "initial_lambda"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 1:
                raise Learn2RLError(
                    f"config.{name} must lie strictly inside (0, 1) (it is stored as a logit), "
                    f"got {value!r}"
                )
        check_unit_interval(self, "reference_gamma", "reference_lambda")
        check_choice(self, "optimizer", ("adam", "rmsprop", "sgd"))
        check_choice(self, "meta_optimizer", ("adam", "sgd"))
        for name in ("eta_embedding", "meta_gradient", "outer_critic"):
            if not isinstance(getattr(self, name), bool):
                raise Learn2RLError(
                    f"config.{name} must be true or false, got {getattr(self, name)!r}"
                )
        check_seed(self)


# --- the environment ----------------------------------------------------------------------------
class DiscreteEnv:
    """One gymnax environment with discrete actions (``options`` go to ``gymnax.make``; default
    parameters), observations flattened to float32 vectors, reset automatically at episode ends.
    ``step`` returns the observation to act on next (a fresh episode's after an end) and
    ``final_obs``, the true next observation, which a truncated episode bootstraps from."""

    def __init__(self, name: str, **options):
        import gymnax

        if name not in GYMNAX_DISCRETE:
            raise Learn2RLError(
                f"unknown discrete gymnax environment {name!r}; known: {', '.join(GYMNAX_DISCRETE)}"
            )
        self.name = name
        self.options = tuple(sorted(options.items()))
        self._env, self._params = gymnax.make(name, **options)
        shape = self._env.observation_space(self._params).shape
        self.observation_size = math.prod(shape) if shape else 1
        self.num_actions = int(self._env.action_space(self._params).n)
        self.max_episode_steps = int(self._params.max_steps_in_episode)

    def _flat(self, obs) -> jax.Array:
        return jnp.asarray(obs, jnp.float32).reshape(self.observation_size)

    def reset(self, key: jax.Array) -> tuple[jax.Array, Any]:
        obs, state = self._env.reset(key, self._params)
        return self._flat(obs), state

    def step(self, key: jax.Array, state: Any, action: jax.Array):
        """``(obs, state, reward, terminated, truncated, final_obs)`` for one unbatched step."""
        obs, state, reward, terminated, truncated, info = self._env.step(
            key, state, action, self._params
        )
        return (
            self._flat(obs),
            state,
            jnp.asarray(reward, jnp.float32).reshape(()),
            jnp.asarray(terminated, bool).reshape(()),
            jnp.asarray(truncated, bool).reshape(()),
            self._flat(info["final_observation"]),
        )

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self) and other.name == self.name and other.options == self.options
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.name, self.options))


# --- the network and the returns ----------------------------------------------------------------
class EtaConditionedActorCritic(nn.Module):
    """``(obs, eta) -> (logits, value, outer value)``: an MLP torso on the observation, the
    linear embedding ``W_eta eta`` of ``eta = (gamma, lambda)`` concatenated to its features (when
    ``eta_embedding``), one more ReLU layer, then policy logits and a scalar value; with
    ``outer_critic`` one more scalar head (the reference return's value; otherwise the outer value
    is the value). Works on any leading batch shape of ``obs``; ``eta`` is one unbatched pair."""

    num_actions: int
    hidden_sizes: tuple[int, ...]
    eta_embedding: bool = True
    embedding_size: int = 16
    outer_critic: bool = False

    @nn.compact
    def __call__(self, obs: jax.Array, eta: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        x = obs
        for size in self.hidden_sizes:
            x = nn.relu(nn.Dense(size)(x))
        if self.eta_embedding:
            embedding = nn.Dense(self.embedding_size, use_bias=False, name="eta_embedding")(eta)
            x = jnp.concatenate(
                [x, jnp.broadcast_to(embedding, (*x.shape[:-1], embedding.shape[-1]))], -1
            )
        x = nn.relu(nn.Dense(self.hidden_sizes[-1])(x))
        logits = nn.Dense(self.num_actions)(x)
        value = nn.Dense(1)(x)[..., 0]
        outer = nn.Dense(1, name="outer_value")(x)[..., 0] if self.outer_critic else value
        return logits, value, outer


def lambda_returns(
    r_t: jax.Array,
    discount_t: jax.Array,
    v_tp1: jax.Array,
    continue_t: jax.Array,
    lambda_: jax.Array,
) -> jax.Array:
    """The lambda-return over one rollout, episode ends inside it handled:

    g_t = r_t + discount_t [(1 - lambda c_t) v_tp1 + lambda c_t g_{t+1}],

    with ``discount_t = gamma (1 - terminated_t)``, ``v_tp1`` the value of the true next state
    and ``c_t = 1 - done_t`` (0 at the last step, which bootstraps fully). Time runs along axis 0;
    trailing axes (environments) are elementwise.
    """
    c_t = continue_t.at[-1].set(0.0)

    def backward(g_next, inputs):
        r, discount, v, c = inputs
        g = r + discount * ((1.0 - lambda_ * c) * v + lambda_ * c * g_next)
        return g, g

    _, g = jax.lax.scan(
        backward, jnp.zeros_like(r_t[0]), (r_t, discount_t, v_tp1, c_t), reverse=True
    )
    return g


@struct.dataclass
class Rollout:
    """``rollout_length`` steps of ``num_envs`` environments (time first): the observation acted
    on, the action, the reward, the two end flags and the true next observation."""

    obs: jax.Array  # [T, N, D]
    actions: jax.Array  # [T, N] int32
    rewards: jax.Array  # [T, N]
    terminated: jax.Array  # [T, N] float (1: no bootstrap)
    truncated: jax.Array  # [T, N] float (1: time limit, bootstrap from next_obs)
    next_obs: jax.Array  # [T, N, D]


def eta_values(eta_logits: jax.Array) -> jax.Array:
    """``(gamma, lambda)`` from their logits."""
    return jax.nn.sigmoid(eta_logits)


class MetaGradientCore:
    """The agent's maths as pure functions of (network, optimiser state, eta logits, rollouts):
    what the learner runs and the tests check, independent of any environment."""

    def __init__(self, config: Config, observation_size: int, num_actions: int):
        self.config = config
        self.observation_size = observation_size
        self.num_actions = num_actions
        self.net = EtaConditionedActorCritic(
            num_actions,
            tuple(config.hidden_sizes),
            config.eta_embedding,
            config.embedding_size,
            config.outer_critic,
        )
        self.optimizer = self._inner_optimizer(config)
        self.meta_optimizer = (
            optax.adam(config.meta_learning_rate)
            if config.meta_optimizer == "adam"
            else optax.sgd(config.meta_learning_rate)
        )

    @staticmethod
    def _inner_optimizer(config: Config) -> optax.GradientTransformation:
        lr = config.learning_rate
        base = {
            "adam": lambda: optax.adam(lr, eps_root=1e-8),
            "rmsprop": lambda: optax.rmsprop(lr, decay=0.99, eps=1e-5),
            "sgd": lambda: optax.sgd(lr),
        }[config.optimizer]()
        if config.max_grad_norm is None:
            return base
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm), base)

    def init_network(self, key: jax.Array):
        obs = jnp.zeros((self.observation_size,), jnp.float32)
        return self.net.init(key, obs, jnp.zeros((2,), jnp.float32))

    def initial_eta_logits(self) -> jax.Array:
        c = self.config
        values = jnp.array([c.initial_gamma, c.initial_lambda], jnp.float32)
        return jnp.log(values) - jnp.log1p(-values)

    def _returns(
        self, network, cond, rollout: Rollout, gamma, lambda_, stop_values: bool, outer=False
    ):
        """``(logits, values, g)``: the network on the rollout and the lambda-return of
        ``(gamma, lambda_)`` bootstrapped from its values of the true next states (the outer
        value head's with ``outer``, which also gives ``values``)."""
        logits, values, outer_values = self.net.apply(network, rollout.obs, cond)
        _, next_values, next_outer = self.net.apply(network, rollout.next_obs, cond)
        if outer:
            values, next_values = outer_values, next_outer
        if stop_values:
            next_values = jax.lax.stop_gradient(next_values)
        done = jnp.maximum(rollout.terminated, rollout.truncated)
        g = lambda_returns(
            rollout.rewards,
            gamma * (1.0 - rollout.terminated),
            next_values,
            1.0 - done,
            lambda_,
        )
        return logits, values, g

    def inner_loss(self, network, eta_logits, cond, rollout: Rollout):
        """The actor-critic loss ``L(tau, theta, eta)`` whose gradient step is the update ``f``:
        a differentiable function of ``eta_logits`` through the lambda-return only."""
        c = self.config
        gamma, lambda_ = eta_values(eta_logits)
        logits, values, g = self._returns(network, cond, rollout, gamma, lambda_, True)
        log_probs = jax.nn.log_softmax(logits)
        log_pi = jnp.take_along_axis(log_probs, rollout.actions[..., None], -1)[..., 0]
        advantage = g - jax.lax.stop_gradient(values)
        policy_loss = -jnp.mean(advantage * log_pi)
        value_loss = 0.5 * jnp.mean((g - values) ** 2)
        entropy = -jnp.mean(jnp.sum(jnp.exp(log_probs) * log_probs, -1))
        loss = policy_loss + c.value_coef * value_loss - c.entropy_coef * entropy
        metrics = {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}
        if c.outer_critic:  # regress the outer head on the reference return (free of eta)
            _, outer_values, g_ref = self._returns(
                network, cond, rollout, c.reference_gamma, c.reference_lambda, True, outer=True
            )
            outer_loss = 0.5 * jnp.mean((g_ref - outer_values) ** 2)
            loss = loss + c.value_coef * outer_loss
            metrics["outer_value_loss"] = outer_loss
        return loss, metrics

    def inner_step(self, network, opt_state, eta_logits, cond, rollout: Rollout):
        """``(theta', opt_state', metrics)``: one optax step on the inner loss."""
        grads, metrics = jax.grad(self.inner_loss, has_aux=True)(network, eta_logits, cond, rollout)
        updates, opt_state = self.optimizer.update(grads, opt_state, network)
        return optax.apply_updates(network, updates), opt_state, metrics

    def inner_step_with_pullback(self, network, opt_state, eta_logits, cond, rollout: Rollout):
        """``inner_step`` plus the pullback ``dtheta'/deta^T``: a function from a cotangent of
        theta' to one of ``eta_logits`` (the vector-Jacobian product through the update)."""

        def updated(logits):
            new_network, new_opt_state, metrics = self.inner_step(
                network, opt_state, logits, cond, rollout
            )
            return new_network, (new_opt_state, metrics)

        new_network, pullback, (new_opt_state, metrics) = jax.vjp(updated, eta_logits, has_aux=True)
        return new_network, new_opt_state, metrics, lambda cotangent: pullback(cotangent)[0]

    def meta_advantage(self, network, cond, rollout: Rollout) -> jax.Array:
        """``g_eta'(tau') - v_theta'(S')``: the advantage of the reference return (a constant of
        the meta-objective), on the outer critic when there is one."""
        c = self.config
        _, values, g = self._returns(
            network, cond, rollout, c.reference_gamma, c.reference_lambda, True, c.outer_critic
        )
        return g - values

    def policy_surrogate(self, network, cond, rollout: Rollout, advantage) -> jax.Array:
        """``-mean(advantage log pi_theta(A|S))``: its gradient in theta is minus the
        policy-gradient estimate with the given (constant) advantages."""
        logits, *_ = self.net.apply(network, rollout.obs, cond)
        log_pi = jnp.take_along_axis(jax.nn.log_softmax(logits), rollout.actions[..., None], -1)
        return -jnp.mean(advantage * log_pi[..., 0])

    def meta_objective(self, network, cond, rollout: Rollout) -> jax.Array:
        """``J'(tau', theta', eta')`` as a loss: the policy surrogate of the reference return's
        advantage under stop-gradient, so ``dJ'/dtheta' = -mean((g_eta' - v) grad log pi)``
        (the paper's policy-gradient meta-objective)."""
        advantage = jax.lax.stop_gradient(self.meta_advantage(network, cond, rollout))
        return self.policy_surrogate(network, cond, rollout, advantage)

    def meta_gradient(self, network, opt_state, eta_logits, rollout, next_rollout, cond=None):
        """``(J', dJ'/d eta_logits)`` for a fixed pair of rollouts: the meta-objective on
        ``next_rollout`` after the inner step on ``rollout``, differentiated through that step
        (the learner runs the same two pieces with a rollout collection between them)."""
        cond = eta_values(eta_logits) if cond is None else cond
        new_network, _, _, pullback = self.inner_step_with_pullback(
            network, opt_state, eta_logits, jax.lax.stop_gradient(cond), rollout
        )
        value, grad_theta = jax.value_and_grad(self.meta_objective)(new_network, cond, next_rollout)
        return value, pullback(grad_theta)

    def act(self, network, cond, obs, key, greedy: bool = False) -> jax.Array:
        logits, *_ = self.net.apply(network, obs, cond)
        if greedy:
            return jnp.argmax(logits, -1)
        return jax.random.categorical(key, logits)


# --- the learner --------------------------------------------------------------------------------
@struct.dataclass
class TrainState:
    network: Any
    opt_state: Any
    eta_logits: jax.Array  # [2]: logits of (gamma, lambda)
    meta_opt_state: Any
    env_state: Any  # [N] environment states
    obs: jax.Array  # [N, D] observations to act on next
    rollout: Rollout  # the pending rollout, collected by ``network``
    running_return: jax.Array  # [N] return of each environment's current episode so far
    last_return: jax.Array  # mean return of the episodes that ended in the latest rollout
    update: jax.Array
    key: jax.Array

    @property
    def params(self) -> dict[str, Any]:
        """What the agent needs: the network and the eta logits it is conditioned on."""
        return {"network": self.network, "eta_logits": self.eta_logits}


class MetaGradient(SeedsOverDevices):
    """A meta-gradient actor-critic on one discrete-action gymnax environment."""

    progress_metric = "episode_return"

    def __init__(self, config: Config, devices: list | None = None):
        self.config = config
        options = {} if config.chain_arm is None else {"mapping_seed": config.chain_arm}
        self.env = DiscreteEnv(config.env, **options)
        self.core = MetaGradientCore(config, self.env.observation_size, self.env.num_actions)
        self.devices = list(devices or jax.local_devices())[:1]
        self._chunks: dict[int, Callable] = {}

    @property
    def steps_per_update(self) -> int:
        return self.config.num_envs * self.config.rollout_length

    def init(self, seed: int | None = None) -> TrainState:
        seed = self.config.seed if seed is None else seed
        return self.place(jax.jit(self._init)(jax.random.PRNGKey(seed)))

    def _init(self, key: jax.Array) -> TrainState:
        k_net, k_reset, k_collect, k_run = jax.random.split(key, 4)
        core, n = self.core, self.config.num_envs
        network = core.init_network(k_net)
        eta_logits = core.initial_eta_logits()
        obs, env_state = jax.vmap(self.env.reset)(jax.random.split(k_reset, n))
        running = jnp.zeros((n,), jnp.float32)
        rollout, env_state, obs, running, (total, count) = self.collect(
            network, eta_values(eta_logits), env_state, obs, running, k_collect
        )
        return TrainState(
            network=network,
            opt_state=core.optimizer.init(network),
            eta_logits=eta_logits,
            meta_opt_state=core.meta_optimizer.init(eta_logits),
            env_state=env_state,
            obs=obs,
            rollout=rollout,
            running_return=running,
            last_return=jnp.where(count > 0, total / jnp.maximum(count, 1), 0.0),
            update=jnp.int32(0),
            key=k_run,
        )

    def place(self, state: TrainState) -> TrainState:
        return jax.device_put(state, self.devices[0])

    def collect(self, network, cond, env_state, obs, running, key):
        """A rollout of ``rollout_length`` steps of every environment under the policy; returns
        it with the environments' new states and observations, the running episode returns and
        (sum, count) of the returns of the episodes that ended."""
        n = self.config.num_envs

        def step(carry, key):
            env_state, obs, running, total, count = carry
            k_act, k_env = jax.random.split(key)
            action = self.core.act(network, cond, obs, k_act)
            next_obs, env_state, reward, terminated, truncated, final_obs = jax.vmap(self.env.step)(
                jax.random.split(k_env, n), env_state, action
            )
            running = running + reward
            done = jnp.logical_or(terminated, truncated)
            total = total + jnp.sum(jnp.where(done, running, 0.0))
            count = count + jnp.sum(done)
            record = Rollout(
                obs=obs,
                actions=action.astype(jnp.int32),
                rewards=reward,
                terminated=terminated.astype(jnp.float32),
                truncated=truncated.astype(jnp.float32),
                next_obs=final_obs,
            )
            carry = (env_state, next_obs, jnp.where(done, 0.0, running), total, count)
            return carry, record

        carry = (env_state, obs, running, jnp.float32(0.0), jnp.int32(0))
        (env_state, obs, running, total, count), rollout = jax.lax.scan(
            step, carry, jax.random.split(key, self.config.rollout_length)
        )
        return rollout, env_state, obs, running, (total, count)

    def _update(self, state: TrainState, _):
        c, core = self.config, self.core
        key = jax.random.fold_in(state.key, state.update)
        cond = jax.lax.stop_gradient(eta_values(state.eta_logits))
        # theta' comes from the plain step in both modes and the pullback from a second,
        # linearised trace of it: XLA compiles the two traces differently (last-bit rounding),
        # and this way meta_learning_rate=0 reproduces the fixed-eta agent bit for bit.
        network, opt_state, metrics = core.inner_step(
            state.network, state.opt_state, state.eta_logits, cond, state.rollout
        )
        if c.meta_gradient:
            _, _, _, pullback = core.inner_step_with_pullback(
                state.network, state.opt_state, state.eta_logits, cond, state.rollout
            )
        rollout, env_state, obs, running, (total, count) = self.collect(
            network, cond, state.env_state, state.obs, state.running_return, key
        )
        if c.meta_gradient:
            meta_loss, grad_network = jax.value_and_grad(core.meta_objective)(
                network, cond, rollout
            )
            meta_grad = pullback(grad_network)
            updates, meta_opt_state = core.meta_optimizer.update(
                meta_grad, state.meta_opt_state, state.eta_logits
            )
            eta_logits = optax.apply_updates(state.eta_logits, updates)
        else:
            meta_loss = core.meta_objective(network, cond, rollout)
            meta_grad = jnp.zeros_like(state.eta_logits)
            eta_logits, meta_opt_state = state.eta_logits, state.meta_opt_state
        last_return = jnp.where(count > 0, total / jnp.maximum(count, 1), state.last_return)
        gamma, lambda_ = eta_values(eta_logits)
        metrics = {
            "episode_return": last_return,
            "episodes": count,
            "gamma": gamma,
            "lambda": lambda_,
            "meta_grad_gamma_logit": meta_grad[0],
            "meta_grad_lambda_logit": meta_grad[1],
            "meta_loss": meta_loss,
            **metrics,
        }
        state = state.replace(
            network=network,
            opt_state=opt_state,
            eta_logits=eta_logits,
            meta_opt_state=meta_opt_state,
            env_state=env_state,
            obs=obs,
            rollout=rollout,
            running_return=running,
            last_return=last_return,
            update=state.update + 1,
        )
        return state, metrics

    def train_chunk(self, state: TrainState, num_updates: int):
        return scanned_chunk(self._chunks, self._update, state, num_updates)

    # --- evaluation ----------------------------------------------------------------------------
    def episode_returns(
        self, params, num_episodes: int, key: jax.Array, greedy: bool = False
    ) -> jax.Array:
        """Returns of ``num_episodes`` fresh episodes of the policy ``params`` (sampled actions,
        or the most likely with ``greedy``), each run to its end or the time limit."""
        env, core = self.env, self.core

        def run(params, key):
            cond = eta_values(params["eta_logits"])
            k_reset, k_steps = jax.random.split(key)
            obs, env_state = jax.vmap(env.reset)(jax.random.split(k_reset, num_episodes))
            zeros = jnp.zeros((num_episodes,), jnp.float32)

            def body(carry):
                t, env_state, obs, returns, finished = carry
                k_act, k_env = jax.random.split(jax.random.fold_in(k_steps, t))
                action = core.act(params["network"], cond, obs, k_act, greedy)
                obs, env_state, reward, terminated, truncated, _ = jax.vmap(env.step)(
                    jax.random.split(k_env, num_episodes), env_state, action
                )
                returns = returns + jnp.where(finished, 0.0, reward)
                finished = finished | terminated | truncated
                return t + 1, env_state, obs, returns, finished

            def running(carry):
                t, *_, finished = carry
                return (t < env.max_episode_steps) & ~jnp.all(finished)

            carry = (jnp.int32(0), env_state, obs, zeros, jnp.zeros((num_episodes,), bool))
            return jax.lax.while_loop(running, body, carry)[3]

        return jax.jit(run)(params, key)

    def agent(self, params, name: str | None = None, greedy: bool = False) -> Agent:
        """The trained policy as an ``Agent`` acting on ``TrialObs.obs`` (this environment's
        observation, flattened), for families whose observations are this environment's."""
        core = self.core

        def build(p):
            cond = eta_values(p["eta_logits"])

            def act(key, agent_state, trial_obs):
                obs = jnp.asarray(trial_obs.obs, jnp.float32).reshape(core.observation_size)
                return core.act(p["network"], cond, obs, key, greedy), agent_state

            return Agent(name or "metagradient", lambda key, task: (), act)

        c = self.config
        kind_key = (
            "metagradient",
            c.env,
            tuple(c.hidden_sizes),
            c.eta_embedding,
            c.embedding_size,
            greedy,
        )
        return AgentKind(kind_key, build).bind(params)
