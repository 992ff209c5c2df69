"""Policy losses over replay sub-trajectories: the learned objective and off-policy REINFORCE.

Both read a batch of sub-trajectories ``[B, T]`` (``replay.sample_sequences``) and the agent's
first critic, and return a scalar to *minimise* over the policy's parameters. The values
``V(s_t) = Q1(s_t, pi(s_t))`` and the bootstrap ``V(s_T)`` (from the last transition's next
observation) are computed under ``stop_gradient``: the policy's gradient flows only through the
policy-action input.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from learn2rl.learners.offpolicy.core import AgentCore, masked_mean
from learn2rl.learners.offpolicy.replay import Transition
from learn2rl.nets.objective import LearnedObjective


def sequence_values(core: AgentCore, policy, critics, batch: Transition, mask) -> jax.Array:
    """``[B, T + 1]`` under stop_gradient: ``Q1(s_t, pi(s_t))`` for the valid steps t < L of each
    sub-trajectory (L = its number of valid steps) and, from index L on, the bootstrap
    ``Q1(s', pi(s'))`` of the last valid step's next observation."""
    values = core.q1(critics, batch.obs, core.act(policy, batch.obs))
    length = jnp.sum(mask, axis=1).astype(jnp.int32)
    last = jnp.maximum(length - 1, 0)
    final_obs = jnp.take_along_axis(batch.next_obs, last[:, None, None], axis=1)[:, 0]
    final = core.q1(critics, final_obs, core.act(policy, final_obs))
    values = jnp.concatenate([values, final[:, None]], axis=1)
    index = jnp.arange(values.shape[1])[None, :]
    return jax.lax.stop_gradient(jnp.where(index >= length[:, None], final[:, None], values))


def learned_loss(
    net: LearnedObjective, alpha, core: AgentCore, policy, critics, batch: Transition, mask
) -> jax.Array:
    """``mean_t L_alpha`` over the valid steps: the policy loss a learned objective gives."""
    values = sequence_values(core, policy, critics, batch, mask)
    per_step = net.apply(
        alpha,
        batch.action,
        core.act(policy, batch.obs),
        batch.reward,
        batch.terminated,
        values,
        mask,
    )
    return masked_mean(per_step, mask)


def gae(reward, terminated, values, mask, gamma: float, lam: float) -> jax.Array:
    """GAE(lambda) advantages ``[B, T]`` of sub-trajectories with bootstrap ``values[:, T]``;
    masked steps (after the sub-trajectory's end) contribute nothing."""
    deltas = reward + gamma * (1.0 - terminated) * values[:, 1:] - values[:, :-1]

    def backward(carry, inputs):
        delta, term, m = inputs
        adv = delta + gamma * lam * (1.0 - term) * carry
        adv = jnp.where(m > 0, adv, 0.0)
        return adv, adv

    _, adv = jax.lax.scan(
        backward,
        jnp.zeros(reward.shape[0]),
        (deltas.T, terminated.T, mask.T),
        reverse=True,
    )
    return adv.T


def reinforce_loss(
    core: AgentCore, policy, critics, batch: Transition, mask, gamma: float, lam: float
) -> jax.Array:
    """Off-policy REINFORCE with GAE (the official MetaGenRL baseline objective):
    ``mean_t A_t * mean_k (a_t,k - pi(s_t)_k)^2`` with advantages under stop_gradient, so a
    positive advantage pulls the policy towards the buffer's action."""
    values = sequence_values(core, policy, critics, batch, mask)
    adv = jax.lax.stop_gradient(gae(batch.reward, batch.terminated, values, mask, gamma, lam))
    distance = jnp.mean(jnp.square(batch.action - core.act(policy, batch.obs)), axis=-1)
    return masked_mean(adv * distance, mask)
