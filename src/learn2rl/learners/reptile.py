"""Reptile for reinforcement learning (Nichol, Achiam & Schulman 2018, arXiv 1803.02999, Alg. 2).

Reptile needs no second derivatives and no post-update objective: for each task of a meta-batch it
runs ``inner_steps`` ordinary policy-gradient steps from the meta-parameters ``theta`` (fresh
episodes before each step), and moves ``theta`` towards the mean of the adapted parameters
``phi_i``. The outer step feeds ``theta - mean_i(phi_i)`` to Adam as if it were a gradient (the
paper, Sec. 5, notes this works as well as the plain step ``theta += eps * (mean phi - theta)``).
With one inner step the update is joint training on all tasks; the MAML-like term that rewards
fast adaptation appears from two inner steps on (the paper's Sec. 6), so the default is 3.

Meta-test adaptation is the same VPG step as MAML's (``MetaBatch.agent``), so the two are
compared step for step on the same tasks.

Layout: ``Reptile`` has a ``meta_batch.MetaBatch`` with MAML's policy parameterization
(``PlainPolicy``), a first-order inner step, and its own meta-update (``Reptile.meta_update``); its
config has no PPO fields (one Adam step per meta-update).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax

from learn2rl.learners import policy_gradient as pg
from learn2rl.learners.meta_batch import (
    MetaBatchLearner,
    PlainPolicy,
    PolicyGradientConfig,
    TrainState,
)
from learn2rl.tasks.base import TaskFamily


@dataclass(frozen=True)
class Config(PolicyGradientConfig):
    """Reptile settings: the shared ones, with 3 inner steps (Reptile needs at least 2 to
    meta-learn anything beyond joint training)."""

    learner = "reptile"

    inner_steps: int = 3
    """Inner VPG steps per task during meta-training."""


class Reptile(MetaBatchLearner):
    """Reptile with the MAML policy, rollouts and inner step; only the meta-update differs.

    A ``types.Learner``; ``family`` defaults to ``make(config.task)``. ``meta`` is its
    ``MetaBatch`` (inner loop, chunks, agent), ``model`` its ``PlainPolicy``."""

    name = "reptile"

    def __init__(
        self, config: Config, family: TaskFamily | None = None, devices: list | None = None
    ):
        self._compose(
            config,
            family,
            devices,
            PlainPolicy,
            episodes_per_task=config.episodes_per_step * config.inner_steps,
            first_order=True,  # Reptile never differentiates through the inner loop
        )

    def meta_update(self, state: TrainState, slots: jax.Array, axis: str | None = None):
        """``inner_steps`` VPG steps per task from the meta-parameters, then one Adam step along
        ``theta - mean_i(phi_i)`` (averaged over ``axis``, the devices)."""
        c, meta = self.config, self.meta
        tasks, _, keys = meta.task_batch(state, slots)
        start = jax.tree.map(lambda p: jnp.broadcast_to(p, (len(slots), *p.shape)), state.params)
        batches, _, phis = meta.collect(start, keys, tasks, axis, post=False)
        direction = pg.reptile_direction(state.params, phis)
        mean_returns = jnp.stack([jnp.mean(b.episodes.returns) for b in batches])
        if axis is not None:
            direction, mean_returns = jax.lax.pmean((direction, mean_returns), axis)
        updates, opt_state = meta.optimizer.update(direction, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {
            "pre_return": mean_returns[0],
            # Return of the batch after one inner step (the first batch if there is one step).
            "trial_return": mean_returns[min(1, c.inner_steps - 1)],
            "direction_norm": optax.tree.norm(direction),
        }
        return state.replace(params=params, opt_state=opt_state, update=state.update + 1), metrics
