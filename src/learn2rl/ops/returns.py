"""Returns and advantages over one trajectory (unbatched; vmap to batch).

Naming follows rlax: ``r_t`` is the reward after the action at step t, ``discount_t`` the discount
applied to everything after step t (0 where the return must not bootstrap), ``v_t`` the value
estimate at step t, and ``bootstrap_value`` the value after the last step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def discounted_returns(
    r_t: jax.Array, discount_t: jax.Array, bootstrap_value: jax.Array
) -> jax.Array:
    """G_t = r_t + discount_t * G_{t+1}, G_T = bootstrap_value (Sutton & Barto 2018, eq. 3.9)."""

    def backward(carry, inputs):
        reward, discount = inputs
        carry = reward + discount * carry
        return carry, carry

    _, returns = jax.lax.scan(backward, bootstrap_value, (r_t, discount_t), reverse=True)
    return returns


def generalized_advantage_estimation(
    r_t: jax.Array,
    discount_t: jax.Array,
    v_t: jax.Array,
    bootstrap_value: jax.Array,
    lambda_: float,
) -> jax.Array:
    """GAE(lambda) (Schulman et al. 2016, arXiv 1506.02438, eq. 16).

    delta_t = r_t + discount_t * v_{t+1} - v_t;  A_t = delta_t + discount_t * lambda * A_{t+1}.
    """
    v_tp1 = jnp.concatenate([v_t[1:], jnp.reshape(bootstrap_value, (1,))])
    delta_t = r_t + discount_t * v_tp1 - v_t

    def backward(carry, inputs):
        delta, discount = inputs
        carry = delta + discount * lambda_ * carry
        return carry, carry

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(bootstrap_value), (delta_t, discount_t), reverse=True
    )
    return advantages
