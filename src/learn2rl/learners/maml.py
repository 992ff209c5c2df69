"""MAML for reinforcement learning (Finn, Abbeel & Levine 2017, arXiv 1703.03400, Alg. 3).

Meta-parameters ``theta`` of a Gaussian MLP policy are trained so that *one policy-gradient step*
on a few episodes of a new task gives a good policy for that task.

One meta-update:
    1. draw ``num_tasks`` training tasks;
    2. for each, sample ``episodes_per_step`` episodes with ``theta`` and take ``inner_steps`` VPG
       steps of size ``inner_step_size`` (new episodes with the current adapted policy before each
       further step): ``theta_i' = theta - alpha * grad L_i(theta)``;
    3. sample ``episodes_per_step`` episodes with each ``theta_i'``;
    4. outer loop: ``ppo_epochs`` Adam steps on the clipped PPO surrogate of the post-update
       episodes, as a function of ``theta`` *through* the inner update (second order), or with the
       inner gradient treated as a constant (``first_order=True``, FOMAML). Finn et al. used TRPO
       here; PPO is the "PPO or TRPO" the project allows and what ProMP (Rothfuss et al. 2018) used.
``adapt`` at meta-test time is the same inner step, run by ``evaluate`` through a
``GradientAgent``: batches of ``episodes_per_step`` episodes with an update after each.

The whole meta-update is one jitted function; ``train_chunk`` runs ``updates_per_chunk`` of them
in a ``lax.scan``. Update ``u`` uses ``fold_in(key, u)`` and task slot ``i`` of the meta-batch
``fold_in(., i)``, so resumed runs replay exactly. The meta-batch is split over the local devices
with ``jax.shard_map`` (outer gradients averaged with ``pmean``), as in RL^2; on a CPU
``learn2rl.devices.use_cpu_cores()`` makes each core a device. Results are bit-identical for the
same config, seed and device count.

Layout: ``MAML`` has a ``meta_batch.MetaBatch`` (the inner loop, chunks, ``init`` / ``place`` /
``agent``, shared with Reptile and MAESN) configured with ``meta_batch.PlainPolicy`` and the PPO
outer update of this module (``ppo_meta_update``, which MAESN uses too).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import optax

from learn2rl.learners import policy_gradient as pg
from learn2rl.learners.base import check_positive, check_positive_ints
from learn2rl.learners.meta_batch import (
    MetaBatch,
    MetaBatchLearner,
    PlainPolicy,
    PolicyGradientConfig,
    TrainState,
)
from learn2rl.ops.losses import ppo_clip_objective
from learn2rl.tasks.base import TaskFamily

__all__ = ["MAML", "Config", "PolicyGradientConfig", "TrainState", "ppo_meta_update"]


@dataclass(frozen=True)
class Config(PolicyGradientConfig):
    """MAML settings: the shared ones plus the outer PPO loop and the first-order switch."""

    learner = "maml"

    first_order: bool = False
    """Drop the second-order term (FOMAML)."""
    ppo_epochs: int = 5
    """Outer Adam steps per meta-update on the same post-update episodes."""
    ppo_clip: float = 0.2
    """PPO ratio clip epsilon."""

    def __post_init__(self):
        super().__post_init__()
        check_positive_ints(self, "ppo_epochs")
        check_positive(self, "ppo_clip")


# --- the outer loop (MAML's and MAESN's) -----------------------------------------------------
def ppo_outer_loss(meta: MetaBatch, params, indices, pre, post, pre_ref, post_ref, post_adv):
    """Mean over tasks of the negated clipped surrogate of the post-update episodes, as a function
    of the meta-parameters *through* the inner steps, plus the parameterization's regularizer."""
    c, model = meta.config, meta.model

    def task_loss(index, pre, post, pre_ref, post_ref, post_adv):
        adapted = meta.adapted_params(model.task_params(params, index), pre, pre_ref)
        log_prob = model.log_prob(adapted, post)
        objective = ppo_clip_objective(log_prob - post_ref, post_adv, c.ppo_clip)
        return -pg.masked_mean(objective, post.mask)

    losses = jax.vmap(task_loss)(indices, pre, post, pre_ref, post_ref, post_adv)
    return jnp.mean(losses) + model.regularizer(params, indices)


def ppo_meta_update(meta: MetaBatch, state: TrainState, slots: jax.Array, axis: str | None = None):
    """One meta-update on the meta-batch ``slots`` (this device's share when ``axis`` names the
    device axis, over which gradients and metrics are averaged): collect pre- and post-update
    episodes per task, then ``ppo_epochs`` Adam steps on ``ppo_outer_loss``."""
    c = meta.config
    tasks, indices, keys = meta.task_batch(state, slots)
    start = jax.vmap(meta.model.task_params, in_axes=(None, 0))(state.params, indices)
    pre, post, _ = jax.vmap(meta.collect)(start, keys, tasks)

    # Reference log-probs of the sampling policies, fixed for all PPO epochs.
    pre_ref, post_ref = jax.lax.stop_gradient(jax.vmap(meta.reference_log_probs)(start, pre, post))
    post_adv = jax.vmap(meta.advantages)(post)

    def epoch(carry, _):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(partial(ppo_outer_loss, meta))(
            params, indices, pre, post, pre_ref, post_ref, post_adv
        )
        if axis is not None:
            loss, grads = jax.lax.pmean((loss, grads), axis)
        updates, opt_state = meta.optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), (loss, optax.tree.norm(grads))

    (params, opt_state), (losses, norms) = jax.lax.scan(
        epoch, (state.params, state.opt_state), None, length=c.ppo_epochs
    )
    metrics = {
        "pre_return": jnp.mean(pre[0].returns),
        "trial_return": jnp.mean(post.returns),  # post-update return per episode
        "outer_loss": losses[0],
        "grad_norm": norms[0],
    }
    if axis is not None:
        metrics = jax.lax.pmean(metrics, axis)
    return state.replace(params=params, opt_state=opt_state, update=state.update + 1), metrics


class MAML(MetaBatchLearner):
    """MAML for one continuous-control family: ``init`` -> ``train_chunk`` -> ``agent(params)``.

    A ``types.Learner``; ``family`` defaults to ``make(config.task)``. ``meta`` is its
    ``MetaBatch`` (inner loop, chunks, agent), ``model`` its ``PlainPolicy``."""

    name = "maml"

    def __init__(
        self, config: Config, family: TaskFamily | None = None, devices: list | None = None
    ):
        self._compose(
            config,
            family,
            devices,
            PlainPolicy,
            episodes_per_task=config.episodes_per_step * (config.inner_steps + 1),
            optimizer_steps=config.ppo_epochs,
            first_order=config.first_order,
        )

    def meta_update(self, state: TrainState, slots: jax.Array, axis: str | None = None):
        return ppo_meta_update(self.meta, state, slots, axis)

    def outer_loss(self, params, indices, pre, post, pre_ref, post_ref, post_adv):
        return ppo_outer_loss(self.meta, params, indices, pre, post, pre_ref, post_ref, post_adv)
