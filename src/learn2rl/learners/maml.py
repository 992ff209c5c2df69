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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.learners import policy_gradient as pg
from learn2rl.learners.base import ShardedChunks
from learn2rl.ops.losses import ppo_clip_objective
from learn2rl.rollout import Episodes, no_context, rollout_episodes
from learn2rl.tasks.base import TaskFamily
from learn2rl.trial import Trial
from learn2rl.types import AgentKind, GradientAgent


def check_config(config, positive_ints=(), positive=(), unit=(), non_negative=()):
    """Shared validation of the gradient-based learners' configs (one clear error per field)."""
    for name in positive_ints:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise Learn2RLError(f"config.{name} must be a positive integer, got {value!r}")
    for name in positive:
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise Learn2RLError(f"config.{name} must be a positive number, got {value!r}")
    for name in unit:
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise Learn2RLError(f"config.{name} must lie in [0, 1], got {value!r}")
    for name in non_negative:
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise Learn2RLError(f"config.{name} must be >= 0, got {value!r}")
    final = config.final_learning_rate
    if final is not None and (
        isinstance(final, bool) or not isinstance(final, (int, float)) or not final > 0
    ):
        raise Learn2RLError(f"config.final_learning_rate must be positive or None, got {final!r}")
    sizes = config.hidden_sizes
    if not sizes or not all(isinstance(h, int) and h > 0 for h in sizes):
        raise Learn2RLError(f"config.hidden_sizes must be positive integers, got {sizes!r}")
    if config.activation not in ("relu", "tanh"):
        raise Learn2RLError(
            f"config.activation must be 'relu' or 'tanh', got {config.activation!r}"
        )
    if config.baseline not in pg.BASELINES:
        raise Learn2RLError(
            f"config.baseline must be one of {', '.join(pg.BASELINES)}, got {config.baseline!r}"
        )


class ConfigMixin:
    """``replace`` / ``to_dict`` / ``from_dict`` for the learners' frozen dataclass configs."""

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise Learn2RLError(f"unknown {cls.__module__} config field(s): {', '.join(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**values)


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
    """Baseline subtracted from the returns: "linear" (feature regression) or "none"."""
    normalize_advantages: bool = True
    """Scale each task's advantages to zero mean and unit variance."""
    seed: int = 0
    """Random seed; the same config and seed give the same numbers."""

    # Validation lists; subclasses extend them with their own fields.
    _positive_ints = (
        "num_tasks",
        "episodes_per_step",
        "inner_steps",
        "num_updates",
        "updates_per_chunk",
    )
    _positive = ("inner_step_size", "learning_rate", "max_grad_norm", "test_step_decay")
    _non_negative: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        check_config(
            self,
            positive_ints=self._positive_ints,
            positive=self._positive,
            unit=("gamma",),
            non_negative=self._non_negative,
        )


@dataclass(frozen=True)
class Config(PolicyGradientConfig):
    """MAML settings: the shared ones plus the outer PPO loop and the first-order switch."""

    first_order: bool = False
    """Drop the second-order term (FOMAML)."""
    ppo_epochs: int = 5
    """Outer Adam steps per meta-update on the same post-update episodes."""
    ppo_clip: float = 0.2
    """PPO ratio clip epsilon."""

    _positive_ints = (*PolicyGradientConfig._positive_ints, "ppo_epochs")
    _positive = (*PolicyGradientConfig._positive, "ppo_clip")


@struct.dataclass
class TrainState:
    params: Any
    opt_state: Any
    update: jax.Array
    key: jax.Array


class MAML:
    """MAML for one continuous-control family: ``init`` -> ``train_chunk`` -> ``agent(params)``."""

    name = "maml"

    def __init__(self, config: Config, family: TaskFamily, devices: list | None = None):
        if not getattr(family, "continuous", False):
            raise Learn2RLError(
                f"{type(self).__name__} needs a continuous-control family; {family.family_id} "
                "has discrete actions (use rl2 there)"
            )
        self.config = config
        self.family = family
        self.policy = self.make_policy()
        # The runner counts env steps per update as num_tasks * trial.max_steps.
        self.trial = Trial(family, self.episodes_per_task())
        final = config.final_learning_rate
        schedule = optax.linear_schedule(
            config.learning_rate,
            config.learning_rate if final is None else final,
            config.num_updates * getattr(config, "ppo_epochs", 1),
        )
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(config.max_grad_norm), optax.adam(schedule)
        )
        self.chunks = ShardedChunks(config.num_tasks, "tasks", devices)
        self.devices, self.mesh = self.chunks.devices, self.chunks.mesh

    def make_policy(self) -> pg.GaussianPolicy:
        c = self.config
        return pg.GaussianPolicy(
            self.family, c.hidden_sizes, c.init_log_std, activation=c.activation
        )

    def episodes_per_task(self) -> int:
        return self.config.episodes_per_step * (self.config.inner_steps + 1)

    # --- setup ------------------------------------------------------------------------------
    def init_params(self, key: jax.Array) -> Any:
        return self.policy.init(key)

    def init(self, seed: int | None = None) -> TrainState:
        seed = self.config.seed if seed is None else seed
        init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
        params = self.init_params(init_key)
        return self.place(TrainState(params, self.optimizer.init(params), jnp.int32(0), run_key))

    def place(self, state: TrainState) -> TrainState:
        """Replicate a train state over the devices, as ``train_chunk`` returns it."""
        return self.chunks.place(state)

    # --- hooks that MAESN overrides ---------------------------------------------------------
    def sample_tasks(self, key: jax.Array, slots: jax.Array):
        """The training tasks of meta-batch ``slots`` and their indices (MAML: fresh draws, each
        from ``fold_in(key, slot)``; index 0)."""
        tasks = jax.vmap(lambda i: self.family.sample(jax.random.fold_in(key, i), "train"))(slots)
        return tasks, jnp.zeros(slots.shape, jnp.int32)

    def task_params(self, params, index: jax.Array):
        """The parameters the inner loop adapts for training task ``index`` (MAML: all of them)."""
        return params

    def log_prob(self, task_params, episodes: Episodes) -> jax.Array:
        return self.policy.log_prob(task_params, episodes)

    def begin_fn(self, task_params):
        """Per-episode context sampler for ``rollout_episodes`` (MAML: none)."""
        return no_context

    def act_fn(self, task_params):
        return self.policy.act_fn(task_params)

    def step_size(self, task_params):
        return self.config.inner_step_size

    def regularizer(self, params, indices: jax.Array) -> jax.Array:
        """Added to the outer loss (MAESN: the KL of the task latents to the prior)."""
        return jnp.float32(0.0)

    # --- the inner loop ---------------------------------------------------------------------
    def advantages(self, episodes: Episodes) -> jax.Array:
        c = self.config
        return pg.advantages(episodes, c.gamma, c.baseline, c.normalize_advantages)

    def rollout(self, task_params, key, task):
        task_params = jax.lax.stop_gradient(task_params)  # sampled episodes are data
        return rollout_episodes(
            self.family,
            self.act_fn(task_params),
            key,
            task,
            self.config.episodes_per_step,
            self.begin_fn(task_params),
        )

    def adapt(self, task_params, episodes: Episodes, ref_log_prob=None, first_order=None):
        """One inner VPG step on one task's episodes (differentiable in ``task_params``)."""
        c = self.config
        first_order = c.first_order if first_order is None else first_order
        return pg.inner_update(
            self.log_prob,
            task_params,
            episodes,
            self.advantages(episodes),
            self.step_size(task_params),
            first_order,
            ref_log_prob,
        )

    def collect(self, task_params, key, task):
        """Pre-update episodes of each inner step and the post-update episodes, for one task."""
        c = self.config
        keys = jax.random.split(key, c.inner_steps + 1)
        pre = []
        adapted = task_params
        for k in range(c.inner_steps):
            episodes = self.rollout(adapted, keys[k], task)
            pre.append(episodes)
            adapted = jax.lax.stop_gradient(self.adapt(adapted, episodes))
        post = self.rollout(adapted, keys[-1], task)
        return pre, post, adapted

    def adapted_params(self, task_params, pre: list[Episodes], ref_log_probs: list):
        for episodes, ref in zip(pre, ref_log_probs, strict=True):
            task_params = self.adapt(task_params, episodes, ref)
        return task_params

    def reference_log_probs(self, task_params, pre: list[Episodes], post: Episodes):
        """Log-probs of each batch under the policy that sampled it: ``task_params`` for the
        first pre-update batch, then the policy after each inner step (one task)."""
        refs = []
        for episodes in pre:
            refs.append(self.log_prob(task_params, episodes))
            task_params = self.adapt(task_params, episodes, refs[-1])
        return refs, self.log_prob(task_params, post)

    # --- the outer loop ---------------------------------------------------------------------
    def outer_loss(self, params, indices, pre, post, pre_ref, post_ref, post_adv):
        """Mean over tasks of the negated clipped surrogate of the post-update episodes."""
        c = self.config

        def task_loss(index, pre, post, pre_ref, post_ref, post_adv):
            adapted = self.adapted_params(self.task_params(params, index), pre, pre_ref)
            log_prob = self.log_prob(adapted, post)
            objective = ppo_clip_objective(log_prob - post_ref, post_adv, c.ppo_clip)
            return -pg.masked_mean(objective, post.mask)

        losses = jax.vmap(task_loss)(indices, pre, post, pre_ref, post_ref, post_adv)
        return jnp.mean(losses) + self.regularizer(params, indices)

    def meta_update(self, state: TrainState, slots: jax.Array, axis: str | None = None):
        """One meta-update on the meta-batch ``slots`` (this device's share when ``axis`` names
        the device axis, over which gradients and metrics are averaged)."""
        c = self.config
        key = jax.random.fold_in(state.key, state.update)
        key_tasks, key_collect = jax.random.split(key)
        tasks, indices = self.sample_tasks(key_tasks, slots)
        keys = jax.vmap(lambda i: jax.random.fold_in(key_collect, i))(slots)
        start = jax.vmap(self.task_params, in_axes=(None, 0))(state.params, indices)
        pre, post, _ = jax.vmap(self.collect)(start, keys, tasks)

        # Reference log-probs of the sampling policies, fixed for all PPO epochs.
        pre_ref, post_ref = jax.lax.stop_gradient(
            jax.vmap(self.reference_log_probs)(start, pre, post)
        )
        post_adv = jax.vmap(self.advantages)(post)

        def epoch(carry, _):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(self.outer_loss)(
                params, indices, pre, post, pre_ref, post_ref, post_adv
            )
            if axis is not None:
                loss, grads = jax.lax.pmean((loss, grads), axis)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), (
                loss,
                optax.tree.norm(grads),
            )

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

    def train_chunk(self, state: TrainState, num_updates: int):
        """``num_updates`` meta-updates inside one jit; returns per-update metrics (arrays)."""
        return self.chunks.run(self._local_updates, state, num_updates)

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
        return jax.tree.map(lambda a: a * scale, self.step_size(None))

    def test_params(self, params):
        """The parameters a meta-test trial starts from (MAESN: the policy with the prior)."""
        return params

    def agent(
        self,
        params,
        name: str | None = None,
        step_size: float | None = None,
        step_decay: float | None = None,
    ):
        """The meta-trained learner as a ``GradientAgent`` that adapts by the inner VPG step.

        The agent's state is ``(adapted params, steps taken)``; step ``k`` has size
        ``test_step_size(k)`` (``step_size`` / ``step_decay`` override the config's).
        """

        def adapt(key, state, episodes):
            task_params, step = state
            alpha = self.test_step_size(step, step_size, step_decay)
            adv = self.advantages(episodes)
            adapted = pg.inner_update(self.log_prob, task_params, episodes, adv, alpha, True)
            return adapted, step + 1

        def build(params):
            return GradientAgent(
                name=name or self.name,
                init=lambda key: (self.test_params(params), jnp.int32(0)),
                begin_episode=lambda key, state: self.begin_fn(state[0])(key),
                act=lambda key, state, context, obs: self.act_fn(state[0])(key, context, obs),
                adapt=adapt,
                episodes_per_adapt=self.config.episodes_per_step,
            )

        # The hooks read only the class, the family and the config; the seed merely chose the
        # initial parameters, so runs that differ in it share one compiled evaluation.
        key = (type(self), self.family, self.config.replace(seed=0), step_size, step_decay)
        return AgentKind(key, build).bind(params)
