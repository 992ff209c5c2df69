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

Layout: ``MAESN`` has a ``meta_batch.MetaBatch`` configured with ``LatentPolicy`` (the latent-
conditioned policy, the per-task latents and the KL regularizer) and MAML's PPO outer update
(``maml.ppo_meta_update``).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from learn2rl.errors import Learn2RLError
from learn2rl.learners import maml
from learn2rl.learners import policy_gradient as pg
from learn2rl.learners.base import check_non_negative, check_positive, check_positive_ints
from learn2rl.learners.meta_batch import (
    MetaBatchLearner,
    TrainState,
)
from learn2rl.ops import gaussian
from learn2rl.rollout import Episodes
from learn2rl.tasks.base import TaskFamily, split_range


@dataclass(frozen=True)
class Config(maml.Config):
    """MAESN settings: MAML's plus the task latents."""

    learner = "maesn"

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

    def __post_init__(self):
        super().__post_init__()
        check_positive_ints(self, "latent_size", "num_train_tasks")
        check_positive(self, "latent_step_size")
        check_non_negative(self, "kl_weight")
        if self.num_tasks > self.num_train_tasks:
            raise Learn2RLError(
                f"config.num_tasks ({self.num_tasks}) must not exceed config.num_train_tasks "
                f"({self.num_train_tasks}): a meta-batch draws distinct training tasks"
            )


class LatentPolicy:
    """MAESN's task parameterization: the policy ``pi(a | s, z)`` plus, per training task ``i``,
    a latent distribution ``N(mu_i, sigma_i^2)``; the inner loop adapts ``(policy, mu_i,
    log sigma_i)``, a test task starts from the prior ``N(0, I)``."""

    def __init__(self, family: TaskFamily, config: Config):
        self.family = family
        self.config = config
        self.policy = pg.GaussianPolicy(
            family,
            config.hidden_sizes,
            config.init_log_std,
            config.latent_size,
            activation=config.activation,
        )

    def init(self, key):
        c = self.config
        shape = (c.num_train_tasks, c.latent_size)
        return {
            "policy": self.policy.init(key),
            "latent_mean": jnp.zeros(shape, jnp.float32),
            "latent_log_std": jnp.zeros(shape, jnp.float32),
        }

    def sample_tasks(self, key, slots):
        """Distinct tasks of the fixed training set; their indices select their latents."""
        c = self.config
        chosen = jax.random.choice(key, c.num_train_tasks, (c.num_tasks,), replace=False)
        indices = chosen[slots].astype(jnp.int32)
        return jax.vmap(self.train_task)(indices), indices

    def train_task(self, index):
        """Training task ``index`` of the fixed set: the first tasks of the training split."""
        return self.family.task(split_range("train")[0] + index)

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
        """Steps' log-likelihoods plus the episode's latent draw, ``log N(z; mu, sigma)``."""
        steps = self.policy.log_prob(task_params["policy"], episodes)  # [E, T]
        latent = gaussian.log_prob(task_params["mean"], task_params["log_std"], episodes.context)
        return steps + latent[:, None]

    def begin_fn(self, task_params):
        return lambda key: gaussian.sample(key, task_params["mean"], task_params["log_std"])

    def act_fn(self, task_params):
        return self.policy.act_fn(task_params["policy"])

    def step_size(self):
        c = self.config
        policy_step = c.inner_step_size if c.adapt_policy else 0.0
        template = jax.eval_shape(self.policy.init, jax.random.PRNGKey(0))
        return {
            "policy": jax.tree.map(lambda _: policy_step, template),
            "mean": c.latent_step_size,
            "log_std": c.latent_step_size,
        }

    def regularizer(self, params, indices):
        """``kl_weight`` times the mean KL of the batch's task latents to the prior."""
        mean = params["latent_mean"][indices]
        log_std = params["latent_log_std"][indices]
        zeros = jnp.zeros_like(mean)
        kl = gaussian.kl(mean, log_std, zeros, zeros)
        return self.config.kl_weight * jnp.mean(kl)


class MAESN(MetaBatchLearner):
    """MAML over ``(policy, task latent)``; a test task starts from the latent prior.

    A ``types.Learner``; ``family`` defaults to ``make(config.task)``. ``meta`` is its
    ``MetaBatch`` (inner loop, chunks, agent), ``model`` its ``LatentPolicy``."""

    name = "maesn"

    def __init__(
        self, config: Config, family: TaskFamily | None = None, devices: list | None = None
    ):
        self._compose(
            config,
            family,
            devices,
            LatentPolicy,
            episodes_per_task=config.episodes_per_step * (config.inner_steps + 1),
            optimizer_steps=config.ppo_epochs,
            first_order=config.first_order,
        )

    def meta_update(self, state: TrainState, slots: jax.Array, axis: str | None = None):
        return maml.ppo_meta_update(self.meta, state, slots, axis)

    def outer_loss(self, params, indices, pre, post, pre_ref, post_ref, post_adv):
        return maml.ppo_outer_loss(
            self.meta, params, indices, pre, post, pre_ref, post_ref, post_adv
        )
