"""TD3 and DDPG on one continuous-control environment, and fresh agents trained by a learned
objective (MetaGenRL's meta-test).

One learner class serves three uses, chosen by the config:

- ``algorithm="td3"`` (Fujimoto et al. 2018): twin critics, target-policy noise 0.2 clipped at 0.5,
  the policy and targets updated every 2 critic updates, tau 0.005;
- ``algorithm="ddpg"`` (Lillicrap et al. 2016, as in Fujimoto et al.'s "our DDPG"): one critic,
  no target noise, policy updated with every critic update;
- ``policy_objective``: what the policy descends. ``"ddpg"`` is ``-Q1(s, pi(s))`` (the two above);
  ``"learned"`` is a frozen MetaGenRL objective ``L_alpha`` read from ``objective`` (a MetaGenRL
  run directory, or ``random:<seed>`` for a randomly initialised objective, the paper's control);
  ``"reinforce"`` is off-policy REINFORCE with GAE (the paper's hand-designed baseline). The
  critics always learn by TD3's targets, as in the paper's meta-test.

One *update* (the runner's unit) is ``steps_per_update`` environment steps, each followed by one
critic step (once ``steps >= update_after``) and, every ``policy_delay`` steps, one policy step.
Batches are ``batch_size`` sub-trajectories of ``sequence_length`` steps (``sequence_length=1``:
single transitions, the usual TD3 batch; a learned objective needs whole sub-trajectories). The
metrics of an update are the mean losses, the return of the last finished training episode and
``eval_return``, the mean return of ``eval_episodes`` deterministic episodes after the update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import jax
import jax.numpy as jnp
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.learners.base import (
    ConfigMixin,
    SeedsOverDevices,
    check_choice,
    check_layer_sizes,
    check_non_negative,
    check_positive,
    check_positive_ints,
    check_seed,
    check_unit_interval,
    scanned_chunk,
)
from learn2rl.learners.offpolicy import replay
from learn2rl.learners.offpolicy.core import (
    AgentCore,
    AgentSettings,
    AgentState,
    nanmean_or_zero,
)
from learn2rl.tasks.adapters import make_env
from learn2rl.types import Agent, AgentKind


@dataclass(frozen=True)
class Config(ConfigMixin):
    """TD3 / DDPG settings. Defaults: TD3 on gymnax Pendulum-v1 for 20k steps."""

    learner = "td3"

    env: str = "Pendulum-v1"
    """Environment (``learn2rl.tasks.adapters.list_envs``): a continuous gymnax environment, a
    learn2rl control family with one fixed task, or ``gymnasium:<id>`` (stepped on the host)."""
    algorithm: Literal["td3", "ddpg"] = "td3"
    """TD3 (twin critics, target noise, delayed policy) or DDPG."""
    policy_objective: Literal["ddpg", "learned", "reinforce"] = "ddpg"
    """What the policy minimises: ``-Q1(s, pi(s))``, a frozen learned objective, or off-policy
    REINFORCE with GAE."""
    objective: str | None = None
    """With ``policy_objective="learned"``: a MetaGenRL run directory (its checkpoint's objective
    is restored and frozen) or ``random:<seed>`` (a randomly initialised objective)."""
    num_updates: int = 20
    """Updates in a run (each ``steps_per_update`` environment steps)."""
    steps_per_update: int = 1000
    """Environment steps (and as many critic steps) per update."""
    updates_per_chunk: int = 5
    """Updates per jitted chunk."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layers of the policy and of each critic (Fujimoto et al.: 256, 256)."""
    layer_norm: bool = False
    """LayerNorm after each hidden layer (MetaGenRL's official networks use it)."""
    policy_learning_rate: float = 3e-4
    """Adam step size of the policy."""
    critic_learning_rate: float = 3e-4
    """Adam step size of the critics."""
    batch_size: int = 256
    """Sub-trajectories per gradient step."""
    sequence_length: int = 1
    """Steps per sub-trajectory (1: single transitions)."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.97
    """GAE lambda of the REINFORCE objective (official MetaGenRL 0.97)."""
    tau: float = 0.005
    """Polyak step of the target networks."""
    policy_delay: int | None = None
    """Critic steps per policy step (None: 2 for TD3, 1 for DDPG)."""
    target_noise: float | None = None
    """Std of the target-policy smoothing noise (None: 0.2 for TD3, 0 for DDPG)."""
    target_noise_clip: float = 0.5
    """Clip of the target-policy noise."""
    exploration_noise: float = 0.1
    """Std of the Gaussian exploration noise, in units of half the action range."""
    random_steps: int = 1000
    """Initial steps with uniformly random actions (Fujimoto et al.: 10k on MuJoCo)."""
    update_after: int | None = None
    """Environment steps before the first gradient step (None: ``random_steps``)."""
    buffer_size: int = 100_000
    """Replay capacity in transitions."""
    max_grad_norm: float | None = None
    """Global gradient-norm clip of the policy's gradient (MetaGenRL: 1.0); None: no clip."""
    eval_episodes: int = 5
    """Deterministic episodes behind ``eval_return`` after every update."""
    seed: int = 0
    """Random seed; the same config and seed give the same numbers."""

    def __post_init__(self):
        check_positive_ints(
            self,
            "num_updates",
            "steps_per_update",
            "updates_per_chunk",
            "batch_size",
            "sequence_length",
            "buffer_size",
            "eval_episodes",
        )
        check_layer_sizes(self)
        check_positive(self, "policy_learning_rate", "critic_learning_rate", "tau")
        check_positive(self, "max_grad_norm", optional=True)
        check_unit_interval(self, "gamma", "gae_lambda", "tau")
        check_non_negative(self, "target_noise_clip", "exploration_noise", "random_steps")
        check_choice(self, "algorithm", ("td3", "ddpg"))
        check_choice(self, "policy_objective", ("ddpg", "learned", "reinforce"))
        if self.policy_delay is not None:
            check_positive_ints(self, "policy_delay")
        if self.target_noise is not None:
            check_non_negative(self, "target_noise")
        if self.update_after is not None:
            check_non_negative(self, "update_after")
        if self.policy_objective == "learned" and not self.objective:
            raise Learn2RLError(
                "config.objective must name a MetaGenRL run directory or random:<seed> when "
                "policy_objective is 'learned'"
            )
        if self.policy_objective != "ddpg" and self.sequence_length < 2:
            raise Learn2RLError(
                f"config.sequence_length must be >= 2 for policy_objective "
                f"{self.policy_objective!r} (it reads sub-trajectories), got {self.sequence_length}"
            )
        if self.sequence_length > self.buffer_size:
            raise Learn2RLError("config.sequence_length must not exceed config.buffer_size")
        check_seed(self)

    @property
    def twin(self) -> bool:
        return self.algorithm == "td3"

    def settings(self) -> AgentSettings:
        """The agent's hyperparameters with the algorithm's defaults filled in."""
        noise = self.target_noise
        return AgentSettings.from_config(
            self, target_noise=(0.2 if self.twin else 0.0) if noise is None else noise
        )


@dataclass(frozen=True)
class DDPGConfig(Config):
    """DDPG settings: TD3's with ``algorithm="ddpg"``."""

    learner = "ddpg"
    algorithm: Literal["td3", "ddpg"] = "ddpg"


@struct.dataclass
class TrainState:
    agent: AgentState
    objective: Any  # frozen learned-objective parameters (None unless policy_objective="learned")
    update: jax.Array
    key: jax.Array

    @property
    def params(self):
        """The policy's parameters (what ``agent`` and evaluation take)."""
        return self.agent.policy


class OffPolicy(SeedsOverDevices):
    """TD3 or DDPG (or a policy trained by a frozen objective) on one environment."""

    progress_metric = "eval_return"

    def __init__(self, config: Config, devices: list | None = None):
        self.config = config
        self.env = make_env(config.env)
        self.core = AgentCore(self.env, config.settings())
        self.devices = list(devices or jax.local_devices())[:1]
        self.policy_delay = config.policy_delay or (2 if config.twin else 1)
        self.update_after = (
            config.random_steps if config.update_after is None else config.update_after
        )
        self.objective_net = None
        if config.policy_objective == "learned":
            from learn2rl.learners.objectives import metagenrl

            self.objective_net, self._objective = metagenrl.load_objective(config.objective)
        self._chunks: dict[int, Any] = {}

    @property
    def steps_per_update(self) -> int:
        return self.config.steps_per_update

    def init(self, seed: int | None = None) -> TrainState:
        seed = self.config.seed if seed is None else seed
        init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
        objective = self._objective if self.objective_net is not None else None
        agent = jax.jit(self.core.init)(init_key)  # one compiled call instead of many small ones
        return self.place(TrainState(agent, objective, jnp.int32(0), run_key))

    def place(self, state: TrainState) -> TrainState:
        return jax.device_put(state, self.devices[0])

    # --- one environment step and its gradient steps -------------------------------------------
    def policy_loss(self, state: TrainState, policy, batch, mask) -> jax.Array:
        c, core, agent = self.config, self.core, state.agent
        if c.policy_objective == "learned":
            from learn2rl.learners.objectives.losses import learned_loss

            alpha = jax.lax.stop_gradient(state.objective)
            return learned_loss(self.objective_net, alpha, core, policy, agent.critics, batch, mask)
        if c.policy_objective == "reinforce":
            from learn2rl.learners.objectives.losses import reinforce_loss

            return reinforce_loss(core, policy, agent.critics, batch, mask, c.gamma, c.gae_lambda)
        return core.ddpg_loss(policy, agent.critics, batch, mask)

    def sample(self, buffer, key):
        c = self.config
        if c.sequence_length == 1:
            batch = replay.sample(buffer, key, c.batch_size)
            return jax.tree_util.tree_map(lambda x: x[:, None], batch), jnp.ones(
                (c.batch_size, 1), jnp.float32
            )
        return replay.sample_sequences(buffer, key, c.batch_size, c.sequence_length)

    def step(self, state: TrainState, key: jax.Array):
        """One environment step, then (once learning has started) one critic step and, every
        ``policy_delay`` steps, one policy step. Returns the state and (critic, policy) losses."""
        k_collect, k_sample, k_noise = jax.random.split(key, 3)
        agent, _ = self.core.collect(state.agent, k_collect)
        state = state.replace(agent=agent)

        def learn(state):
            batch, mask = self.sample(state.agent.buffer, k_sample)
            agent, critic_loss = self.core.critic_step(state.agent, batch, mask, k_noise)
            state = state.replace(agent=agent)

            def policy(state):
                agent, loss = self.core.policy_step(
                    state.agent, lambda p: self.policy_loss(state, p, batch, mask)
                )
                return state.replace(agent=agent), loss

            state, policy_loss = jax.lax.cond(
                agent.steps % self.policy_delay == 0,
                policy,
                lambda s: (s, jnp.float32(jnp.nan)),
                state,
            )
            return state, (critic_loss, policy_loss)

        nan = jnp.float32(jnp.nan)
        return jax.lax.cond(
            state.agent.steps >= self.update_after, learn, lambda s: (s, (nan, nan)), state
        )

    def _update(self, state: TrainState, _):
        c = self.config
        key = jax.random.fold_in(state.key, state.update)
        k_steps, k_eval = jax.random.split(key)
        state, (critic, policy) = jax.lax.scan(
            self.step, state, jax.random.split(k_steps, c.steps_per_update)
        )
        returns = jax.vmap(self.core.episode_return, in_axes=(None, 0))(
            state.agent.policy, jax.random.split(k_eval, c.eval_episodes)
        )
        metrics = {
            "eval_return": jnp.mean(returns),
            "episode_return": state.agent.last_return,
            "critic_loss": nanmean_or_zero(critic),
            "policy_loss": nanmean_or_zero(policy),
            "episodes": state.agent.episodes,
        }
        return state.replace(update=state.update + 1), metrics

    def train_chunk(self, state: TrainState, num_updates: int):
        return scanned_chunk(self._chunks, self._update, state, num_updates)

    # --- evaluation ----------------------------------------------------------------------------
    def episode_returns(self, params, num_episodes: int, key: jax.Array) -> jax.Array:
        """Returns of ``num_episodes`` deterministic episodes of the policy ``params``."""
        fn = jax.jit(jax.vmap(self.core.episode_return, in_axes=(None, 0)))
        return fn(params, jax.random.split(key, num_episodes))

    def agent(self, params, name: str | None = None) -> Agent:
        """The deterministic policy as an ``Agent`` (actions in the environment's own units), for
        families whose observations are this environment's (e.g. the family behind a
        ``FamilyEnv``)."""
        core, env = self.core, self.env

        def build(p):
            def act(key, agent_state, obs):
                return env.scale_action(core.act(p, obs.obs)), agent_state

            return Agent(name or self.config.algorithm, lambda key, task: (), act)

        kind_key = (
            "offpolicy",
            self.config.env,
            tuple(self.config.hidden_sizes),
            self.config.layer_norm,
        )
        return AgentKind(kind_key, build).bind(params)
