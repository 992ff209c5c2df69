"""Recurrent actor-critic for memory-based meta-RL (Wang et al. 2016; Duan et al. 2016).

The network sees one ``TrialObs`` per step: the environment observation, the previous action
(one-hot), the previous reward, the previous done flag and the step index scaled to [0, 1). Its
recurrent state carries everything it learns about the current task; the caller resets it only when
a
trial (a new task) begins. The cells are written with fused gate matrices (one input and one hidden
matmul per step) because on a CPU the per-step matmul count, not FLOPs, dominates small recurrent
nets.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

from learn2rl.types import TrialObs


def trial_features(obs: TrialObs, num_actions: int, max_steps: int) -> jax.Array:
    """Flatten a TrialObs into the network input vector (unbatched)."""
    return jnp.concatenate(
        [
            jnp.ravel(obs.obs).astype(jnp.float32),
            jax.nn.one_hot(obs.prev_action, num_actions),  # all zeros at the first step (action -1)
            jnp.reshape(obs.prev_reward, (1,)).astype(jnp.float32),
            jnp.reshape(obs.prev_done, (1,)).astype(jnp.float32),
            jnp.reshape(obs.step / max_steps, (1,)).astype(jnp.float32),
        ]
    )


class GRUCell(nn.Module):
    """GRU (Cho et al. 2014) with fused gates: h' = (1 - z) * n + z * h."""

    hidden_size: int

    @nn.compact
    def __call__(self, h: jax.Array, x: jax.Array) -> jax.Array:
        size = self.hidden_size
        gates_x = nn.Dense(3 * size, name="input")(x)
        gates_h = nn.Dense(3 * size, name="hidden", kernel_init=nn.initializers.orthogonal())(h)
        reset = jax.nn.sigmoid(gates_x[:size] + gates_h[:size])
        update = jax.nn.sigmoid(gates_x[size : 2 * size] + gates_h[size : 2 * size])
        candidate = jnp.tanh(gates_x[2 * size :] + reset * gates_h[2 * size :])
        return (1.0 - update) * candidate + update * h

    def initial_state(self) -> jax.Array:
        return jnp.zeros((self.hidden_size,))


class LSTMCell(nn.Module):
    """LSTM (Hochreiter & Schmidhuber 1997), fused gates; the state is (cell, hidden) stacked."""

    hidden_size: int

    @nn.compact
    def __call__(self, state: jax.Array, x: jax.Array) -> jax.Array:
        size = self.hidden_size
        cell, hidden = state[0], state[1]
        gates = nn.Dense(4 * size, name="input")(x) + nn.Dense(
            4 * size, use_bias=False, name="hidden", kernel_init=nn.initializers.orthogonal()
        )(hidden)
        i, f, g, o = (gates[k * size : (k + 1) * size] for k in range(4))
        cell = jax.nn.sigmoid(f + 1.0) * cell + jax.nn.sigmoid(i) * jnp.tanh(g)
        hidden = jax.nn.sigmoid(o) * jnp.tanh(cell)
        return jnp.stack([cell, hidden])

    def initial_state(self) -> jax.Array:
        return jnp.zeros((2, self.hidden_size))


CELLS = {"gru": GRUCell, "lstm": LSTMCell}


class RecurrentActorCritic(nn.Module):
    """``(state, trial_obs) -> (state, action_logits, value)`` for one unbatched step."""

    num_actions: int
    max_steps: int
    hidden_size: int = 48
    cell: str = "gru"

    def setup(self):
        self.core = CELLS[self.cell](self.hidden_size)
        self.policy_head = nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal(0.01))
        self.value_head = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))

    def __call__(self, state: jax.Array, obs: TrialObs):
        state = self.core(state, trial_features(obs, self.num_actions, self.max_steps))
        hidden = state if self.cell == "gru" else state[1]
        return state, self.policy_head(hidden), self.value_head(hidden)[0]

    def initial_state(self) -> jax.Array:
        return (
            jnp.zeros((self.hidden_size,))
            if self.cell == "gru"
            else jnp.zeros((2, self.hidden_size))
        )
