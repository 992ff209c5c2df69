"""Feed-forward Gaussian policy for continuous control (Finn et al. 2017: 2 x 100 ReLU).

``GaussianMLP`` maps an observation (optionally with a task latent appended, for MAESN) to the mean
of a diagonal Gaussian over actions; the log standard deviation is a state-independent learned
vector, as in rllab's ``GaussianMLPPolicy`` that the MAML experiments used. The module is a plain
flax ``linen`` module, so its parameters are a pytree that MAML can take gradient steps on and
differentiate through.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import linen as nn

ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh}


class GaussianMLP(nn.Module):
    """``obs -> (mean, log_std)`` for one unbatched observation (vmap for batches)."""

    action_size: int
    hidden_sizes: tuple[int, ...] = (100, 100)
    init_log_std: float = 0.0
    activation: str = "relu"  # "relu" (the paper's) or "tanh" (smooth: rllab's default)

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = jnp.asarray(obs)
        for size in self.hidden_sizes:
            x = ACTIVATIONS[self.activation](nn.Dense(size)(x))
        mean = nn.Dense(
            self.action_size,
            kernel_init=nn.initializers.variance_scaling(0.01, "fan_in", "truncated_normal"),
        )(x)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.init_log_std), (self.action_size,)
        )
        return mean, jnp.broadcast_to(log_std, mean.shape)


class MLP(nn.Module):
    """``x -> y``: dense layers with an activation (and optionally LayerNorm after each), then a
    linear output of ``out_size`` (no output layer when ``out_size`` is 0). The off-policy
    learners' policies (``tanh`` of the output) and critics (``Q(s, a)`` of ``[s, a]``) are MLPs;
    MetaGenRL's official networks are 3 layers of 350 units with LayerNorm."""

    out_size: int
    hidden_sizes: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for size in self.hidden_sizes:
            x = ACTIVATIONS[self.activation](nn.Dense(size)(x))
            if self.layer_norm:
                x = nn.LayerNorm()(x)
        return nn.Dense(self.out_size)(x) if self.out_size else x
