"""MAML for reinforcement learning (Finn, Abbeel & Levine 2017, arXiv 1703.03400, Alg. 3).

Meta-parameters ``theta`` of a Gaussian MLP policy are trained so that *one policy-gradient step*
on a few episodes of a new task gives a good policy for that task.

One meta-update:
    1. draw ``num_tasks`` training tasks;
    2. for each, sample ``episodes_per_step`` episodes with ``theta`` and take ``inner_steps`` VPG
       steps of size ``inner_step_size`` (new episodes with the current adapted policy before each
       further step): ``theta_i' = theta - alpha * grad L_i(theta)``;
    3. sample ``episodes_per_step`` episodes with each ``theta_i'``;
    4. outer loop (``outer``), on the post-update episodes as a function of ``theta`` *through*
       the inner update (second order), or with the inner gradient treated as a constant
       (``first_order=True``, FOMAML):
       - ``"ppo"``: ``ppo_epochs`` Adam steps on the clipped PPO surrogate (what ProMP, Rothfuss
         et al. 2018, used);
       - ``"trpo"``: one TRPO step, Finn et al.'s outer loop (``trpo_meta_update``): the natural
         gradient of the importance-weighted surrogate by conjugate gradient on the Fisher of the
         mean KL between the sampling post-update policies and the new ones (both through the
         inner step), scaled to ``max_kl`` and shortened by a backtracking line search until the
         surrogate improves and the KL is within ``max_kl`` (rllab's ``ConjugateGradientOptimizer``
         with its defaults: 10 CG iterations, damping 1e-5, backtracking ratio 0.8, 15 tries).
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
from typing import Literal

import jax
import jax.numpy as jnp
import optax

from learn2rl.learners import policy_gradient as pg
from learn2rl.learners.base import check_choice, check_positive, check_positive_ints
from learn2rl.learners.meta_batch import (
    MetaBatch,
    MetaBatchLearner,
    PlainPolicy,
    PolicyGradientConfig,
    TrainState,
)
from learn2rl.ops import gaussian
from learn2rl.ops.losses import ppo_clip_objective
from learn2rl.tasks.base import TaskFamily

__all__ = [
    "MAML",
    "Config",
    "PolicyGradientConfig",
    "TrainState",
    "ppo_meta_update",
    "trpo_meta_update",
]


@dataclass(frozen=True)
class Config(PolicyGradientConfig):
    """MAML settings: the shared ones plus the outer loop (PPO or TRPO) and the first-order
    switch."""

    learner = "maml"

    first_order: bool = False
    """Drop the second-order term (FOMAML)."""
    outer: Literal["ppo", "trpo"] = "ppo"
    """The outer update: PPO epochs with Adam (``learning_rate``, ``max_grad_norm``) or one TRPO
    step (``max_kl``; Finn et al.'s algorithm)."""
    ppo_epochs: int = 5
    """(PPO) Outer Adam steps per meta-update on the same post-update episodes."""
    ppo_clip: float = 0.2
    """(PPO) Ratio clip epsilon."""
    max_kl: float = 0.01
    """(TRPO) Bound on the mean KL between the post-update policies before and after the step
    (Finn et al. 2017's step size, 0.01)."""
    cg_iterations: int = 10
    """(TRPO) Conjugate-gradient iterations for the natural gradient (rllab: 10)."""
    cg_damping: float = 1e-5
    """(TRPO) Multiple of the identity added to the Fisher (rllab's ``reg_coeff``: 1e-5)."""
    line_search_steps: int = 15
    """(TRPO) Backtracking tries, each 0.8 times the previous step (rllab: 15)."""

    def __post_init__(self):
        super().__post_init__()
        check_positive_ints(self, "ppo_epochs", "cg_iterations", "line_search_steps")
        check_positive(self, "ppo_clip", "max_kl", "cg_damping")
        check_choice(self, "outer", ("ppo", "trpo"))


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


def collect_meta_batch(
    meta: MetaBatch, state: TrainState, slots: jax.Array, axis: str | None = None
):
    """The data of one outer update on meta-batch ``slots``: each task's index, pre-update
    batches (``InnerBatch``) and post-update episodes, the reference log-probs of the policies
    that sampled them (constants, fixed for every outer step) and the post-update advantages."""
    tasks, indices, keys = meta.task_batch(state, slots)
    start = jax.vmap(meta.model.task_params, in_axes=(None, 0))(state.params, indices)
    pre, post, _ = meta.collect(start, keys, tasks, axis)
    pre_ref, post_ref = jax.lax.stop_gradient(jax.vmap(meta.reference_log_probs)(start, pre, post))
    post_adv = meta.batch_advantages(post, axis)
    return indices, pre, post, pre_ref, post_ref, post_adv


def ppo_meta_update(meta: MetaBatch, state: TrainState, slots: jax.Array, axis: str | None = None):
    """One meta-update on the meta-batch ``slots`` (this device's share when ``axis`` names the
    device axis, over which gradients and metrics are averaged): collect pre- and post-update
    episodes per task, then ``ppo_epochs`` Adam steps on ``ppo_outer_loss``."""
    c = meta.config
    indices, pre, post, pre_ref, post_ref, post_adv = collect_meta_batch(meta, state, slots, axis)

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
        "pre_return": jnp.mean(pre[0].episodes.returns),
        "trial_return": jnp.mean(post.returns),  # post-update return per episode
        "outer_loss": losses[0],
        "grad_norm": norms[0],
    }
    if axis is not None:
        metrics = jax.lax.pmean(metrics, axis)
    return state.replace(params=params, opt_state=opt_state, update=state.update + 1), metrics


# --- TRPO (Finn et al.'s outer loop) ----------------------------------------------------------
BACKTRACK_RATIO = 0.8  # rllab's ConjugateGradientOptimizer


def _post_update_pieces(meta: MetaBatch, params, indices, pre, post, pre_ref):
    """Per task, the post-update policy's log-probs and action distributions at the post-update
    steps, as functions of the meta-parameters through the inner steps."""
    model = meta.model

    def per_task(index, pre, post, pre_ref):
        adapted = meta.adapted_params(model.task_params(params, index), pre, pre_ref)
        return model.log_prob(adapted, post), model.distributions(adapted, post)

    return jax.vmap(per_task)(indices, pre, post, pre_ref)


def trpo_objectives(meta: MetaBatch, params, batch):
    """``(surrogate, mean KL)`` of the post-update episodes at meta-parameters ``params``: the
    importance-weighted advantage (to maximise) and KL(sampling policy || new policy), each the
    mean over tasks of the masked mean over steps."""
    indices, pre, post, pre_ref, post_ref, post_adv, old_mean, old_log_std = batch
    log_prob, (mean, log_std) = _post_update_pieces(meta, params, indices, pre, post, pre_ref)

    def per_task(log_prob, ref, adv, mask, m_old, s_old, m, s):
        ratio = jnp.exp(log_prob - ref)
        kl = gaussian.kl(m_old, s_old, m, s)
        return pg.masked_mean(ratio * adv, mask), pg.masked_mean(kl, mask)

    surrogate, kl = jax.vmap(per_task)(
        log_prob, post_ref, post_adv, post.mask, old_mean, old_log_std, mean, log_std
    )
    return jnp.mean(surrogate), jnp.mean(kl)


def conjugate_gradient(matvec, b, iterations: int):
    """``x ~ A^-1 b`` for a symmetric positive-definite ``A`` given as ``matvec`` (pytrees), after
    ``iterations`` CG steps from ``x = 0``; stops changing once the residual vanishes."""
    tree = jax.tree

    def dot(u, v):
        return sum(jnp.vdot(a, c) for a, c in zip(tree.leaves(u), tree.leaves(v), strict=True))

    def body(_, carry):
        x, r, p, rr = carry
        ap = matvec(p)
        alpha = rr / jnp.maximum(dot(p, ap), 1e-30)
        alpha = jnp.where(rr > 1e-20, alpha, 0.0)
        x = tree.map(lambda x, p: x + alpha * p, x, p)
        r = tree.map(lambda r, a: r - alpha * a, r, ap)
        new_rr = dot(r, r)
        beta = new_rr / jnp.maximum(rr, 1e-30)
        p = tree.map(lambda r, p: r + beta * p, r, p)
        return x, r, p, new_rr

    x0 = tree.map(jnp.zeros_like, b)
    x, *_ = jax.lax.fori_loop(0, iterations, body, (x0, b, b, dot(b, b)))
    return x, dot


def trpo_batch(meta: MetaBatch, params, indices, pre, post, pre_ref, post_ref, post_adv):
    """The data of one TRPO step: the collected batch plus the sampling post-update policies'
    action distributions (constants)."""
    _, (old_mean, old_log_std) = jax.lax.stop_gradient(
        _post_update_pieces(meta, params, indices, pre, post, pre_ref)
    )
    return (indices, pre, post, pre_ref, post_ref, post_adv, old_mean, old_log_std)


def trpo_step(meta: MetaBatch, params, batch, axis: str | None = None):
    """One TRPO step from ``params`` on ``batch`` (``trpo_batch``): ``(new params, info)``. With
    ``axis``, the gradient, the Fisher-vector products and the line search's tests are averaged
    over the devices, so every device takes the same step."""
    c = meta.config
    mean_over = (lambda x: jax.lax.pmean(x, axis)) if axis is not None else (lambda x: x)  # noqa: E731
    objectives = partial(trpo_objectives, meta, batch=batch)
    surrogate0, grad = jax.value_and_grad(lambda p: objectives(p)[0])(params)
    surrogate0, grad = mean_over((surrogate0, grad))
    kl_grad = jax.grad(lambda p: objectives(p)[1])

    def fisher_vector(v):
        fv = jax.jvp(kl_grad, (params,), (v,))[1]
        return jax.tree.map(lambda f, x: f + c.cg_damping * x, mean_over(fv), v)

    direction, dot = conjugate_gradient(fisher_vector, grad, c.cg_iterations)
    # the step s = scale * direction with 0.5 s^T F s = max_kl (the quadratic model of the KL)
    scale = jnp.sqrt(2.0 * c.max_kl / jnp.maximum(dot(direction, fisher_vector(direction)), 1e-30))
    full_step = jax.tree.map(lambda d: scale * d, direction)

    def candidate(k):
        size = BACKTRACK_RATIO ** k.astype(jnp.float32)
        return jax.tree.map(lambda p, d: p + size * d, params, full_step)

    def search(carry):
        k, _, _ = carry
        surrogate, kl = mean_over(objectives(candidate(k)))
        ok = (surrogate > surrogate0) & (kl <= c.max_kl) & jnp.isfinite(surrogate + kl)
        return k + 1, ok, kl

    k, accepted, kl = jax.lax.while_loop(
        lambda carry: (carry[0] < c.line_search_steps) & ~carry[1],
        search,
        (jnp.int32(0), jnp.bool_(False), jnp.zeros_like(surrogate0)),
    )
    new_params = jax.tree.map(
        lambda new, old: jnp.where(accepted, new, old), candidate(k - 1), params
    )
    info = {
        "outer_loss": -surrogate0,
        "grad_norm": optax.tree.norm(grad),
        "kl": jnp.where(accepted, kl, 0.0),
        "accepted": accepted.astype(jnp.float32),
        "backtracks": (k - 1).astype(jnp.float32),
    }
    return new_params, info


def trpo_meta_update(meta: MetaBatch, state: TrainState, slots: jax.Array, axis: str | None = None):
    """One meta-update by TRPO on meta-batch ``slots`` (this device's share when ``axis`` names
    the device axis): collect pre- and post-update episodes per task, then ``trpo_step``."""
    collected = collect_meta_batch(meta, state, slots, axis)
    pre, post = collected[1], collected[2]
    batch = trpo_batch(meta, state.params, *collected)
    params, info = trpo_step(meta, state.params, batch, axis)
    metrics = {
        "pre_return": jnp.mean(pre[0].episodes.returns),
        "trial_return": jnp.mean(post.returns),
    }
    metrics.update(info)
    if axis is not None:
        metrics = jax.lax.pmean(metrics, axis)
    return state.replace(params=params, update=state.update + 1), metrics


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
        if self.config.outer == "trpo":
            return trpo_meta_update(self.meta, state, slots, axis)
        return ppo_meta_update(self.meta, state, slots, axis)

    def outer_loss(self, params, indices, pre, post, pre_ref, post_ref, post_adv):
        return ppo_outer_loss(self.meta, params, indices, pre, post, pre_ref, post_ref, post_adv)
