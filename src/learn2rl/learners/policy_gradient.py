"""The policy-gradient inner loop shared by MAML, Reptile and MAESN.

Everything here is a pure function of the policy parameters, so that JAX can differentiate
*through* an inner update (second-order MAML) or stop the gradient (first-order MAML).

- ``GaussianPolicy``: the 2 x 100 ReLU Gaussian MLP of Finn et al. 2017, optionally conditioned on a
  per-episode latent (MAESN); ``act``/``log_prob`` over the padded ``Episodes`` of ``rollout.py``.
- Advantages: discounted reward-to-go minus a baseline, either the *linear feature baseline* of
  Duan et al. 2016 ("Benchmarking Deep RL for Continuous Control", the one rllab's MAML runs used:
  a ridge regression of the returns on ``[obs, obs^2, t, t^2, t^3, 1]``, refit on every batch) or
  none; then, by default, normalised to zero mean and unit variance over the batch (rllab's
  ``center_adv``).
- ``surrogate_loss``: the likelihood-ratio objective ``-mean(pi_theta / pi_ref * A)`` with
  ``pi_ref`` the (stopped) density the data was sampled with. At ``theta = theta_ref`` its
  gradient is the REINFORCE / VPG gradient, and its Hessian is that of the "low-variance
  curvature" estimator of Rothfuss et al. 2018 (ProMP), which keeps the second-order MAML
  gradient well behaved; away from ``theta_ref`` (outer PPO epochs) it importance-weights the data.
- ``inner_update``: ``theta - alpha * grad(surrogate_loss)``, with ``first_order=True`` the
  gradient is treated as a constant (FOMAML, Finn et al. 2017 Sec. 5.2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from learn2rl.nets.mlp import GaussianMLP
from learn2rl.ops import gaussian
from learn2rl.ops.returns import discounted_returns
from learn2rl.rollout import Episodes, no_context, rollout_episodes
from learn2rl.tasks.base import TaskFamily

BASELINES = ("linear", "none")
_BASELINE_RIDGE = 1e-5  # ridge coefficient of the linear baseline (rllab's reg_coeff)
_TIME_SCALE = 100.0  # the linear baseline's time feature is t / 100 (as in rllab)


def action_box(family: TaskFamily) -> tuple[float, float]:
    """Centre and half-width of a family's action box (0 and 1 where it is unbounded)."""
    low, high = float(family.action_low), float(family.action_high)
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return 0.0, 1.0
    return (low + high) / 2.0, (high - low) / 2.0


class GaussianPolicy:
    """A Gaussian MLP policy for one continuous family; ``latent_size > 0`` appends a latent."""

    def __init__(
        self,
        family: TaskFamily,
        hidden_sizes: tuple[int, ...] = (100, 100),
        init_log_std: float = 0.0,
        latent_size: int = 0,
        activation: str = "relu",
    ):
        self.family = family
        self.latent_size = latent_size
        self.center, self.half_width = action_box(family)
        self.network = GaussianMLP(
            family.action_size, tuple(hidden_sizes), init_log_std, activation
        )

    def init(self, key: jax.Array) -> Any:
        size = self.family.observation_size + self.latent_size
        return self.network.init(key, jnp.zeros((size,), jnp.float32))

    def distribution(self, params, obs: jax.Array, context: jax.Array):
        """Mean and log-std of the action, in the family's units: the network works in units of
        the action box (``[-1, 1]`` maps onto ``[action_low, action_high]``), as rllab's
        ``normalize`` wrapper that the MAML experiments ran under; so ``init_log_std = 0`` is a
        standard deviation of half the box whatever the family's bounds."""
        inputs = jnp.concatenate([obs, context], axis=-1) if self.latent_size else obs
        mean, log_std = self.network.apply(params, inputs)
        return self.center + self.half_width * mean, log_std + jnp.log(self.half_width)

    def act_fn(self, params, greedy: bool = False) -> Callable:
        """``act(key, context, obs) -> action`` for ``rollout_episodes``; the mean if greedy."""

        def act(key, context, obs):
            mean, log_std = self.distribution(params, obs, context)
            return mean if greedy else gaussian.sample(key, mean, log_std)

        return act

    def log_prob(self, params, episodes: Episodes) -> jax.Array:
        """log pi(a_t | s_t, context) of every step, ``[E, T]``."""

        def per_episode(obs, action, context):
            contexts = jnp.broadcast_to(context, obs.shape[:1] + context.shape)
            mean, log_std = jax.vmap(self.distribution, in_axes=(None, 0, 0))(params, obs, contexts)
            return gaussian.log_prob(mean, log_std, action)

        return jax.vmap(per_episode)(episodes.obs, episodes.action, episodes.context)

    def distributions(self, params, episodes: Episodes) -> tuple[jax.Array, jax.Array]:
        """Mean and log-std of the action at every step, each ``[E, T, action_size]``."""

        def per_episode(obs, context):
            contexts = jnp.broadcast_to(context, obs.shape[:1] + context.shape)
            return jax.vmap(self.distribution, in_axes=(None, 0, 0))(params, obs, contexts)

        return jax.vmap(per_episode)(episodes.obs, episodes.context)

    def rollout(self, params, key, task, num_episodes, begin=no_context, greedy=False):
        params = jax.lax.stop_gradient(params)  # sampled actions are data
        act = self.act_fn(params, greedy)
        return rollout_episodes(self.family, act, key, task, num_episodes, begin)


# --- advantages --------------------------------------------------------------------------------
def reward_to_go(episodes: Episodes, gamma: float) -> jax.Array:
    """Discounted return from each step to the end of its episode, ``[E, T]``."""
    rewards = episodes.reward * episodes.mask
    discounts = jnp.full(rewards.shape[-1:], gamma, rewards.dtype)
    zero = jnp.zeros((), rewards.dtype)
    return jax.vmap(lambda r: discounted_returns(r, discounts, zero))(rewards)


def linear_baseline_features(obs: jax.Array) -> jax.Array:
    """``[obs, obs^2, t, t^2, t^3, 1]`` for every step of ``[E, T, obs]`` observations."""
    obs = jnp.clip(obs, -10.0, 10.0)
    steps = jnp.arange(obs.shape[-2], dtype=jnp.float32) / _TIME_SCALE
    time = jnp.broadcast_to(steps[:, None], obs.shape[:-1] + (1,))
    ones = jnp.ones_like(time)
    return jnp.concatenate([obs, obs**2, time, time**2, time**3, ones], axis=-1)


def linear_baseline_moments(episodes: Episodes, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The normal equations' pieces ``(X^T W X, X^T W y)`` of the baseline features of
    ``episodes`` against ``targets`` (valid steps only); they add up over batches."""
    features = linear_baseline_features(episodes.obs)
    flat = features.reshape(-1, features.shape[-1])
    weights = episodes.mask.reshape(-1)
    return (flat * weights[:, None]).T @ flat, flat.T @ (weights * targets.reshape(-1))


def linear_baseline_solve(gram: jax.Array, moment: jax.Array) -> jax.Array:
    """Ridge coefficients from the normal equations' pieces. The ridge term is relative to the
    gram matrix's scale so it means the same in float32 whatever the number of steps."""
    ridge = _BASELINE_RIDGE * (jnp.trace(gram) / gram.shape[0] + 1.0)
    return jnp.linalg.solve(gram + ridge * jnp.eye(gram.shape[0]), moment)


def linear_baseline_coef(episodes: Episodes, targets: jax.Array) -> jax.Array:
    """Ridge least-squares coefficients of ``targets`` on the baseline features (valid steps)."""
    return linear_baseline_solve(*linear_baseline_moments(episodes, targets))


def linear_baseline_predict(coef: jax.Array, episodes: Episodes) -> jax.Array:
    """The linear baseline with coefficients ``coef`` at every step of ``episodes`` (0 on pads)."""
    return (linear_baseline_features(episodes.obs) @ coef) * episodes.mask


def fit_linear_baseline(episodes: Episodes, targets: jax.Array) -> jax.Array:
    """Least-squares fit of ``targets`` on the baseline features (valid steps only); predictions."""
    return linear_baseline_predict(linear_baseline_coef(episodes, targets), episodes)


def advantages(
    episodes: Episodes,
    gamma: float,
    baseline: str = "linear",
    normalize: bool = True,
    values: jax.Array | None = None,
    returns: jax.Array | None = None,
) -> jax.Array:
    """Per-step advantages of one task's batch of episodes, ``[E, T]`` (0 on padded steps).

    ``values`` (``[E, T]``), when given, is the baseline subtracted from the returns instead of
    the one ``baseline`` names (e.g. a baseline fitted to an earlier batch); ``returns``, when
    given, is the batch's ``reward_to_go`` already computed for that fit."""
    if returns is None:
        returns = reward_to_go(episodes, gamma)
    if values is not None:
        adv = returns - values
    elif baseline == "linear":
        adv = returns - fit_linear_baseline(episodes, returns)
    else:
        adv = returns
    adv = adv * episodes.mask
    if normalize:
        count = jnp.maximum(jnp.sum(episodes.mask), 1.0)
        mean = jnp.sum(adv) / count
        var = jnp.sum(((adv - mean) * episodes.mask) ** 2) / count
        adv = (adv - mean) / jnp.sqrt(var + 1e-8) * episodes.mask
    return jax.lax.stop_gradient(adv)


# --- losses and the inner update ----------------------------------------------------------------
def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.sum(x * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def surrogate_loss(
    log_prob: jax.Array, ref_log_prob: jax.Array, adv: jax.Array, mask: jax.Array
) -> jax.Array:
    """``-mean(exp(log_prob - ref_log_prob) * adv)`` over valid steps (``ref`` is a constant)."""
    ratio = jnp.exp(log_prob - jax.lax.stop_gradient(ref_log_prob))
    return -masked_mean(ratio * adv, mask)


def vpg_loss(log_prob_fn: Callable, params, episodes: Episodes, adv, ref_log_prob=None):
    """The surrogate of ``episodes`` under ``params``; ``ref_log_prob`` defaults to ``params``'s
    own (stopped) log-probs, i.e. the on-policy VPG loss."""
    log_prob = log_prob_fn(params, episodes)
    ref = log_prob if ref_log_prob is None else ref_log_prob
    return surrogate_loss(log_prob, ref, adv, episodes.mask)


def sgd(params, grads, step_size) -> Any:
    """``params - step_size * grads`` (``step_size`` a scalar or a matching pytree)."""
    if len(jax.tree.leaves(step_size)) == 1:  # one step size for every parameter
        return jax.tree.map(lambda p, g: p - step_size * g, params, grads)
    return jax.tree.map(lambda p, g, a: p - a * g, params, grads, step_size)


def gradient_step(loss_fn: Callable, params, step_size, first_order: bool = False):
    """``params - step_size * grad loss_fn(params)``; differentiable in ``params`` (MAML's inner
    step). ``first_order=True`` treats the gradient as a constant, so the derivative of the result
    with respect to ``params`` is the identity (FOMAML)."""
    grads = jax.grad(loss_fn)(params)
    if first_order:
        grads = jax.lax.stop_gradient(grads)
    return sgd(params, grads, step_size)


def reptile_direction(params, adapted) -> Any:
    """``params - mean_i(adapted_i)``, the Reptile "gradient" (``adapted``: leading task axis)."""
    return jax.tree.map(lambda p, q: p - jnp.mean(q, axis=0), params, adapted)


def inner_update(
    log_prob_fn: Callable,
    params,
    episodes: Episodes,
    adv: jax.Array,
    step_size,
    first_order: bool = False,
    ref_log_prob=None,
):
    """One VPG step on one task's episodes: ``params - alpha * grad L(params)``."""

    def loss(p):
        return vpg_loss(log_prob_fn, p, episodes, adv, ref_log_prob)

    return gradient_step(loss, params, step_size, first_order)
