"""Diagonal Gaussian policy maths over one action vector (unbatched; vmap to batch).

A Gaussian policy outputs a mean vector and a log standard deviation vector; actions are
``mean + exp(log_std) * noise``. The environment clips actions to its bounds, so the density is that
of the unclipped action the policy sampled (the usual convention of rllab / Finn et al. 2017).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2.0 * math.pi)


def sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)


def log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    """log N(action; mean, diag(exp(log_std))^2), summed over the last axis."""
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI, axis=-1)


def entropy(log_std: jax.Array) -> jax.Array:
    """Differential entropy of the diagonal Gaussian, summed over the last axis."""
    return jnp.sum(log_std + 0.5 * (_LOG_2PI + 1.0), axis=-1)


def kl(mean_p, log_std_p, mean_q, log_std_q) -> jax.Array:
    """KL(p || q) of two diagonal Gaussians, summed over the last axis."""
    var_p, var_q = jnp.exp(2 * log_std_p), jnp.exp(2 * log_std_q)
    terms = log_std_q - log_std_p + (var_p + (mean_p - mean_q) ** 2) / (2 * var_q) - 0.5
    return jnp.sum(terms, axis=-1)
