"""Reference agents for restless two-armed bandits (``learn2rl.tasks.restless``).

- ``rescorla_wagner_agent``: the delta rule (Rescorla & Wagner 1972) with a fixed learning rate
  alpha, choosing greedily or by a softmax with inverse temperature beta. For dependent arms
  (p, 1 - p) the rule is *coupled*: it tracks one estimate of p, and a pull of arm 1 with reward r
  counts as the observation 1 - r about p (the model Behrens et al. 2007 fit to people). For
  independent arms each arm has its own estimate, updated only when pulled.
- ``rescorla_wagner_per_level_agent``: privileged; uses the learning rate tuned for the task's own
  volatility level (an upper reference for any fixed-alpha learner that does not know the level).
- ``ucb1_agent``: UCB1 (Auer, Cesa-Bianchi & Fischer 2002), sample means, unpulled arms first. It
  assumes stationary arms, which these are not.
- ``bayes_optimal_agent``: exact Bayesian change-point filter (Adams & MacKay 2007) over the run
  length since the last change and the task's hazard level (uniform prior over the family's
  levels), Beta(1,1) on each fresh p. For dependent arms every pull carries the same information
  about p whatever arm is pulled, so the belief process does not depend on the actions and acting
  greedily on the posterior mean is exactly Bayes-optimal.
- ``random_agent`` (the generic one of ``baselines.generic``); ``oracle_agent`` (privileged: pulls
  the arm that is best *now*).

All agents are pure JAX (``learn2rl.types.Agent``); alpha and beta may be traced values, so a grid
of learning rates can be evaluated in one ``vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from learn2rl.baselines import generic
from learn2rl.errors import Learn2RLError
from learn2rl.tasks.restless import RestlessBandit, RestlessParams
from learn2rl.types import Agent, TrialObs


def _check_family(family) -> RestlessBandit:
    if not isinstance(family, RestlessBandit):
        raise Learn2RLError(
            f"restless-bandit agents need a RestlessBandit family, got {type(family).__name__}"
        )
    return family


def _argmax_random_ties(key: jax.Array, values: jax.Array) -> jax.Array:
    noise = jax.random.uniform(key, values.shape)
    return jnp.argmax(jnp.where(values == jnp.max(values), noise, -1.0)).astype(jnp.int32)


# --------------------------------------------------------------------------------------------
# Rescorla-Wagner (delta rule)
# --------------------------------------------------------------------------------------------


def rescorla_wagner_initial() -> jax.Array:
    """Initial action values [2]: 0.5 each (the prior mean of a U[0, 1] probability)."""
    return jnp.full((2,), 0.5, jnp.float32)


def rescorla_wagner_update(
    values: jax.Array, action: jax.Array, reward: jax.Array, alpha: jax.Array, coupled: bool
) -> jax.Array:
    """One delta-rule step, Q <- Q + alpha (target - Q).

    ``coupled``: the values are [p, 1 - p] for one estimate p of P(arm 0 pays); the observation
    about p is ``reward`` after arm 0 and ``1 - reward`` after arm 1. Otherwise only the pulled
    arm's value moves towards ``reward``. ``action`` -1 (no pull yet) leaves the values unchanged.
    """
    if coupled:
        observation = jnp.where(action == 0, reward, 1.0 - reward)
        p = values[0] + alpha * (observation - values[0])
        new_values = jnp.stack([p, 1.0 - p])
    else:
        pulled = jnp.arange(2) == action
        new_values = jnp.where(pulled, values + alpha * (reward - values), values)
    return jnp.where(action >= 0, new_values, values)


def rescorla_wagner_values(
    actions: jax.Array, rewards: jax.Array, alpha: jax.Array, coupled: bool
) -> jax.Array:
    """Action values before each step of one trial: [T, 2] (unbatched; vmap over trials/alphas)."""

    def step(values, inputs):
        action, reward = inputs
        return rescorla_wagner_update(values, action, reward, alpha, coupled), values

    _, values = jax.lax.scan(step, rescorla_wagner_initial(), (actions, rewards))
    return values


@struct.dataclass
class _RWState:
    values: jax.Array  # [2]
    alpha: jax.Array
    beta: jax.Array  # inverse temperature; +inf means greedy


def _rw_act(coupled: bool):
    def act(key, state: _RWState, obs: TrialObs):
        values = rescorla_wagner_update(
            state.values, obs.prev_action, obs.prev_reward, state.alpha, coupled
        )
        key_ties, key_sample = jax.random.split(key)
        greedy = _argmax_random_ties(key_ties, values)
        finite_beta = jnp.where(jnp.isfinite(state.beta), state.beta, 0.0)
        sampled = jax.random.categorical(key_sample, finite_beta * values).astype(jnp.int32)
        action = jnp.where(jnp.isfinite(state.beta), sampled, greedy)
        return action, state.replace(values=values)

    return act


def default_coupling(family: RestlessBandit) -> bool:
    """Coupled delta rule for dependent arms, one estimate per arm for independent arms."""
    return _check_family(family).arms == "dependent"


def rescorla_wagner_agent(
    family,
    alpha,
    beta=None,
    coupled: bool | None = None,
    name: str = "rescorla-wagner",
) -> Agent:
    """Delta rule with learning rate ``alpha``; softmax with inverse temperature ``beta``, or
    greedy (random ties) when ``beta`` is None. ``alpha``/``beta`` may be traced arrays."""
    family = _check_family(family)
    coupled = default_coupling(family) if coupled is None else bool(coupled)
    if coupled and family.arms != "dependent":
        raise Learn2RLError("a coupled delta rule assumes dependent arms (p, 1 - p)")
    if isinstance(alpha, (int, float)) and not 0.0 < alpha <= 1.0:
        raise Learn2RLError(f"alpha must lie in (0, 1], got {alpha}")
    if isinstance(beta, (int, float)) and not beta >= 0.0:
        raise Learn2RLError(f"beta must be >= 0 (or None for greedy), got {beta}")
    beta = jnp.inf if beta is None else beta

    def init(key, task_params=None):
        return _RWState(
            values=rescorla_wagner_initial(),
            alpha=jnp.asarray(alpha, jnp.float32),
            beta=jnp.asarray(beta, jnp.float32),
        )

    return Agent(name=name, init=init, act=_rw_act(coupled))


def rescorla_wagner_per_level_agent(
    family, alphas, beta=None, coupled: bool | None = None, name: str = "rw-per-level"
) -> Agent:
    """Privileged delta rule using ``alphas[level]``, the rate tuned for the task's level; greedy
    unless ``beta`` (softmax inverse temperature) is given."""
    family = _check_family(family)
    coupled = default_coupling(family) if coupled is None else bool(coupled)
    alphas = jnp.asarray(alphas, jnp.float32)
    if alphas.shape != (len(family.hazards),):
        raise Learn2RLError(
            f"need one learning rate per hazard level ({len(family.hazards)}), got {alphas.shape}"
        )

    def init(key, task_params: RestlessParams):
        return _RWState(
            values=rescorla_wagner_initial(),
            alpha=alphas[task_params.level],
            beta=jnp.float32(jnp.inf if beta is None else beta),
        )

    return Agent(name=name, init=init, act=_rw_act(coupled), privileged=True)


# --------------------------------------------------------------------------------------------
# UCB1, random, oracle
# --------------------------------------------------------------------------------------------


@struct.dataclass
class _Counts:
    pulls: jax.Array  # [2]
    sums: jax.Array  # [2]


def ucb1_agent(family, exploration: float = 1.0, name: str = "ucb1") -> Agent:
    """UCB1: index = mean_i + c sqrt(2 ln t / n_i); each arm once first (random order)."""
    _check_family(family)
    if not exploration >= 0.0:
        raise Learn2RLError(f"exploration must be >= 0, got {exploration}")

    def init(key, task_params=None):
        return _Counts(pulls=jnp.zeros((2,), jnp.float32), sums=jnp.zeros((2,), jnp.float32))

    def act(key, counts: _Counts, obs: TrialObs):
        pulled = (jnp.arange(2) == obs.prev_action).astype(jnp.float32)
        counts = _Counts(counts.pulls + pulled, counts.sums + pulled * obs.prev_reward)
        total = jnp.maximum(counts.pulls.sum(), 1.0)
        safe = jnp.maximum(counts.pulls, 1.0)
        index = counts.sums / safe + exploration * jnp.sqrt(2.0 * jnp.log(total) / safe)
        index = jnp.where(counts.pulls == 0, jnp.inf, index)
        return _argmax_random_ties(key, index), counts

    return Agent(name=name, init=init, act=act)


def random_agent(family, name: str = "random") -> Agent:
    """A uniformly random arm (``baselines.generic.random_agent``)."""
    return generic.random_agent(_check_family(family), name=name)


def oracle_agent(family, name: str = "oracle") -> Agent:
    """Privileged: knows the whole probability path and pulls the arm that is best at this pull."""
    family = _check_family(family)
    last = family.num_pulls - 1

    def init(key, task_params: RestlessParams):
        return task_params.probs

    def act(key, probs, obs: TrialObs):
        # Within one-episode trials the trial step is the pull index.
        now = probs[jnp.minimum(obs.step, last)]
        return _argmax_random_ties(key, now), probs

    return Agent(name=name, init=init, act=act, privileged=True, horizon=family.num_pulls)


# --------------------------------------------------------------------------------------------
# Bayes-optimal: exact change-point filter (dependent arms)
# --------------------------------------------------------------------------------------------


@struct.dataclass
class ChangePointBelief:
    """Posterior over (hazard level, run length) with the Beta counts of each run length.

    ``weights[l, k]``: probability that the hazard is level l and the current p was drawn k pulls
    ago (k observations of it so far); ``successes[k]`` / ``failures[k]``: observations of "p
    happened" (arm 0 paid, or arm 1 did not) among those k.
    """

    weights: jax.Array  # [num_levels, num_pulls]
    successes: jax.Array  # [num_pulls]
    failures: jax.Array  # [num_pulls]


def change_point_initial(num_levels: int, num_pulls: int) -> ChangePointBelief:
    weights = jnp.zeros((num_levels, num_pulls), jnp.float32).at[:, 0].set(1.0 / num_levels)
    zeros = jnp.zeros((num_pulls,), jnp.float32)
    return ChangePointBelief(weights=weights, successes=zeros, failures=zeros)


def change_point_update(
    belief: ChangePointBelief, observation: jax.Array, hazards: jax.Array
) -> ChangePointBelief:
    """Condition on one observation (1 if "p happened") and then on a possible change before the
    next pull (probability ``hazards[l]`` under level l)."""
    s, f = belief.successes, belief.failures
    predictive = (1.0 + s) / (2.0 + s + f)
    likelihood = jnp.where(observation > 0.5, predictive, 1.0 - predictive)
    weights = belief.weights * likelihood[None, :]
    weights = weights / jnp.sum(weights)
    s, f = s + observation, f + (1.0 - observation)
    # A change starts a fresh run (no observations); otherwise every run grows by one.
    fresh = hazards * jnp.sum(weights, axis=1)
    grown = (1.0 - hazards)[:, None] * weights[:, :-1]
    weights = jnp.concatenate([fresh[:, None], grown], axis=1)
    zero = jnp.zeros((1,), jnp.float32)
    return ChangePointBelief(
        weights=weights,
        successes=jnp.concatenate([zero, s[:-1]]),
        failures=jnp.concatenate([zero, f[:-1]]),
    )


def change_point_mean(belief: ChangePointBelief) -> jax.Array:
    """Posterior mean of the current p."""
    s, f = belief.successes, belief.failures
    per_run = (1.0 + s) / (2.0 + s + f)
    return jnp.sum(belief.weights * per_run[None, :]) / jnp.sum(belief.weights)


def bayes_optimal_agent(family, name: str = "bayes-optimal") -> Agent:
    """Greedy on the exact posterior mean of p (Bayes-optimal for dependent restless arms)."""
    family = _check_family(family)
    if family.arms != "dependent":
        raise Learn2RLError(
            "the Bayes-optimal restless agent is exact only for dependent arms (p, 1 - p); "
            f"{family.family_id} has independent arms"
        )
    hazards = jnp.asarray(family.hazards, jnp.float32)
    num_levels, num_pulls = len(family.hazards), family.num_pulls

    def init(key, task_params=None):
        return change_point_initial(num_levels, num_pulls)

    def act(key, belief: ChangePointBelief, obs: TrialObs):
        observation = jnp.where(obs.prev_action == 0, obs.prev_reward, 1.0 - obs.prev_reward)
        updated = change_point_update(belief, observation, hazards)
        belief = jax.tree.map(
            lambda new, old: jnp.where(obs.prev_action >= 0, new, old), updated, belief
        )
        p = change_point_mean(belief)
        return _argmax_random_ties(key, jnp.stack([p, 1.0 - p])), belief

    # The run-length arrays hold one trial of num_pulls pulls.
    return Agent(name=name, init=init, act=act, horizon=num_pulls)


# --------------------------------------------------------------------------------------------
# The registry's table: factory(family, num_episodes, **options)
# --------------------------------------------------------------------------------------------


def _random(family, num_episodes: int) -> Agent:
    return random_agent(family)


def _oracle(family, num_episodes: int) -> Agent:
    return oracle_agent(family)


def _ucb1(family, num_episodes: int, exploration: float = 1.0) -> Agent:
    return ucb1_agent(family, exploration)


def _bayes_optimal(family, num_episodes: int) -> Agent:
    return bayes_optimal_agent(family)


# The delta rule is left out: it needs its learning rate, which the experiment tunes on
# training tasks (``rescorla_wagner_agent(family, alpha, beta)``).
BASELINES = {
    "random": _random,
    "oracle": _oracle,
    "ucb1": _ucb1,
    "bayes-optimal": _bayes_optimal,  # dependent arms only (see ``applicable``)
}
