"""MetaGenRL's learned objective L_alpha (Kirsch et al. 2020, Figure 2 and the official code).

For a batch of sub-trajectories of length T from an agent's replay buffer, the objective maps

    (buffer action a_t, current policy action pi(s_t))   per action dimension,
    (reward r_t, time t / T, (1 - d_t) V(s_{t+1}), V(s_t))

to one scalar per step. The policy is trained by descending its mean, so the only path from the
policy's parameters to the objective is the policy-action input ``pi(s_t)``; the values come from
the agent's first critic under ``stop_gradient`` (the caller's job).

Architecture (official defaults in parentheses):
- **actions**: each action dimension's pair ``[a_t,k, pi_t,k]`` goes through the same MLP (3 x 32,
  half ReLU and half square activations, LayerNorm) and the results are *averaged over k*, so one
  set of parameters serves any action size and the objective is invariant to permuting action
  dimensions;
- **rewards and values** are z-normalised over the batch (the valid steps of all sub-trajectories),
  then ``[r, t/T, (1 - d) V', V]`` goes through an MLP (2 x 32 mixed activations, linear output of
  8; no LayerNorm);
- an **LSTM** (32 units) runs *backwards in time* over the concatenated features, so the output at
  step t can depend on everything that happened after t (as a return does);
- a head MLP (2 x 32 mixed activations, LayerNorm) gives one number per step, passed through the
  **soft clip** ``c tanh(x / c)`` with c = 1000 (official ``obj_func_error_scale`` 1e-3 with tanh).

Masked steps (past the end of the sub-trajectory's episode) neither enter the normalisation nor
the LSTM (its state is carried through them unchanged; it starts from zeros after the last valid
step) and get objective 0.

The ablations of the paper are fields: ``use_values`` (drop V inputs), ``use_time`` (drop t/T),
``use_lstm`` (replace the LSTM by a per-step dense layer of the same width).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn


def mixed_activation(x: jax.Array) -> jax.Array:
    """ReLU on the first half of the features, square on the second half (official
    ``obj_func_activation = ['relu', 'square']``)."""
    half = x.shape[-1] // 2
    return jnp.concatenate([nn.relu(x[..., :half]), jnp.square(x[..., half:])], axis=-1)


def masked_normalize(x: jax.Array, mask: jax.Array) -> jax.Array:
    """``x`` standardised by the mean and variance of its entries where ``mask`` is 1."""
    count = jnp.maximum(jnp.sum(mask), 1.0)
    mean = jnp.sum(x * mask) / count
    var = jnp.sum(jnp.square(x - mean) * mask) / count
    return (x - mean) / jnp.sqrt(var + 1e-8)


class _Mixed(nn.Module):
    """Dense layers with mixed activations, optional LayerNorm, optional linear output."""

    units: int
    depth: int
    out_size: int = 0
    layer_norm: bool = True

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = mixed_activation(nn.Dense(self.units)(x))
            if self.layer_norm:
                x = nn.LayerNorm()(x)
        return nn.Dense(self.out_size)(x) if self.out_size else x


class LearnedObjective(nn.Module):
    """``L_alpha``: per-step objective values [B, T] for a batch of sub-trajectories."""

    units: int = 32
    lstm_units: int = 32
    other_features: int = 8
    clip: float = 1000.0
    use_values: bool = True
    use_time: bool = True
    use_lstm: bool = True

    @nn.compact
    def __call__(
        self,
        buffer_action: jax.Array,  # [B, T, A]
        policy_action: jax.Array,  # [B, T, A]
        reward: jax.Array,  # [B, T]
        terminated: jax.Array,  # [B, T]
        values: jax.Array,  # [B, T + 1]: V(s_0) .. V(s_T) under stop_gradient
        mask: jax.Array,  # [B, T]
    ) -> jax.Array:
        batch, length = reward.shape
        pairs = jnp.stack([buffer_action, policy_action], axis=-1)  # [B, T, A, 2]
        actions = _Mixed(self.units, 3, name="action_features")(pairs).mean(axis=-2)

        columns = [masked_normalize(reward, mask)]
        if self.use_time:
            time = jnp.arange(length, dtype=jnp.float32) / length
            columns.append(jnp.broadcast_to(time, (batch, length)))
        if self.use_values:
            # the valid steps' values and the bootstrap value right after them (index L)
            valid = jnp.sum(mask, axis=1, keepdims=True)
            value_mask = (jnp.arange(length + 1)[None, :] <= valid).astype(values.dtype)
            v = masked_normalize(values, value_mask)
            columns += [v[:, 1:] * (1.0 - terminated), v[:, :-1]]
        others = jnp.stack(columns, axis=-1)
        others = _Mixed(
            self.units, 2, self.other_features, layer_norm=False, name="other_features"
        )(others)

        features = jnp.concatenate([actions, others], axis=-1) * mask[..., None]
        if self.use_lstm:
            lengths = jnp.sum(mask, axis=1).astype(jnp.int32)
            # The carry starts in the features' dtype (flax's default is float32), so the
            # objective also runs in float64 (the meta-gradient's finite-difference check).
            rnn = nn.RNN(
                nn.OptimizedLSTMCell(self.lstm_units, param_dtype=features.dtype),
                reverse=True,
                keep_order=True,
                name="lstm",
            )
            hidden = rnn(features, seq_lengths=lengths)
        else:
            hidden = nn.Dense(self.lstm_units, name="step")(features)
        out = _Mixed(self.units, 2, 1, name="head")(hidden)[..., 0]
        return self.clip * jnp.tanh(out / self.clip) * mask
