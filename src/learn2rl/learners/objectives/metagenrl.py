"""MetaGenRL: a learned objective meta-trained through the critics of a population of agents.

Kirsch, van Steenkiste, Schmidhuber 2020, "Improving Generalization in Meta Reinforcement Learning
using Learned Objectives" (ICLR; arXiv 1910.04098); official code louiskirsch/metagenrl.

A population of ``num_agents`` off-policy agents (TD3 critics, deterministic policies; the meta-
training environments ``envs`` assigned round-robin) share one objective ``L_alpha``
(``nets/objective.py``). At every environment step every agent

1. steps its environment (uniform random actions for ``random_steps`` steps, then ``pi(s)`` plus
   Gaussian noise) and stores the transition in its own replay buffer;
2. trains its twin critics by TD3's clipped double-Q targets on ``batch_size`` sub-trajectories of
   ``sequence_length`` steps;
3. every ``policy_delay`` steps, trains its policy on ``p L_alpha - (1 - p) Q1(s, pi(s))`` with
   ``p = min(1, steps / anneal_steps)`` (the objective takes over from DDPG's) and moves its
   target networks;
4. every ``objective_delay`` steps, computes the meta-gradient of ``alpha``: one SGD step of size
   ``inner_step_size`` on ``L_alpha`` gives ``phi' = phi - beta grad_phi L_alpha`` (on the first
   half of a batch of ``2 x batch_size`` sub-trajectories), the meta-loss is
   ``-mean Q1(s, pi_phi'(s))`` over the whole batch with the critic frozen, and its gradient with
   respect to ``alpha`` (second order: through ``grad_phi L_alpha``) is clipped to global norm
   ``max_grad_norm`` per agent.
The per-agent gradients are averaged over the population and applied by Adam. The logged
``value_gain`` is ``mean Q1(s, pi_phi'(s)) - Q1(s, pi_phi(s))``: positive when the objective's
step improves the policy by the critic's measure.

Agents on environments with different observation or action sizes cannot share one ``vmap``, so
the population is **grouped**: one group per environment, each a ``vmap`` over its agents, all
groups inside the same jitted step (the objective itself is shape-free: it averages over action
dimensions). All agents step in lockstep, so the schedules (learning starts, policy and
objective delays) are decided once per step, outside the ``vmap``.

The meta-trained objective trains new agents with ``learners.offpolicy.td3`` and
``policy_objective="learned"``, ``objective=<this run's directory>`` (``load_objective``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import PartitionSpec

from learn2rl.errors import Learn2RLError
from learn2rl.learners.base import (
    ConfigMixin,
    ShardedChunks,
    check_choice,
    check_layer_sizes,
    check_non_negative,
    check_positive,
    check_positive_ints,
    check_seed,
    check_unit_interval,
)
from learn2rl.learners.objectives.losses import learned_loss
from learn2rl.learners.offpolicy import replay
from learn2rl.learners.offpolicy.core import (
    AgentCore,
    AgentSettings,
    AgentState,
    masked_mean,
    nanmean_or_zero,
)
from learn2rl.nets.objective import LearnedObjective
from learn2rl.tasks.adapters import make_env


@dataclass(frozen=True)
class Config(ConfigMixin):
    """MetaGenRL settings. Defaults: a CPU-scale population of 4 on Pendulum and point goals."""

    learner = "metagenrl"

    envs: tuple[str, ...] = ("Pendulum-v1", "control/point-goal")
    """Meta-training environments (``learn2rl.tasks.adapters.list_envs``, or ``gymnasium:<id>``
    stepped on the host), assigned to agents round-robin (the paper: LunarLanderContinuous and
    HalfCheetah)."""
    num_agents: int = 4
    """Population size (the paper: 20)."""
    num_updates: int = 40
    """Updates in a run (each ``steps_per_update`` environment steps of every agent)."""
    steps_per_update: int = 500
    """Environment steps of each agent per update."""
    updates_per_chunk: int = 5
    """Updates per jitted chunk."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layers of each policy and critic (the paper: 350, 350, 350)."""
    layer_norm: bool = True
    """LayerNorm after each hidden layer (as the official networks)."""
    policy_learning_rate: float = 1e-3
    """Adam step size of the policies (official 1e-3)."""
    critic_learning_rate: float = 1e-3
    """Adam step size of the critics (official 1e-3)."""
    batch_size: int = 16
    """Sub-trajectories per critic and policy step (official 100); the meta-gradient uses twice
    as many."""
    sequence_length: int = 20
    """Steps per sub-trajectory (official 20)."""
    gamma: float = 0.99
    """Discount."""
    tau: float = 0.005
    """Polyak step of the target networks."""
    policy_delay: int = 2
    """Critic steps per policy step (TD3's delay)."""
    target_noise: float = 0.2
    """Std of TD3's target-policy smoothing noise."""
    exploration_noise: float = 0.1
    """Std of the Gaussian exploration noise (normalised action units)."""
    random_steps: int = 1000
    """Initial steps with uniformly random actions (official 10k)."""
    update_after: int = 1000
    """Environment steps before the first gradient step."""
    buffer_size: int = 50_000
    """Replay capacity of each agent (official 1M)."""
    max_grad_norm: float = 1.0
    """Global-norm clip of the policy gradient and of each agent's meta-gradient."""
    objective_learning_rate: float = 1e-3
    """Adam step size of the objective (official 1e-3)."""
    inner_step_size: float = 1e-3
    """Step size ``beta`` of the policy step inside the meta-gradient (official 1e-3)."""
    inner_optimizer: Literal["sgd", "adam"] = "sgd"
    """The policy step inside the meta-gradient: plain SGD (official default) or an Adam step
    from the agent's own Adam moments (official ``obj_func_second_order_adam``; epsilon inside
    the square root, as there, so that its second derivative stays finite), which matches the
    scale-free update the policy actually takes."""
    inner_gradient: Literal["sum", "mean"] = "sum"
    """What the inner step differentiates: the *sum* of ``L_alpha`` over the batch's valid steps,
    as the official code does (``tf.gradients`` of the unreduced objective, so with 100 x 20 steps
    its step is 2,000 times the mean's), or their mean (the policy's own loss)."""
    objective_delay: int = 2
    """Environment steps per meta-gradient step (official 2)."""
    anneal_steps: int = 5000
    """Steps over which the policy's loss moves from DDPG's to the learned objective (official
    10k; 0: the objective from the start)."""
    policy_reset_steps: int = 0
    """Re-initialise each agent's policy (with its target and optimizer state; critics and
    buffer stay) every this many environment steps after ``update_after``, staggered over the
    population so that it always holds policies of every age (0: never). The official code's
    ``policy_reset_prob`` (off there by default) with a fixed period: the objective keeps
    being trained on what meta-testing asks of it, training a fresh policy, and a policy it has
    driven into saturation is replaced."""
    objective_units: int = 32
    """Width of the objective's MLPs."""
    objective_lstm_units: int = 32
    """Width of the objective's backward LSTM."""
    use_values: bool = True
    """Ablation: feed V(s_t) and (1 - d) V(s_t+1) to the objective."""
    use_time: bool = True
    """Ablation: feed t / T to the objective."""
    use_lstm: bool = True
    """Ablation: the backward LSTM (off: a per-step dense layer)."""
    eval_episodes: int = 2
    """Deterministic episodes per agent behind ``eval_return`` after every update."""
    seed: int = 0
    """Random seed; the same config and seed give the same numbers."""

    def __post_init__(self):
        check_positive_ints(
            self,
            "num_agents",
            "num_updates",
            "steps_per_update",
            "updates_per_chunk",
            "batch_size",
            "sequence_length",
            "policy_delay",
            "buffer_size",
            "objective_delay",
            "objective_units",
            "objective_lstm_units",
            "eval_episodes",
        )
        if not self.envs or not all(isinstance(e, str) and e for e in self.envs):
            raise Learn2RLError(
                f"config.envs must name at least one environment, got {self.envs!r}"
            )
        if self.num_agents < len(self.envs):
            raise Learn2RLError(
                f"config.num_agents ({self.num_agents}) must be at least the number of envs "
                f"({len(self.envs)}): every environment needs an agent"
            )
        check_layer_sizes(self)
        check_positive(
            self,
            "policy_learning_rate",
            "critic_learning_rate",
            "objective_learning_rate",
            "inner_step_size",
            "max_grad_norm",
        )
        check_unit_interval(self, "gamma", "tau")
        check_choice(self, "inner_optimizer", ("sgd", "adam"))
        check_choice(self, "inner_gradient", ("sum", "mean"))
        check_non_negative(
            self,
            "target_noise",
            "exploration_noise",
            "random_steps",
            "update_after",
            "anneal_steps",
            "policy_reset_steps",
        )
        if self.sequence_length < 2:
            raise Learn2RLError(
                f"config.sequence_length must be >= 2 (the objective reads sub-trajectories), "
                f"got {self.sequence_length}"
            )
        check_seed(self)

    def settings(self) -> AgentSettings:
        return AgentSettings.from_config(self, twin=True)

    def objective_net(self) -> LearnedObjective:
        return LearnedObjective(
            units=self.objective_units,
            lstm_units=self.objective_lstm_units,
            use_values=self.use_values,
            use_time=self.use_time,
            use_lstm=self.use_lstm,
        )


@struct.dataclass
class TrainState:
    groups: tuple  # one AgentState per environment, batched over that environment's agents
    objective: Any  # alpha: the learned objective's parameters
    objective_opt: Any
    steps: jax.Array  # int32: environment steps taken by every agent
    update: jax.Array
    key: jax.Array

    @property
    def params(self):
        """The learned objective's parameters (what meta-training produces)."""
        return self.objective


class LearnedObjectiveAgent(NamedTuple):
    """A meta-trained objective: ``net.apply(params, ...)`` is ``L_alpha``; train fresh agents
    with it through ``learners.offpolicy.td3`` (``policy_objective="learned"``)."""

    name: str
    net: LearnedObjective
    params: Any


def init_objective(net: LearnedObjective, key: jax.Array):
    """Fresh objective parameters (the shapes do not depend on the action size)."""
    b, t, a = 1, 2, 1
    zeros = jnp.zeros((b, t))
    return jax.jit(net.init)(
        key,
        jnp.zeros((b, t, a)),
        jnp.zeros((b, t, a)),
        zeros,
        zeros,
        jnp.zeros((b, t + 1)),
        jnp.ones((b, t)),
    )


def adam_state(opt_state) -> optax.ScaleByAdamState:
    """The Adam moments inside an optax optimizer state (e.g. ``chain(clip, adam)``'s)."""
    found = [
        leaf
        for leaf in jax.tree_util.tree_leaves(
            opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState)
        )
        if isinstance(leaf, optax.ScaleByAdamState)
    ]
    if len(found) != 1:
        raise Learn2RLError("the policy's optimizer state holds no single Adam state")
    return found[0]


class MetaGenRL:
    """A population of off-policy agents meta-training one learned objective."""

    progress_metric = "eval_return"

    def __init__(self, config: Config, devices: list | None = None):
        self.config = config
        self.envs = [make_env(name) for name in config.envs]
        self.cores = [AgentCore(env, config.settings()) for env in self.envs]
        # round-robin: agent i trains on envs[i % len(envs)]
        self.group_sizes = [
            len(range(g, config.num_agents, len(self.envs))) for g in range(len(self.envs))
        ]
        self.net = config.objective_net()
        self.objective_tx = optax.adam(config.objective_learning_rate)
        # The population is the learner's batch: each device trains an equal share of every
        # environment's agents (so the device count divides every group size).
        self.chunks = ShardedChunks(
            math.gcd(*self.group_sizes),
            "agents",
            devices,
            what="the agents of each environment",
            state_spec=self._state_spec,
        )
        self.devices = self.chunks.devices
        self._sharded = False  # True while a sharded chunk is traced

    def _state_spec(self, state: TrainState) -> TrainState:
        """Agents split over the devices (leading axis of every group), the rest replicated."""
        replicated = jax.tree.map(lambda _: PartitionSpec(), state)
        return replicated.replace(
            groups=jax.tree.map(lambda _: PartitionSpec("agents"), state.groups)
        )

    def _local(self, x: jax.Array) -> jax.Array:
        """This device's share of a group-sized leading axis (all of it outside a sharded
        chunk)."""
        if not self._sharded:
            return x
        n = x.shape[0] // len(self.devices)
        return jax.lax.dynamic_slice_in_dim(x, jax.lax.axis_index("agents") * n, n)

    def _total(self, tree: Any) -> Any:
        """Sums over the devices of a sharded chunk (unchanged outside one)."""
        return jax.lax.psum(tree, "agents") if self._sharded else tree

    @staticmethod
    def _sum(values: list) -> Any:
        """This device's sum of per-agent ``values`` (arrays or pytrees with a leading agent
        axis, one entry per group)."""
        return jax.tree.map(lambda *v: jnp.concatenate(v).sum(axis=0), *values)

    @property
    def steps_per_update(self) -> int:
        """Environment steps of the whole population per update."""
        return self.config.num_agents * self.config.steps_per_update

    # --- state ---------------------------------------------------------------------------------
    def init(self, seed: int | None = None) -> TrainState:
        seed = self.config.seed if seed is None else seed
        k_obj, k_agents, run_key = jax.random.split(jax.random.PRNGKey(seed), 3)
        groups = tuple(
            jax.jit(jax.vmap(core.init))(jax.random.split(jax.random.fold_in(k_agents, g), size))
            for g, (core, size) in enumerate(zip(self.cores, self.group_sizes, strict=True))
        )
        alpha = init_objective(self.net, k_obj)
        state = TrainState(
            groups, alpha, self.objective_tx.init(alpha), jnp.int32(0), jnp.int32(0), run_key
        )
        return self.place(state)

    def place(self, state: TrainState) -> TrainState:
        return self.chunks.place(state)

    def place_members(self, states: TrainState) -> TrainState:
        return self.chunks.place(states, members=True)

    # --- the pieces of one step, for one agent --------------------------------------------------
    def policy_loss(self, core: AgentCore, alpha, agent: AgentState, policy, batch, mask, progress):
        """``p L_alpha - (1 - p) Q1(s, pi(s))`` for one agent (``p = progress``)."""
        learned = learned_loss(self.net, alpha, core, policy, agent.critics, batch, mask)
        ddpg = core.ddpg_loss(policy, agent.critics, batch, mask)
        return progress * learned + (1.0 - progress) * ddpg

    def inner_step(self, agent: AgentState, grads):
        """The policy step ``phi - phi'`` inside the meta-gradient (differentiable in grads)."""
        c = self.config
        if c.inner_optimizer == "sgd":
            return jax.tree_util.tree_map(lambda g: c.inner_step_size * g, grads)
        adam = adam_state(agent.policy_opt)
        b1, b2, eps = 0.9, 0.999, 1e-8  # optax.adam's defaults, which the policy uses
        t = adam.count.astype(jnp.float32) + 1.0
        scale = c.inner_step_size * jnp.sqrt(1.0 - b2**t) / (1.0 - b1**t)

        def step(g, m, v):
            m = b1 * m + (1.0 - b1) * g
            v = b2 * v + (1.0 - b2) * jnp.square(g)
            return scale * m / jnp.sqrt(v + eps)

        return jax.tree_util.tree_map(step, grads, adam.mu, adam.nu)

    def meta_gradient(self, core: AgentCore, alpha, agent: AgentState, batch, mask):
        """One agent's clipped meta-gradient of ``alpha`` and its policy-value gain.

        ``batch`` holds ``2 x batch_size`` sub-trajectories: the inner step (``inner_gradient``,
        ``inner_optimizer``) uses the first half, the meta-loss ``-mean Q1(s, pi_phi'(s))`` all
        of them. The critics are constants here (only ``alpha`` is differentiated)."""
        c = self.config
        half = c.batch_size
        inner = jax.tree_util.tree_map(lambda x: x[:half], batch)
        critics = jax.lax.stop_gradient(agent.critics)

        def meta_loss(alpha):
            grads = jax.grad(
                lambda phi: learned_loss(self.net, alpha, core, phi, critics, inner, mask[:half])
            )(agent.policy)
            if c.inner_gradient == "sum":  # the mean's gradient times the number of valid steps
                grads = jax.tree_util.tree_map(lambda g: g * jnp.sum(mask[:half]), grads)
            updated = jax.tree_util.tree_map(
                lambda p, d: p - d, agent.policy, self.inner_step(agent, grads)
            )
            q = core.q1(critics, batch.obs, core.act(updated, batch.obs))
            return -masked_mean(q, mask), q

        (_, q_new), grads = jax.value_and_grad(meta_loss, has_aux=True)(alpha)
        grads, _ = optax.clip_by_global_norm(c.max_grad_norm).update(grads, None)
        q_old = core.q1(critics, batch.obs, core.act(agent.policy, batch.obs))
        return grads, masked_mean(q_new - q_old, mask)

    # --- one environment step of the whole population --------------------------------------------
    def step(self, state: TrainState, key: jax.Array):
        c = self.config
        keys = jax.random.split(key, len(self.cores))
        groups, learn_keys = [], []
        for g, (core, size) in enumerate(zip(self.cores, self.group_sizes, strict=True)):
            k_collect, k_learn = jax.random.split(keys[g])
            k_agents = self._local(jax.random.split(k_collect, size))
            agents, _ = jax.vmap(core.collect)(state.groups[g], k_agents)
            groups.append(agents)
            learn_keys.append(self._local(jax.random.split(k_learn, size)))
        if c.policy_reset_steps:
            groups = self._reset_policies(groups, state.steps, keys)
        state = state.replace(groups=tuple(groups), steps=state.steps + 1)
        nan = {k: jnp.float32(jnp.nan) for k in ("critic_loss", "policy_loss", "value_gain")}

        def learn(state):
            return self._learn(state, learn_keys)

        return jax.lax.cond(state.steps >= c.update_after, learn, lambda s: (s, nan), state)

    def _reset_policies(self, groups: list, steps: jax.Array, keys: jax.Array) -> list:
        """``policy_reset_steps``: agent ``i`` gets a fresh policy whenever
        ``steps - update_after + i * period // num_agents`` is a positive multiple of the
        period."""
        c = self.config
        period, out = c.policy_reset_steps, []
        for g, (core, agents) in enumerate(zip(self.cores, groups, strict=True)):
            ids = jnp.arange(g, c.num_agents, len(self.cores))  # this group's agent indices
            k_reset = jax.random.split(jax.random.fold_in(keys[g], 1), len(ids))
            ids, k_reset = self._local(ids), self._local(k_reset)
            since = steps - c.update_after + ids * period // c.num_agents
            due = (since > 0) & (since % period == 0)

            def reset(agents, core=core, due=due, k_reset=k_reset):
                fresh = jax.vmap(core.reset_policy)(agents, k_reset)
                pick = lambda new, old: jnp.where(  # noqa: E731
                    due.reshape(due.shape + (1,) * (new.ndim - 1)), new, old
                )
                return jax.tree_util.tree_map(pick, fresh, agents)

            out.append(jax.lax.cond(due.any(), reset, lambda a: a, agents))
        return out

    def _learn(self, state: TrainState, learn_keys):
        c = self.config
        progress = (
            jnp.minimum(1.0, (state.steps - c.update_after) / c.anneal_steps)
            if c.anneal_steps
            else jnp.float32(1.0)
        )
        do_policy = state.steps % c.policy_delay == 0
        do_meta = state.steps % c.objective_delay == 0
        alpha = state.objective
        groups, critic_losses, policy_losses, meta_grads, gains = [], [], [], [], []
        for core, agents, keys in zip(self.cores, state.groups, learn_keys, strict=True):

            def one(agent: AgentState, key, core=core):
                k_sample, k_noise = jax.random.split(key)
                batch, mask = replay.sample_sequences(
                    agent.buffer, k_sample, 2 * c.batch_size, c.sequence_length
                )
                first = jax.tree_util.tree_map(lambda x: x[: c.batch_size], batch)
                first_mask = mask[: c.batch_size]
                agent, critic_loss = core.critic_step(agent, first, first_mask, k_noise)

                def policy(agent):
                    return core.policy_step(
                        agent,
                        lambda p: self.policy_loss(
                            core, alpha, agent, p, first, first_mask, progress
                        ),
                    )

                agent, policy_loss = jax.lax.cond(
                    do_policy, policy, lambda a: (a, jnp.float32(jnp.nan)), agent
                )

                def meta(agent):
                    return self.meta_gradient(core, alpha, agent, batch, mask)

                zeros = jax.tree_util.tree_map(jnp.zeros_like, alpha)
                grads, gain = jax.lax.cond(
                    do_meta, meta, lambda a: (zeros, jnp.float32(jnp.nan)), agent
                )
                return agent, critic_loss, policy_loss, grads, gain

            agents, critic_loss, policy_loss, grads, gain = jax.vmap(one)(agents, keys)
            groups.append(agents)
            critic_losses.append(critic_loss)
            policy_losses.append(policy_loss)
            meta_grads.append(grads)
            gains.append(gain)

        def apply(state):
            # the population mean of the per-agent meta-gradients: the one exchange between
            # devices in a step, and only in steps that update the objective
            mean_grad = jax.tree.map(lambda g: g / c.num_agents, self._total(self._sum(meta_grads)))
            updates, opt = self.objective_tx.update(mean_grad, state.objective_opt, alpha)
            return state.replace(objective=optax.apply_updates(alpha, updates), objective_opt=opt)

        state = state.replace(groups=tuple(groups))
        state = jax.lax.cond(do_meta, apply, lambda s: s, state)
        # this device's sums: _update reduces them over steps, then over devices, once
        metrics = {
            "critic_loss": self._sum(critic_losses),
            "policy_loss": self._sum(policy_losses),
            "value_gain": self._sum(gains),
        }
        return state, metrics

    def _update(self, state: TrainState, _):
        c = self.config
        key = jax.random.fold_in(state.key, state.update)
        k_steps, k_eval = jax.random.split(key)
        state, metrics = jax.lax.scan(
            self.step, state, jax.random.split(k_steps, c.steps_per_update)
        )
        # per-step sums over this device's agents (NaN in steps without that update, the same
        # steps on every device), averaged over steps; below, summed over devices
        sums = {name: nanmean_or_zero(values) for name, values in metrics.items()}
        returns = []
        for g, (core, agents) in enumerate(zip(self.cores, state.groups, strict=True)):
            keys = jax.random.split(jax.random.fold_in(k_eval, g), c.eval_episodes)
            per_agent = jax.vmap(
                lambda policy, core=core, keys=keys: jax.vmap(
                    core.episode_return, in_axes=(None, 0)
                )(policy, keys).mean()
            )(agents.policy)
            sums[f"eval_return/{self.envs[g].name}"] = per_agent.sum()
            returns.append(per_agent)
        sums["eval_return"] = self._sum(returns)
        sums["episodes"] = sum(agents.episodes.sum() for agents in state.groups)
        totals = self._total(sums)
        out = {name: total / c.num_agents for name, total in totals.items()}
        for g, size in enumerate(self.group_sizes):
            name = f"eval_return/{self.envs[g].name}"
            out[name] = totals[name] / size
        out["episodes"] = totals["episodes"]
        return state.replace(update=state.update + 1), out

    def _updates(self, state: TrainState, _local_indices, num_updates: int):
        self._sharded = True
        try:
            return jax.lax.scan(self._update, state, None, num_updates)
        finally:
            self._sharded = False

    def train_chunk(self, state: TrainState, num_updates: int):
        return self.chunks.run(self._updates, state, num_updates)

    def train_members(self, states: TrainState, num_updates: int):
        """Several train states (a leading member axis, e.g. seeds) at once, each split over
        the devices as ``train_chunk`` splits one."""
        return self.chunks.run(self._updates, states, num_updates, members=True)

    def agent(self, params, name: str = "metagenrl") -> LearnedObjectiveAgent:
        """The meta-trained objective, to train fresh agents with (``td3`` with
        ``policy_objective="learned"``)."""
        return LearnedObjectiveAgent(name, self.net, params)


def load_objective(spec: str) -> tuple[LearnedObjective, Any]:
    """``(net, alpha)`` from ``spec``: ``random:<seed>`` (a randomly initialised objective of
    the default architecture) or a MetaGenRL run or checkpoint directory (its newest
    checkpoint's objective, with the run's architecture)."""
    from learn2rl import checkpoint

    if spec.startswith("random:"):
        seed = spec.partition(":")[2]
        if not seed.isdigit():
            raise Learn2RLError(f"objective {spec!r}: expected random:<non-negative integer>")
        net = Config().objective_net()
        return net, init_objective(net, jax.random.PRNGKey(int(seed)))
    path = Path(spec)
    directory = path / "checkpoint" if (path / "checkpoint").is_dir() else path
    if not checkpoint.exists(directory):
        raise Learn2RLError(f"objective {spec!r}: no MetaGenRL checkpoint in {directory}")
    meta = checkpoint.load_meta(directory)
    if meta.get("learner") != "metagenrl":
        raise Learn2RLError(
            f"objective {spec!r}: the checkpoint is of learner {meta.get('learner')!r}, not "
            "metagenrl"
        )
    learner = MetaGenRL(Config.from_dict(meta["config"]))
    state = checkpoint.load_state(directory, learner.init())
    return learner.net, jax.tree_util.tree_map(jnp.asarray, state.objective)
