"""MAESN: model-agnostic exploration with structured noise (Gupta et al. 2018, arXiv 1802.07245).

The policy ``pi_theta(a | s, z)`` is conditioned on a latent ``z`` drawn once per episode, so its
exploration is temporally coherent ("structured noise") instead of independent per-step noise.
Every *training* task ``i`` (a fixed set of ``num_train_tasks`` tasks) owns a variational latent
distribution ``N(mu_i, sigma_i^2)``; a new task starts from the prior ``N(0, I)``.

One meta-update (MAML's, with the task latents among the adapted parameters):
    1. for each task ``i`` of a meta-batch of training tasks: sample episodes with
       ``z ~ N(mu_i, sigma_i)``, take a VPG step on ``(theta, mu_i, log sigma_i)`` (the policy part
       with ``inner_step_size``, the latent part with ``latent_step_size``), sample post-update
       episodes;
    2. outer loop: PPO on the post-update episodes through the inner step (second order), plus
       ``kl_weight * KL(N(mu_i, sigma_i) || N(0, I))`` so that the prior the test tasks start from
       is where the task latents live.
The log-likelihood of an episode's steps includes ``log N(z; mu, sigma)``: the latent is treated as
an action taken at the start of the episode, so the score-function gradient reaches ``mu`` and
``sigma``. Meta-test adaptation starts from ``(theta, 0, 0)`` and takes the same inner steps.

Simplification, stated: the paper learns per-parameter inner step sizes; here they are fixed
(``inner_step_size`` for the policy, ``latent_step_size`` for the latent), and
``adapt_policy=False`` adapts the latent alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from learn2rl.errors import Learn2RLError
from learn2rl.learners import maml
from learn2rl.learners import policy_gradient as pg
from learn2rl.ops import gaussian
from learn2rl.rollout import Episodes


@dataclass(frozen=True)
class Config(maml.Config):
    """MAESN settings: MAML's plus the task latents."""

    latent_size: int = 2
    """Dimension of the per-episode latent z."""
    num_train_tasks: int = 100
    """Size of the fixed set of training tasks, each with its own latent distribution."""
    kl_weight: float = 0.1
    """Weight of KL(N(mu_i, sigma_i) || N(0, I)) in the outer loss."""
    latent_step_size: float = 0.5
    """Inner step size of the latent mean and log standard deviation."""
    adapt_policy: bool = True
    """Adapt the policy parameters too (False: only the latent distribution)."""

    _positive_ints = (*maml.Config._positive_ints, "latent_size", "num_train_tasks")
    _positive = (*maml.Config._positive, "latent_step_size")
    _non_negative = ("kl_weight",)

    def __post_init__(self):
        super().__post_init__()
        if self.num_tasks > self.num_train_tasks:
            raise Learn2RLError(
                f"config.num_tasks ({self.num_tasks}) must not exceed config.num_train_tasks "
                f"({self.num_train_tasks}): a meta-batch draws distinct training tasks"
            )


class MAESN(maml.MAML):
    """MAML over ``(policy, task latent)``; a test task starts from the latent prior."""

    name = "maesn"

    def make_policy(self) -> pg.GaussianPolicy:
        c = self.config
        return pg.GaussianPolicy(
            self.family, c.hidden_sizes, c.init_log_std, c.latent_size, activation=c.activation
        )

    def init_params(self, key):
        c = self.config
        shape = (c.num_train_tasks, c.latent_size)
        return {
            "policy": self.policy.init(key),
            "latent_mean": jnp.zeros(shape, jnp.float32),
            "latent_log_std": jnp.zeros(shape, jnp.float32),
        }

    # --- hooks --------------------------------------------------------------------------------
    def sample_tasks(self, key, slots):
        c = self.config
        chosen = jax.random.choice(key, c.num_train_tasks, (c.num_tasks,), replace=False)
        indices = chosen[slots].astype(jnp.int32)
        return jax.vmap(self.train_task)(indices), indices

    def train_task(self, index):
        """Training task ``index`` of the fixed set: the first tasks of the training split."""
        return self.family.task(self.family_train_offset + index)

    @property
    def family_train_offset(self) -> int:
        from learn2rl.tasks.base import split_range

        return split_range("train")[0]

    def task_params(self, params, index):
        return {
            "policy": params["policy"],
            "mean": params["latent_mean"][index],
            "log_std": params["latent_log_std"][index],
        }

    def test_params(self, params):
        size = self.config.latent_size
        return {
            "policy": params["policy"],
            "mean": jnp.zeros((size,), jnp.float32),
            "log_std": jnp.zeros((size,), jnp.float32),
        }

    def log_prob(self, task_params, episodes: Episodes) -> jax.Array:
        steps = self.policy.log_prob(task_params["policy"], episodes)  # [E, T]
        latent = gaussian.log_prob(task_params["mean"], task_params["log_std"], episodes.context)
        return steps + latent[:, None]

    def begin_fn(self, task_params):
        return lambda key: gaussian.sample(key, task_params["mean"], task_params["log_std"])

    def act_fn(self, task_params):
        return self.policy.act_fn(task_params["policy"])

    def step_size(self, task_params):
        c = self.config
        policy_step = c.inner_step_size if c.adapt_policy else 0.0
        template = jax.eval_shape(self.policy.init, jax.random.PRNGKey(0))
        return {
            "policy": jax.tree.map(lambda _: policy_step, template),
            "mean": c.latent_step_size,
            "log_std": c.latent_step_size,
        }

    def regularizer(self, params, indices):
        mean = params["latent_mean"][indices]
        log_std = params["latent_log_std"][indices]
        zeros = jnp.zeros_like(mean)
        kl = gaussian.kl(mean, log_std, zeros, zeros)
        return self.config.kl_weight * jnp.mean(kl)
