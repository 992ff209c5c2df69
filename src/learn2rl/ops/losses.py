"""Policy-gradient loss terms over one trajectory (unbatched)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """H(pi) = -sum_a pi(a) log pi(a), over the last axis."""
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)


def ppo_clip_objective(log_ratio_t: jax.Array, advantage_t: jax.Array, epsilon: float) -> jax.Array:
    """Per-step clipped surrogate min(rho A, clip(rho, 1-eps, 1+eps) A) (Schulman 2017, eq. 7)."""
    ratio = jnp.exp(log_ratio_t)
    clipped = jnp.clip(ratio, 1.0 - epsilon, 1.0 + epsilon)
    return jnp.minimum(ratio * advantage_t, clipped * advantage_t)
