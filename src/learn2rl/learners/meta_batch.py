"""The meta-batch machinery that MAML, Reptile and MAESN share.

Each of the three learners *has* a ``MetaBatch`` (composition: none of them subclasses another)
and configures it with its own pieces:

- a *task parameterization* (``PlainPolicy`` for MAML and Reptile, ``maesn.LatentPolicy``): the
  policy network, which training tasks a meta-batch draws, which parameters the inner loop adapts
  for a task and where a test task starts, the log-likelihood of episodes, the per-episode context
  (MAESN's latent noise), the inner step size and a regularizer of the outer loss;
- an *outer update* ``meta_update(state, slots, axis)``: MAML's and MAESN's PPO through the inner
  step (``maml.ppo_meta_update``), Reptile's move towards the adapted parameters;
- whether the inner step is differentiated (``first_order``), how many episodes one task runs per
  meta-update, and how many optimiser steps one meta-update takes (for the learning-rate decay).

``MetaBatch`` holds everything else: sampling episodes per task, the inner VPG step
(``policy_gradient.inner_update``), the pre-/post-update episode collection, the outer optimiser,
the sharded chunks (``learners.base.ShardedChunks``), ``init`` / ``place`` and the meta-test
``agent``. The learners' shared settings are ``PolicyGradientConfig``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.learners import policy_gradient as pg
from learn2rl.learners.base import (
    ConfigMixin,
    ShardedChunks,
    check_choice,
    check_layer_sizes,
    check_positive,
    check_positive_ints,
    check_seed,
    check_unit_interval,
)
from learn2rl.rollout import Episodes, no_context, rollout_episodes
from learn2rl.tasks.base import TaskFamily
from learn2rl.types import AgentKind, GradientAgent

BASELINES = (*pg.BASELINES, "cross-task")
TEST_BASELINES = ("refit", "previous")


@dataclass(frozen=True)
class PolicyGradientConfig(ConfigMixin):
    """The settings every gradient-based learner shares (policy, inner step, outer optimiser).
    Defaults: Finn et al. 2017's 2-D point navigation (appendix A.2)."""

    task: str = "control/point-goal"
    """Task family id (a continuous-control family, ``learn2rl list``)."""
    hidden_sizes: tuple[int, ...] = (100, 100)
    """Policy MLP hidden layers (2 x 100 ReLU in the paper)."""
    init_log_std: float = 0.0
    """Initial log standard deviation of the Gaussian policy, in units of the action box."""
    activation: str = "relu"
    """Hidden-layer nonlinearity: "relu" (the paper's) or "tanh"."""
    num_tasks: int = 20
    """Tasks per meta-update (the meta-batch; 20 for point navigation, 40 for locomotion)."""
    episodes_per_step: int = 20
    """Episodes sampled for each inner step and for the post-update objective (the paper's K)."""
    inner_steps: int = 1
    """Inner VPG steps per task during meta-training (the paper trains with 1, tests up to 3)."""
    inner_step_size: float = 0.1
    """Inner step size alpha (0.1 in the paper)."""
    test_step_decay: float = 0.5
    """Meta-test: steps after the first use ``inner_step_size * test_step_decay``. Finn et al. 2017
    (appendix A.2) found halving the step size after the first update worked best."""
    num_updates: int = 300
    """Meta-updates."""
    updates_per_chunk: int = 10
    """Meta-updates per jitted chunk (logging, checkpoints and progress between chunks)."""
    learning_rate: float = 1e-3
    """Outer Adam step size."""
    final_learning_rate: float | None = None
    """Outer step size at the last update (linear decay); None keeps ``learning_rate``."""
    max_grad_norm: float = 1.0
    """Global norm clip of the outer gradient."""
    gamma: float = 0.99
    """Discount of the returns (rllab's default)."""
    baseline: str = "linear"
    """Baseline subtracted from the returns during meta-training: "linear" (feature regression
    fitted to the task's own batch), "cross-task" (the same regression fitted to the *other*
    tasks' batches of the meta-batch at the same step: the paper code shared one rllab baseline
    across the meta-batch and refit it on each task in turn, so each task's step subtracted a fit
    to another task's episodes) or "none". Meta-test steps use the linear baseline unless this is
    "none" (``test_baseline`` says which fit)."""
    normalize_advantages: bool = True
    """Scale each task's advantages to zero mean and unit variance."""
    test_baseline: str = "refit"
    """Meta-test only, with the linear baseline: "refit" fits it to each adaptation batch itself
    (as meta-training does); "previous" predicts with its fit to the previous batch and uses none
    before the first step, as rllab's sampler does (it predicts, then refits), which is how Finn et
    al.'s test script took its steps."""
    test_episodes_per_step: int | None = None
    """Meta-test only: episodes per adaptation step (None: ``episodes_per_step``). Finn et al.'s
    point-navigation test sampled 4,000 env steps per step, 40 or more episodes of at most 100."""
    seed: int = 0
    """Random seed; the same config and seed give the same numbers."""

    def __post_init__(self):
        check_positive_ints(
            self,
            "num_tasks",
            "episodes_per_step",
            "inner_steps",
            "num_updates",
            "updates_per_chunk",
        )
        check_positive_ints(self, "test_episodes_per_step", optional=True)
        check_positive(self, "inner_step_size", "learning_rate", "max_grad_norm", "test_step_decay")
        check_positive(self, "final_learning_rate", optional=True)
        check_unit_interval(self, "gamma")
        check_seed(self)
        check_layer_sizes(self)
        check_choice(self, "activation", ("relu", "tanh"))
        check_choice(self, "baseline", BASELINES)
        if self.baseline == "cross-task" and self.num_tasks < 2:
            raise Learn2RLError("config.baseline='cross-task' needs num_tasks >= 2")
        check_choice(self, "test_baseline", TEST_BASELINES)


class InnerBatch(NamedTuple):
    """One inner step's data for one task: its episodes and their (constant) advantages."""

    episodes: Episodes
    adv: jax.Array


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    update: jax.Array  # meta-updates done so far
    key: jax.Array  # base key; update u uses fold_in(key, u)


def continuous_family(config: Any, family: TaskFamily | None, learner: str) -> TaskFamily:
    """``family`` (default: ``make(config.task)``), refused unless it has continuous actions."""
    if family is None:
        from learn2rl.tasks import make

        family = make(config.task)
    if not getattr(family, "continuous", False):
        raise Learn2RLError(
            f"{learner} needs a continuous-control family; {family.family_id} "
            "has discrete actions (use rl2 there)"
        )
    return family


class PlainPolicy:
    """The task parameterization of MAML and Reptile: one Gaussian MLP policy whose parameters
    are what the inner loop adapts, for training and test tasks alike; training tasks are fresh
    draws from the training split."""

    def __init__(self, family: TaskFamily, config: PolicyGradientConfig):
        self.family = family
        self.config = config
        self.policy = pg.GaussianPolicy(
            family, config.hidden_sizes, config.init_log_std, activation=config.activation
        )

    def init(self, key: jax.Array) -> Any:
        """The meta-parameters at the start of training."""
        return self.policy.init(key)

    def sample_tasks(self, key: jax.Array, slots: jax.Array):
        """The training tasks of meta-batch ``slots`` and their indices (fresh draws, each from
        ``fold_in(key, slot)``; index 0)."""
        tasks = jax.vmap(lambda i: self.family.sample(jax.random.fold_in(key, i), "train"))(slots)
        return tasks, jnp.zeros(slots.shape, jnp.int32)

    def task_params(self, params, index: jax.Array):
        """The parameters the inner loop adapts for training task ``index``: all of them."""
        return params

    def test_params(self, params):
        """The parameters a meta-test trial starts from."""
        return params

    def log_prob(self, task_params, episodes: Episodes) -> jax.Array:
        """log-likelihood of every step of the episodes, ``[E, T]``."""
        return self.policy.log_prob(task_params, episodes)

    def distributions(self, task_params, episodes: Episodes):
        """Mean and log-std of the action at every step, ``[E, T, action_size]`` each."""
        return self.policy.distributions(task_params, episodes)

    def begin_fn(self, task_params) -> Callable:
        """Per-episode context sampler for ``rollout_episodes``: none."""
        return no_context

    def act_fn(self, task_params) -> Callable:
        return self.policy.act_fn(task_params)

    def step_size(self):
        """The inner step size: a scalar, or a pytree matching ``task_params``."""
        return self.config.inner_step_size

    def regularizer(self, params, indices: jax.Array) -> jax.Array:
        """Added to the outer loss: nothing."""
        return jnp.float32(0.0)


class MetaBatch:
    """Meta-batches of tasks for a gradient-based learner: the inner loop, chunks and agent.

    ``name``: the learner's id (the agent's default name). ``model``: its task parameterization
    (``PlainPolicy`` or one with the same methods). ``meta_update(state, slots, axis)``: one
    meta-update on meta-batch ``slots`` (this device's share; gradients and metrics averaged over
    ``axis``). ``episodes_per_task``: episodes one task runs per meta-update.
    ``optimizer_steps``: outer optimiser steps per meta-update (the learning rate decays over
    ``num_updates * optimizer_steps`` of them). ``first_order``: treat the inner gradient as a
    constant when differentiating through the inner step.
    """

    def __init__(
        self,
        name: str,
        config: PolicyGradientConfig,
        family: TaskFamily,
        model: Any,
        meta_update: Callable,
        *,
        episodes_per_task: int,
        optimizer_steps: int = 1,
        first_order: bool = False,
        devices: list | None = None,
    ):
        self.name = name
        self.config = config
        self.family = family
        self.model = model
        self.meta_update = meta_update
        self.episodes_per_task = episodes_per_task
        self.first_order = first_order
        final = config.final_learning_rate
        schedule = optax.linear_schedule(
            config.learning_rate,
            config.learning_rate if final is None else final,
            config.num_updates * optimizer_steps,
        )
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm), optax.adam(schedule)
        )
        self.chunks = ShardedChunks(config.num_tasks, "tasks", devices)
        self.devices, self.mesh = self.chunks.devices, self.chunks.mesh

    @property
    def steps_per_update(self) -> int:
        """Environment steps of one meta-update: every task's episodes, full length."""
        return self.config.num_tasks * self.episodes_per_task * self.family.episode_length

    # --- setup ------------------------------------------------------------------------------
    def init(self, seed: int | None = None) -> TrainState:
        seed = self.config.seed if seed is None else seed
        init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
        params = self.model.init(init_key)
        return self.place(TrainState(params, self.optimizer.init(params), jnp.int32(0), run_key))

    def place(self, state: TrainState) -> TrainState:
        """Replicate a train state over the devices, as ``train_chunk`` returns it."""
        return self.chunks.place(state)

    # --- the inner loop ---------------------------------------------------------------------
    def task_batch(self, state: TrainState, slots: jax.Array):
        """Update ``state.update``'s training tasks of meta-batch ``slots``, their indices and
        each slot's episode key (``fold_in(., slot)``, so a slot does not depend on the split)."""
        key = jax.random.fold_in(state.key, state.update)
        key_tasks, key_collect = jax.random.split(key)
        tasks, indices = self.model.sample_tasks(key_tasks, slots)
        keys = jax.vmap(lambda i: jax.random.fold_in(key_collect, i))(slots)
        return tasks, indices, keys

    def advantages(self, episodes: Episodes) -> jax.Array:
        """One task's advantages with a baseline fitted to its own batch (none if "none")."""
        c = self.config
        baseline = "none" if c.baseline == "none" else "linear"
        return pg.advantages(episodes, c.gamma, baseline, c.normalize_advantages)

    def batch_advantages(self, episodes: Episodes, axis: str | None = None) -> jax.Array:
        """Advantages of a meta-batch's episodes (leading task axis) under ``config.baseline``;
        "cross-task" fits each task's baseline to every other task of the meta-batch, summed
        over ``axis`` (the devices) too."""
        c = self.config
        if c.baseline != "cross-task":
            return jax.vmap(self.advantages)(episodes)
        returns = jax.vmap(pg.reward_to_go, in_axes=(0, None))(episodes, c.gamma)
        gram, moment = jax.vmap(pg.linear_baseline_moments)(episodes, returns)
        total = (jnp.sum(gram, axis=0), jnp.sum(moment, axis=0))
        if axis is not None:
            total = jax.lax.psum(total, axis)
        coef = jax.vmap(pg.linear_baseline_solve)(total[0] - gram, total[1] - moment)
        values = jax.vmap(pg.linear_baseline_predict)(coef, episodes)
        return jax.vmap(
            lambda e, v, r: pg.advantages(e, c.gamma, "linear", c.normalize_advantages, v, r)
        )(episodes, values, returns)

    def rollout(self, task_params, key, task) -> Episodes:
        """``episodes_per_step`` episodes of ``task`` with the policy of ``task_params``."""
        task_params = jax.lax.stop_gradient(task_params)  # sampled episodes are data
        return rollout_episodes(
            self.family,
            self.model.act_fn(task_params),
            key,
            task,
            self.config.episodes_per_step,
            self.model.begin_fn(task_params),
        )

    def adapt(self, task_params, batch: InnerBatch, ref_log_prob=None, first_order=None):
        """One inner VPG step on one task's batch (differentiable in ``task_params``)."""
        first_order = self.first_order if first_order is None else first_order
        return pg.inner_update(
            self.model.log_prob,
            task_params,
            batch.episodes,
            batch.adv,
            self.model.step_size(),
            first_order,
            ref_log_prob,
        )

    def collect(self, start, keys: jax.Array, tasks, axis: str | None = None, post: bool = True):
        """The inner steps of a meta-batch (leading task axis on ``start``, ``keys``, ``tasks``):
        for each step, every task's episodes (the same key per task as ever: ``split(key,
        inner_steps + post)``), their advantages (``batch_advantages``, so a cross-task baseline
        sees the whole batch) and the step. Returns the ``InnerBatch`` of each step, the
        post-update episodes (None unless ``post``) and the adapted parameters."""
        c = self.config
        keys = jax.vmap(lambda k: jax.random.split(k, c.inner_steps + int(post)))(keys)
        rollout = jax.vmap(self.rollout)
        pre = []
        adapted = start
        for k in range(c.inner_steps):
            episodes = rollout(adapted, keys[:, k], tasks)
            pre.append(InnerBatch(episodes, self.batch_advantages(episodes, axis)))
            adapted = jax.lax.stop_gradient(jax.vmap(self.adapt)(adapted, pre[-1]))
        after = rollout(adapted, keys[:, -1], tasks) if post else None
        return pre, after, adapted

    def adapted_params(self, task_params, pre: list[InnerBatch], ref_log_probs: list):
        """``task_params`` after the inner steps on ``pre`` (differentiable; one task)."""
        for batch, ref in zip(pre, ref_log_probs, strict=True):
            task_params = self.adapt(task_params, batch, ref)
        return task_params

    def reference_log_probs(self, task_params, pre: list[InnerBatch], post: Episodes):
        """Log-probs of each batch under the policy that sampled it: ``task_params`` for the
        first pre-update batch, then the policy after each inner step (one task)."""
        refs = []
        for batch in pre:
            refs.append(self.model.log_prob(task_params, batch.episodes))
            task_params = self.adapt(task_params, batch, refs[-1])
        return refs, self.model.log_prob(task_params, post)

    # --- training chunks ----------------------------------------------------------------------
    def train_chunk(self, state: TrainState, num_updates: int):
        """``num_updates`` meta-updates inside one jit; returns per-update metrics (arrays)."""
        return self.chunks.run(self._local_updates, state, num_updates)

    def train_members(self, states: TrainState, num_updates: int):
        """``train_chunk`` for a stack of train states trained side by side (``learn2rl
        sweep``)."""
        return self.chunks.run(self._local_updates, states, num_updates, members=True)

    def _local_updates(self, state: TrainState, slots: jax.Array, *, num_updates: int):
        """This device's share ``slots`` of the meta-batch, ``num_updates`` meta-updates."""

        def one(state, _):
            return self.meta_update(state, slots, axis="tasks")

        return jax.lax.scan(one, state, None, num_updates)

    # --- meta-test ----------------------------------------------------------------------------
    def test_step_size(
        self, step: jax.Array, step_size: float | None = None, step_decay: float | None = None
    ):
        """Step size of meta-test adaptation step ``step`` (0 = the first): a scalar, or a pytree
        matching the adapted parameters."""
        decay = self.config.test_step_decay if step_decay is None else step_decay
        scale = jnp.where(step == 0, 1.0, decay)
        if step_size is not None:
            return step_size * scale
        return jax.tree.map(lambda a: a * scale, self.model.step_size())

    def agent(
        self,
        params,
        name: str | None = None,
        step_size: float | None = None,
        step_decay: float | None = None,
    ) -> GradientAgent:
        """The meta-trained learner as a ``GradientAgent`` that adapts by the inner VPG step.

        The agent's state is ``(adapted params, steps taken, baseline coefficients)``; step ``k``
        has size ``test_step_size(k)`` (``step_size`` / ``step_decay`` override the config's).
        The coefficients are the linear baseline's fit to the last batch, which the next step
        subtracts when ``test_baseline="previous"`` (zeros, i.e. no baseline, at the first).
        """
        model, c = self.model, self.config
        previous = c.baseline != "none" and c.test_baseline == "previous"
        obs = jnp.zeros((1, 1, self.family.observation_size), jnp.float32)
        num_coef = pg.linear_baseline_features(obs).shape[-1]

        def adapt(key, state, episodes):
            task_params, step, coef = state
            alpha = self.test_step_size(step, step_size, step_decay)
            if previous:
                values = pg.linear_baseline_predict(coef, episodes)
                returns = pg.reward_to_go(episodes, c.gamma)
                adv = pg.advantages(
                    episodes, c.gamma, "linear", c.normalize_advantages, values, returns
                )
                coef = pg.linear_baseline_coef(episodes, returns)
            else:
                adv = self.advantages(episodes)
            adapted = pg.inner_update(model.log_prob, task_params, episodes, adv, alpha, True)
            return adapted, step + 1, coef

        def build(params):
            return GradientAgent(
                name=name or self.name,
                init=lambda key: (
                    model.test_params(params),
                    jnp.int32(0),
                    jnp.zeros((num_coef,), jnp.float32),
                ),
                begin_episode=lambda key, state: model.begin_fn(state[0])(key),
                act=lambda key, state, context, obs: model.act_fn(state[0])(key, context, obs),
                adapt=adapt,
                episodes_per_adapt=c.test_episodes_per_step or c.episodes_per_step,
            )

        # The pieces read only the learner, the family and the config; the seed merely chose the
        # initial parameters, so runs that differ in it share one compiled evaluation.
        key = (
            MetaBatch,
            self.name,
            self.family,
            self.config.replace(seed=0),
            step_size,
            step_decay,
        )
        return AgentKind(key, build).bind(params)


class MetaBatchLearner:
    """The ``types.Learner`` members a gradient learner hands to its ``MetaBatch`` (``self.meta``).

    MAML, Reptile and MAESN each build their own ``MetaBatch`` and parameterisation (composition);
    this base only forwards the contract's plumbing to it, so none of them subclasses another.
    """

    progress_metric = "trial_return"
    name: str
    meta: MetaBatch

    def _compose(
        self, config, family: TaskFamily | None, devices: list | None, model_cls, **meta_options
    ) -> None:
        """Build this learner's family (from ``config.task`` unless given), its parameterisation
        ``model_cls(family, config)`` and its ``MetaBatch`` around ``self.meta_update``."""
        self.config = config
        self.family = continuous_family(config, family, type(self).__name__)
        self.model = model_cls(self.family, config)
        self.meta = MetaBatch(
            self.name,
            config,
            self.family,
            self.model,
            self.meta_update,
            devices=devices,
            **meta_options,
        )
        self.devices, self.mesh = self.meta.devices, self.meta.mesh

    @property
    def episodes_per_trial(self) -> int:
        """Episodes of one meta-training task (the batches around the inner steps)."""
        return self.meta.episodes_per_task

    @property
    def steps_per_update(self) -> int:
        return self.meta.steps_per_update

    def init(self, seed: int | None = None) -> TrainState:
        return self.meta.init(seed)

    def place(self, state: TrainState) -> TrainState:
        return self.meta.place(state)

    def train_chunk(self, state: TrainState, num_updates: int):
        """``num_updates`` meta-updates inside one jit; returns per-update metrics (arrays)."""
        return self.meta.train_chunk(state, num_updates)

    def train_members(self, states: TrainState, num_updates: int):
        """Several train states (a leading member axis) at once: ``MetaBatch.train_members``."""
        return self.meta.train_members(states, num_updates)

    def agent(self, params, name=None, step_size=None, step_decay=None):
        """The meta-trained policy as a ``GradientAgent`` adapting by the inner VPG step
        (``MetaBatch.agent``; evaluation compiles once per kind of agent)."""
        return self.meta.agent(params, name, step_size, step_decay)
