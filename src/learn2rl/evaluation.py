"""One meta-test protocol for every adaptive agent, learned or classical.

``evaluate`` runs an ``Agent`` for one trial on each of the given held-out tasks (optionally several
times with different random seeds), all inside ``jax.jit`` with the tasks vmapped, and returns
per-step
rewards and pseudo-regrets. Pseudo-regret at a step is ``best_expected_reward -
expected_reward(action)``
under the true task (Lai & Robbins; the quantity Wang et al. 2016 plot), which has far less variance
than realized-reward regret. Summaries give the mean over tasks and seeds with a
normal-approximation
95% confidence interval (1.96 standard errors).

Compilation. The jitted batch is keyed by the trial (task families compare by value) and by the
agent's ``AgentKind`` where it has one; the agent's parameters are a traced argument, so
evaluating many checkpoints of one learner compiles once per batch shape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from learn2rl.errors import Learn2RLError
from learn2rl.rollout import rollout_episodes
from learn2rl.tasks.base import TaskFamily
from learn2rl.trial import Trial
from learn2rl.types import Agent, AgentKind, GradientAgent

# Tasks per compiled evaluation call: as many as fit this many environment steps, at most
# MAX_EVAL_BATCH. MAML's point-navigation trial (400 episodes of 100 steps, 200 tasks) peaked at
# 4.8 GB in one call and 1.4 GB in chunks of 25 tasks, no slower, with the returns equal to 7
# significant digits (a different batch shape can round differently in the last float bits).
EVAL_STEP_BUDGET = 1 << 20
MAX_EVAL_BATCH = 4096


@dataclass(frozen=True)
class EvalResult:
    """Per-trial results of one agent: arrays of shape [num_seeds * num_tasks, max_steps]."""

    agent: str
    task: str
    rewards: np.ndarray
    regrets: np.ndarray  # NaN where the family defines no expected reward
    valid: np.ndarray  # False for steps after the trial ended
    actions: np.ndarray
    num_tasks: int
    num_seeds: int
    episodes: np.ndarray | None = None  # index of the episode each step belongs to (0, 1, ...)
    observations: np.ndarray | None = None  # env observation seen at each step (record_obs=True)

    @property
    def total_rewards(self) -> np.ndarray:
        return (self.rewards * self.valid).sum(axis=1)

    @property
    def total_regrets(self) -> np.ndarray:
        return (self.regrets * self.valid).sum(axis=1)

    def summary(self) -> dict[str, Any]:
        """One row of the result table (the fields of results.json)."""
        totals, regrets = self.total_rewards, self.total_regrets
        return {
            "agent": self.agent,
            "task": self.task,
            "mean_total_reward": float(totals.mean()),
            "ci95": ci95(totals),
            "mean_regret": float(regrets.mean()),
            "regret_ci95": ci95(regrets),
            "num_tasks": self.num_tasks,
            "num_seeds": self.num_seeds,
        }

    def regret_curve(self) -> np.ndarray:
        """Mean cumulative pseudo-regret after each step of the trial."""
        return np.cumsum((self.regrets * self.valid).mean(axis=0))


def ci95(samples: np.ndarray) -> float:
    """Half-width of the normal-approximation 95% confidence interval of the mean."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.size < 2:
        return float("nan")
    return float(1.96 * samples.std(ddof=1) / math.sqrt(samples.size))


def run_trial(agent: Agent, trial: Trial, key: jax.Array, params: Any, record_obs: bool = False):
    """One trial of ``agent`` on one task.

    Returns per-step ``(reward, regret, valid, action, episode, env_obs)``; ``env_obs`` is the
    environment observation the agent saw at that step when ``record_obs``, else ``None``.
    """
    family = trial.family
    key_reset, key_agent, key_steps = jax.random.split(key, 3)
    obs, state = trial.reset(key_reset, params)
    agent_state = agent.init(key_agent, params if agent.privileged else None)

    def step(carry, step_key):
        obs, state, agent_state = carry
        key_act, key_env = jax.random.split(step_key)
        valid = jnp.logical_not(state.trial_done)
        action, agent_state = agent.act(key_act, agent_state, obs)
        if family.has_expected_reward:
            regret = family.best_expected_reward(params, state.env_state) - family.expected_reward(
                params, state.env_state, action
            )
        else:
            regret = jnp.float32(jnp.nan)
        seen = obs.obs if record_obs else None
        episode = state.episode
        obs, state, reward, _, _ = trial.step(key_env, state, action, params)
        return (obs, state, agent_state), (reward, regret, valid, action, episode, seen)

    keys = jax.random.split(key_steps, trial.max_steps)
    _, outputs = jax.lax.scan(step, (obs, state, agent_state), keys)
    return outputs


def run_gradient_trial(
    agent: GradientAgent, trial: Trial, key: jax.Array, params: Any, record_obs: bool = False
):
    """One trial of a ``GradientAgent``: batches of parallel episodes, an adaptation step between.

    Returns the same per-step arrays as ``run_trial``, laid out episode after episode with
    ``episode_length`` slots each; slots after an episode terminated early are not valid.
    """
    family = trial.family
    per_batch = agent.episodes_per_adapt
    num_batches = trial.num_episodes // per_batch
    key_init, key_batches = jax.random.split(key)
    state = agent.init(key_init)

    def one_batch(state, batch_key):
        key_roll, key_adapt = jax.random.split(batch_key)
        episodes = rollout_episodes(
            family,
            lambda k, context, obs: agent.act(k, state, context, obs),
            key_roll,
            params,
            per_batch,
            begin=lambda k: agent.begin_episode(k, state),
        )
        return agent.adapt(key_adapt, state, episodes), episodes

    keys = jax.random.split(key_batches, num_batches)
    # The state after the last batch is never used; computing it keeps the scan uniform.
    _, episodes = jax.lax.scan(one_batch, state, keys)
    steps = trial.max_steps

    def flat(x):  # [batch, episode, step, ...] -> [trial step, ...]
        return x.reshape((steps,) + x.shape[3:])

    valid = flat(episodes.mask) > 0
    episode_index = jnp.repeat(
        jnp.arange(trial.num_episodes, dtype=jnp.int32), family.episode_length
    )
    regret = jnp.full((steps,), jnp.nan, jnp.float32)
    seen = flat(episodes.obs) if record_obs else None
    return flat(episodes.reward), regret, valid, flat(episodes.action), episode_index, seen


@partial(jax.jit, static_argnums=(0, 1, 5))
def _run_batch(
    agent, trial: Trial, agent_params: Any, keys: jax.Array, params: Any, record_obs: bool
):
    # ``agent`` is an AgentKind (learned agents, rebuilt here around the traced ``agent_params``,
    # so the cache entry serves every parameter set of that kind) or a parameter-free agent.
    if isinstance(agent, AgentKind):
        agent = agent(agent_params)
    run = run_gradient_trial if isinstance(agent, GradientAgent) else run_trial
    return jax.vmap(partial(run, agent, trial, record_obs=record_obs))(keys, params)


def _static_part(agent: Agent | GradientAgent) -> tuple[Any, Any]:
    """What ``_run_batch`` is compiled for, and the agent parameters it takes as an argument."""
    if agent.kind is not None:
        return agent.kind, agent.params
    if agent.params is not None:
        raise Learn2RLError(
            f"agent {agent.name!r} carries params but no kind to rebuild it from them; "
            "build it with AgentKind(key, build).bind(params)"
        )
    # The name is only a label for the result; leaving it out lets renamed copies of one agent
    # share the compiled function.
    return agent._replace(name=""), None


def _device_of(tasks: Any, keys: jax.Array) -> Any:
    """Where a batch runs: the device of the (first) task array, else that of the keys."""
    first = jax.tree.leaves(tasks)[0]
    if isinstance(first, jax.Array) and len(first.sharding.device_set) == 1:
        return first.sharding
    return keys.sharding


def evaluate(
    agent: Agent,
    family: TaskFamily,
    tasks: Any,
    num_episodes: int,
    key: jax.Array,
    num_seeds: int = 1,
    batch_size: int | None = None,
    record_obs: bool = False,
) -> EvalResult:
    """Run ``agent`` for one trial of ``num_episodes`` episodes on each task, ``num_seeds`` times.

    ``agent`` is an ``Agent`` (adapts step by step: RL^2, bandit baselines) or a ``GradientAgent``
    (adapts between batches of episodes: MAML, Reptile, MAESN); both give the same result arrays.

    ``tasks`` is a batch of task parameters (e.g. ``family.tasks(1000, "test")``); every agent given
    the same tasks, budget and key faces the same reward draws where its actions coincide.
    ``record_obs=True`` also keeps the environment observation of every step (for analyses that
    need more than actions and rewards, e.g. which second-stage state a two-step trial reached).

    Tasks run ``batch_size`` at a time in one compiled call; by default as many as keep a call
    within ``EVAL_STEP_BUDGET`` environment steps (at most ``MAX_EVAL_BATCH`` tasks), so long
    trials do not hold every task's steps in memory at once. Each task's key depends on its
    index only, so the batch size changes a result by float rounding at most.
    """
    trial = Trial(family, num_episodes)
    if isinstance(agent, GradientAgent):
        if num_episodes % agent.episodes_per_adapt:
            raise Learn2RLError(
                f"agent {agent.name!r} adapts after every {agent.episodes_per_adapt} episodes; "
                f"num_episodes ({num_episodes}) must be a multiple of that"
            )
    elif agent.horizon is not None and trial.max_steps > agent.horizon:
        raise Learn2RLError(
            f"agent {agent.name!r} was built for trials of at most {agent.horizon} steps, "
            f"but a trial of {num_episodes} episodes of {family.family_id} has {trial.max_steps}"
        )
    num_tasks = int(jax.tree.leaves(tasks)[0].shape[0])
    if num_seeds <= 0:
        raise Learn2RLError(f"num_seeds must be positive, got {num_seeds}")
    if batch_size is None:
        batch_size = max(1, min(MAX_EVAL_BATCH, EVAL_STEP_BUDGET // trial.max_steps))
    elif batch_size <= 0:
        raise Learn2RLError(f"batch_size must be positive, got {batch_size}")
    static, agent_params = _static_part(agent)
    outputs = []
    for seed in range(num_seeds):
        seed_key = jax.random.fold_in(key, seed)
        for start in range(0, num_tasks, batch_size):
            stop = min(start + batch_size, num_tasks)
            batch = jax.tree.map(lambda x, a=start, b=stop: x[a:b], tasks)
            # Task i gets key fold_in(seed_key, i) whatever the batch size.
            keys = jax.vmap(partial(jax.random.fold_in, seed_key))(jnp.arange(start, stop))
            # Trained parameters come replicated over the training mesh (or as numpy from a
            # checkpoint); on the batch's one device the trial runs where it ran when the
            # parameters were compile-time constants, and every source hits one compiled entry.
            agent_params = jax.device_put(agent_params, _device_of(batch, keys))
            outputs.append(
                jax.device_get(_run_batch(static, trial, agent_params, keys, batch, record_obs))
            )
    rewards, regrets, valid, actions, episodes = (
        np.concatenate([o[i] for o in outputs]) for i in range(5)
    )
    observations = np.concatenate([o[5] for o in outputs]) if record_obs else None
    return EvalResult(
        agent=agent.name,
        task=family.family_id,
        rewards=rewards,
        regrets=regrets,
        valid=valid,
        actions=actions,
        num_tasks=num_tasks,
        num_seeds=num_seeds,
        episodes=episodes,
        observations=observations,
    )
