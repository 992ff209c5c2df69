"""Classical baselines for random tabular MDPs (RL^2 Table 2, Duan et al. 2016, Sec. 4.2).

Seven agents behind the ``Agent`` interface, for ``TabularMDP`` families (``mdp/tabular-10s5a``:
10 states, 5 actions, 10-step episodes from state 0): ``random``, ``psrl``, ``opsrl``,
``ucrl2``, ``beb``, ``eps-greedy``, ``greedy`` (the columns of Table 2, ``AGENTS``), plus the
privileged ``oracle`` (the optimal plan of the true MDP; ``BASELINES`` holds all eight). Duan
et al. ran the implementations of Osband's TabulaRL library and tuned OPSRL's number of samples
(1..20), UCRL2's and BEB's confidence scale (21 log-spaced values in [1e-4, 1]) and epsilon
({0.1, ..., 1}) on their evaluation tasks (their released script; the paper says only that the
baselines' hyperparameters were tuned). We tune on the first 500 training-split tasks instead,
over ``TUNING_GRIDS`` (powers of two for BEB's beta, 1-16 samples for OPSRL, 0.01-1 for UCRL2's
scale, 0.01-0.5 for epsilon); ``tuned_options(n, priors)`` holds the results (``TUNED``) for
n = 10, 25, 50, 75, 100. With the priors of Duan et al.'s code every column of Table 2 comes
back within 3.3% on 2000 test tasks; with the family's own prior (the defaults) greedy is 15-20%
better than the paper's (docs/baselines.md, "Tabular MDPs", has both tables and the causes).

Shared machinery (every detail below changes numbers):

- Statistics (``MDPStats``): per (s, a) the number of rewards seen, their sum, and the counts
  of observed next states. ``act`` decodes the current state from the one-hot observation and
  first folds the previous step in: its reward always, its transition (previous state ->
  current state) only when the current step is not the first of an episode, because then the
  current state is the reset state 0, not the successor (the successor of an episode's last
  step is never observed). Statistics persist across the episodes of a trial.
- Replanning: at the first step of every episode (``trial_obs.step % episode_length == 0``;
  nothing terminates early in this family) the agent computes a non-stationary plan
  Q[h, s, a] for the whole episode by undiscounted finite-horizon backward induction over the
  ``episode_length`` steps (no discounting, as in TabulaRL), and follows it for the episode:
  action = argmax_a Q[h, s, a] at the step's h and state. Replanning sits in a ``lax.cond``;
  evaluation runs all trials in lockstep, so the step index is not batched under ``vmap`` and
  the cond really skips the planner on the other steps.
- Ties between actions with equal float32 Q values are broken uniformly at random
  (``argmax_random_ties``; e.g. untried actions of a state, which share one value).
- Model (``ModelPrior``): mean rewards N(``reward_prior_mean``, ``reward_prior_std``^2) with
  known reward noise N(0, 1) (Normal-Normal conjugate posterior), next-state distributions
  Dirichlet(``transition_prior``, ...). The defaults, (1, 1, 1), are the family's own prior,
  so PSRL samples from the exact posterior and the posterior mean is the Bayes estimate.
  Duan et al.'s code used other priors (``PAPER_CODE_PRIORS``): reward prior mean 0 for PSRL,
  OPSRL and BEB, and an almost flat model (reward prior N(0, 100^2), Dirichlet(1e-4) or 1e-5)
  for greedy, eps-greedy and UCRL2, so that an untried action is worth 0 there, which is what
  moves greedy most.

Agents:

- ``random``: a uniformly random action (the generic agent of ``baselines.generic``).
- ``greedy``: certainty equivalence, the optimal plan of the posterior-mean MDP.
- ``eps-greedy``: greedy, but with probability ``epsilon`` (default 0.1) a uniformly random
  action (which may be the greedy one), decided independently at every step.
- ``psrl``: posterior sampling (Strens 2000; Osband, Russo & Van Roy 2013): one MDP drawn from
  the posterior per episode, its optimal plan followed for the episode.
- ``opsrl``: optimistic PSRL as in TabulaRL (the code behind Table 2): ``num_samples`` posterior
  draws per episode (default 10, TabulaRL's; at most ``MAX_SAMPLES``), acting on the
  elementwise maximum of their Q tables.
- ``ucrl2``: UCRL2 (Jaksch, Ortner & Auer 2010), replanned at every episode start (the episodic
  form of TabulaRL rather than UCRL2's doubling episodes): extended value iteration over the
  L1 ball of radius ``scale * sqrt(14 S ln(2 A t / delta) / max(1, N_p(s, a)))`` around the
  posterior-mean transitions, with reward ``mean + scale * sqrt(7 ln(2 S A t / delta) /
  (2 max(1, N_r(s, a))))``; t = steps so far in the trial (at least 1), delta = 0.05
  (``UCRL2_DELTA``, TabulaRL's), ``confidence_scale`` default 1 (the paper's constants, which
  assume rewards in [0, 1]; tuned values are far smaller). The inner maximisation moves
  radius / 2 of probability to the best next state, taking it from the worst ones first,
  vectorised by one sort of the next-step values per backup.
- ``beb``: Bayesian exploration bonus (Kolter & Ng 2009): the optimal plan of the
  posterior-mean MDP with ``beta / (1 + alpha0(s, a))`` added to each mean reward, alpha0 the
  sum of the pair's Dirichlet parameters (prior included: 10 + N_p for the default prior);
  default beta = 2 H^2 = 200 for 10-step episodes (their theorem's value).
- ``oracle`` (privileged, not a column of Table 2): the optimal plan of the true MDP
  (``backward_induction`` on the task's mean rewards and transitions), the reference
  ``tasks.tabular_mdp.optimal_values`` computes the value of.

Posterior samples draw their random numbers with ``posterior_draws``: standard normals for the
rewards and exact log-Gamma draws (``log_gamma_draws``, Marsaglia & Tsang 2000; the PSRL and
OPSRL planners run 3-6x faster with it than with ``jax.random.gamma`` / ``loggamma`` on this
CPU) whose softmax over next states is a Dirichlet draw.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from learn2rl.baselines import generic
from learn2rl.baselines.bandits import argmax_random_ties
from learn2rl.errors import Learn2RLError
from learn2rl.tasks.tabular_mdp import (
    REWARD_MEAN,
    REWARD_NOISE_STD,
    REWARD_PRIOR_STD,
    TabularMDP,
)
from learn2rl.types import Agent, TrialObs

TRANSITION_PRIOR = 1.0  # the family's flat Dirichlet(1, ..., 1) over next states
UCRL2_DELTA = 0.05  # UCRL2's confidence parameter delta
MAX_SAMPLES = 64  # the largest num_samples OPSRL accepts (a plan costs num_samples VIs)


class ModelPrior(NamedTuple):
    """An agent's prior over one task: mean reward N(reward_mean, reward_std^2) per (s, a),
    reward noise N(0, noise_std^2) (known), next state Dirichlet(transition, ..., transition)."""

    reward_mean: float = REWARD_MEAN
    reward_std: float = REWARD_PRIOR_STD
    transition: float = TRANSITION_PRIOR
    noise_std: float = REWARD_NOISE_STD


# --------------------------------------------------------------------------------------------
# Statistics of one trial
# --------------------------------------------------------------------------------------------


@struct.dataclass
class MDPStats:
    """Sufficient statistics of everything seen in a trial.

    ``visits[s, a]``: rewards observed after action a in state s; ``reward_sums[s, a]``: their
    sum; ``successors[s, a, s']``: observed transitions s -a-> s' (the last step of an episode has
    no observed successor, so ``successors[s, a].sum()`` can be below ``visits[s, a]``).
    """

    visits: jax.Array  # float32 [S, A]
    reward_sums: jax.Array  # float32 [S, A]
    successors: jax.Array  # float32 [S, A, S]


@struct.dataclass
class MDPAgentState:
    """Statistics, the state seen at the previous step, and the plan Q[h, s, a] of the episode."""

    stats: MDPStats
    prev_state: jax.Array  # int32
    q: jax.Array  # float32 [H, S, A]


def initial_stats(num_states: int, num_actions: int) -> MDPStats:
    return MDPStats(
        visits=jnp.zeros((num_states, num_actions), jnp.float32),
        reward_sums=jnp.zeros((num_states, num_actions), jnp.float32),
        successors=jnp.zeros((num_states, num_actions, num_states), jnp.float32),
    )


def update_stats(
    stats: MDPStats,
    prev_state: jax.Array,
    state: jax.Array,
    trial_obs: TrialObs,
    new_episode: jax.Array,
) -> MDPStats:
    """Fold the previous step into the statistics.

    The reward of the previous step (``prev_state``, ``trial_obs.prev_action``) is always added
    (nothing at the first step of a trial, where ``prev_action`` is -1); the transition
    ``prev_state -> state`` only when ``new_episode`` is false: at the first step of an episode
    ``state`` is the reset state, not the successor.
    """
    num_states, num_actions = stats.visits.shape
    action = trial_obs.prev_action
    pair = jnp.logical_and(
        jnp.arange(num_states)[:, None] == prev_state,
        jnp.arange(num_actions)[None, :] == action,
    ).astype(jnp.float32)  # [S, A] one-hot of the previous (state, action); zeros if action = -1
    moved = pair[:, :, None] * (jnp.arange(num_states) == state).astype(jnp.float32)
    return MDPStats(
        visits=stats.visits + pair,
        reward_sums=stats.reward_sums + pair * trial_obs.prev_reward,
        successors=stats.successors + jnp.where(new_episode, 0.0, moved),
    )


# --------------------------------------------------------------------------------------------
# Models: posterior, posterior mean, posterior samples
# --------------------------------------------------------------------------------------------


def reward_posterior(stats: MDPStats, prior: ModelPrior) -> tuple[jax.Array, jax.Array]:
    """Posterior mean and standard deviation of every mean reward (Normal prior, known noise)."""
    prior_precision = 1.0 / prior.reward_std**2
    noise_precision = 1.0 / prior.noise_std**2
    precision = prior_precision + noise_precision * stats.visits
    mean = (prior_precision * prior.reward_mean + noise_precision * stats.reward_sums) / precision
    return mean, 1.0 / jnp.sqrt(precision)


def dirichlet_posterior(stats: MDPStats, prior: ModelPrior) -> jax.Array:
    """Dirichlet parameters [S, A, S] of every next-state distribution."""
    return prior.transition + stats.successors


def mean_model(stats: MDPStats, prior: ModelPrior) -> tuple[jax.Array, jax.Array]:
    """Posterior-mean rewards [S, A] and transitions [S, A, S]."""
    rewards, _ = reward_posterior(stats, prior)
    alpha = dirichlet_posterior(stats, prior)
    return rewards, alpha / jnp.sum(alpha, axis=-1, keepdims=True)


def log_gamma_draws(key: jax.Array, alpha: jax.Array) -> jax.Array:
    """Exact draws of log G, G ~ Gamma(alpha, 1), for every entry of ``alpha`` (all > 0).

    Marsaglia & Tsang's (2000) squeeze-free rejection sampler for Gamma(alpha + 1), then the
    boost G = G' U^(1 / alpha) (their Sec. 6), all in log space so that tiny alphas cannot
    underflow. Rejection runs on whole arrays: every round draws one normal and one uniform per
    entry (round i from ``fold_in(key_rounds, i)``, ``key_rounds, key_boost = split(key)``) and
    keeps the first accepted candidate; rounds repeat until every entry has one (acceptance is
    above 95% per round for shape >= 1). Several times faster on a CPU than
    ``jax.random.gamma``, which runs its rejection loop with a key split per entry.
    """
    alpha = jnp.asarray(alpha, jnp.float32)
    d = alpha + 1.0 - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)
    key_rounds, key_boost = jax.random.split(key)

    def one_round(carry):
        index, accepted, volume = carry
        key_normal, key_uniform = jax.random.split(jax.random.fold_in(key_rounds, index))
        z = jax.random.normal(key_normal, alpha.shape)
        u = jax.random.uniform(key_uniform, alpha.shape)
        candidate = (1.0 + c * z) ** 3
        positive = candidate > 0.0
        safe = jnp.where(positive, candidate, 1.0)
        ok = positive & (jnp.log(u) < 0.5 * z * z + d - d * safe + d * jnp.log(safe))
        volume = jnp.where(accepted | ~ok, volume, candidate)
        return index + 1, accepted | ok, volume

    start = (jnp.int32(0), jnp.zeros(alpha.shape, bool), jnp.ones(alpha.shape, jnp.float32))
    _, _, volume = jax.lax.while_loop(lambda carry: ~jnp.all(carry[1]), one_round, start)
    boost = jax.random.uniform(key_boost, alpha.shape, minval=jnp.finfo(jnp.float32).tiny)
    return jnp.log(d * volume) + jnp.log(boost) / alpha


def posterior_draws(key: jax.Array, alpha: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The random numbers of one posterior sample: standard normals [S, A] (first half of the
    key) and ``log_gamma_draws`` of the Dirichlet parameters ``alpha`` [S, A, S] (second half)."""
    key_rewards, key_transitions = jax.random.split(key)
    normals = jax.random.normal(key_rewards, alpha.shape[:2])
    return normals, log_gamma_draws(key_transitions, alpha)


def sample_model(key: jax.Array, stats: MDPStats, prior: ModelPrior):
    """One task drawn from the posterior: ``(rewards [S, A], transitions [S, A, S])``.

    Rewards: posterior mean + posterior std * normal. Transitions: the softmax over next states
    of log-Gamma(alpha) draws, i.e. normalised Gamma draws, a Dirichlet(alpha) draw.
    """
    mean, std = reward_posterior(stats, prior)
    alpha = dirichlet_posterior(stats, prior)
    normals, log_gammas = posterior_draws(key, alpha)
    return mean + std * normals, jax.nn.softmax(log_gammas, axis=-1)


# --------------------------------------------------------------------------------------------
# Planning: finite-horizon backward induction, and its extended (optimistic) form for UCRL2
# --------------------------------------------------------------------------------------------


def backward_induction(rewards: jax.Array, transitions: jax.Array, horizon: int) -> jax.Array:
    """Optimal finite-horizon Q[h, s, a] of a known MDP, h = 0 .. horizon - 1 (undiscounted).

    ``Q[h] = rewards + transitions . V[h + 1]``, ``V[h] = max_a Q[h]``, ``V[horizon] = 0``.
    """
    return _induction(rewards, lambda values: transitions, horizon)


def _induction(rewards: jax.Array, transitions_for, horizon: int) -> jax.Array:
    """Backward induction where the transitions of each backup may depend on the values being
    backed up (``transitions_for(values)`` -> [S, A, S]): fixed for a known model, re-chosen
    optimistically for UCRL2."""

    def backup(values, _):
        q = rewards + jnp.einsum("san,n->sa", transitions_for(values), values)
        return jnp.max(q, axis=-1), q

    values = jnp.zeros(rewards.shape[0], jnp.float32)
    _, q = jax.lax.scan(backup, values, None, length=horizon, reverse=True)
    return q


def optimistic_transitions(
    transitions: jax.Array, values: jax.Array, radius: jax.Array
) -> jax.Array:
    """The distribution within L1 distance ``radius`` of ``transitions`` with the largest
    expected ``values`` (Jaksch et al. 2010, Fig. 2).

    Moves ``radius / 2`` of probability (at most all there is) to the best next state and takes
    it from the worst states first. ``transitions`` [..., S], ``values`` [S], ``radius`` [...].
    Vectorised: states are sorted by value once (best first; equal values keep index order).
    """
    order = jnp.argsort(-values, stable=True)
    sorted_p = transitions[..., order]
    best = sorted_p[..., 0]
    new_best = jnp.minimum(1.0, best + 0.5 * radius)
    excess = new_best - best
    rest = sorted_p[..., 1:]
    # Probability held by states worse than each one: removal starts at the worst state.
    worse = jnp.cumsum(rest[..., ::-1], axis=-1)[..., ::-1] - rest
    new_rest = rest - jnp.clip(excess[..., None] - worse, 0.0, rest)
    new_sorted = jnp.concatenate([new_best[..., None], new_rest], axis=-1)
    return new_sorted[..., jnp.argsort(order)]


def extended_value_iteration(
    rewards: jax.Array, transitions: jax.Array, radius: jax.Array, horizon: int
) -> jax.Array:
    """Finite-horizon extended value iteration: Q[h, s, a] of the most optimistic transitions
    within the L1 ball of ``radius[s, a]`` around ``transitions[s, a]``, re-chosen at every h."""
    return _induction(
        rewards, lambda values: optimistic_transitions(transitions, values, radius), horizon
    )


def ucrl2_radii(
    stats: MDPStats, steps: jax.Array, scale: float, delta: float = UCRL2_DELTA
) -> tuple[jax.Array, jax.Array]:
    """UCRL2's confidence radii (Jaksch et al. 2010, Fig. 1) times ``scale``.

    Rewards: ``sqrt(7 ln(2 S A t / delta) / (2 max(1, N_r)))``; transitions (L1):
    ``sqrt(14 S ln(2 A t / delta) / max(1, N_p))``, where t = max(1, steps so far), N_r the
    rewards and N_p the observed successors of the pair.
    """
    num_states, num_actions = stats.visits.shape
    t = jnp.maximum(jnp.asarray(steps, jnp.float32), 1.0)
    reward_counts = jnp.maximum(stats.visits, 1.0)
    transition_counts = jnp.maximum(jnp.sum(stats.successors, axis=-1), 1.0)
    reward_log = jnp.log(2.0 * num_states * num_actions * t / delta)
    transition_log = jnp.log(2.0 * num_actions * t / delta)
    reward_radius = scale * jnp.sqrt(7.0 * reward_log / (2.0 * reward_counts))
    transition_radius = scale * jnp.sqrt(14.0 * num_states * transition_log / transition_counts)
    return reward_radius, transition_radius


def beb_bonus(stats: MDPStats, beta: float, prior: ModelPrior) -> jax.Array:
    """Kolter & Ng's (2009) bonus ``beta / (1 + alpha0(s, a))``, alpha0 = Dirichlet count sum."""
    alpha0 = jnp.sum(dirichlet_posterior(stats, prior), axis=-1)
    return beta / (1.0 + alpha0)


# --------------------------------------------------------------------------------------------
# Planners: (key, stats, step) -> Q[H, S, A], called at the first step of every episode
# --------------------------------------------------------------------------------------------


def greedy_plan(stats: MDPStats, prior: ModelPrior, horizon: int) -> jax.Array:
    return backward_induction(*mean_model(stats, prior), horizon)


def psrl_plan(key: jax.Array, stats: MDPStats, prior: ModelPrior, horizon: int) -> jax.Array:
    return backward_induction(*sample_model(key, stats, prior), horizon)


def opsrl_plan(
    key: jax.Array, stats: MDPStats, prior: ModelPrior, horizon: int, num_samples: int
) -> jax.Array:
    """The elementwise maximum of the Q tables of ``num_samples`` posterior samples
    (sample k uses ``jax.random.split(key, num_samples)[k]``)."""
    keys = jax.random.split(key, num_samples)
    qs = jax.vmap(lambda k: psrl_plan(k, stats, prior, horizon))(keys)
    return jnp.max(qs, axis=0)


def ucrl2_plan(
    stats: MDPStats, steps: jax.Array, prior: ModelPrior, horizon: int, scale: float, delta: float
) -> jax.Array:
    rewards, transitions = mean_model(stats, prior)
    reward_radius, transition_radius = ucrl2_radii(stats, steps, scale, delta)
    return extended_value_iteration(
        rewards + reward_radius, transitions, transition_radius, horizon
    )


def beb_plan(stats: MDPStats, prior: ModelPrior, horizon: int, beta: float) -> jax.Array:
    rewards, transitions = mean_model(stats, prior)
    return backward_induction(rewards + beb_bonus(stats, beta, prior), transitions, horizon)


# --------------------------------------------------------------------------------------------
# Agents
# --------------------------------------------------------------------------------------------


def check_family(family) -> TabularMDP:
    if not isinstance(family, TabularMDP):
        raise Learn2RLError(
            f"the tabular-MDP baselines need a TabularMDP family, got {type(family).__name__}"
        )
    return family


def _finite(name: str, value, low: float | None = None, strict: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if strict else value >= low
    if not ok:
        bound = "" if low is None else (f" > {low:g}" if strict else f" >= {low:g}")
        raise Learn2RLError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)


def make_prior(reward_prior_mean, reward_prior_std, transition_prior) -> ModelPrior:
    """A validated ``ModelPrior`` (the noise level is the family's)."""
    return ModelPrior(
        reward_mean=_finite("reward_prior_mean", reward_prior_mean),
        reward_std=_finite("reward_prior_std", reward_prior_std, 0.0, strict=True),
        transition=_finite("transition_prior", transition_prior, 0.0, strict=True),
    )


def _planning_agent(name: str, family, plan, epsilon: float = 0.0) -> Agent:
    """An agent that replans at the first step of every episode and follows Q[h, s] greedily.

    ``plan(key, stats, step)`` returns the Q table [H, S, A] of the episode starting at trial
    step ``step``. With ``epsilon`` > 0 the action is uniformly random with that probability.
    """
    num_states, num_actions = family.num_states, family.num_actions
    horizon = family.episode_length

    def init(key, task_params=None):
        return MDPAgentState(
            stats=initial_stats(num_states, num_actions),
            prev_state=jnp.int32(0),
            q=jnp.zeros((horizon, num_states, num_actions), jnp.float32),
        )

    def act(key, agent_state: MDPAgentState, trial_obs: TrialObs):
        key_plan, key_ties, key_explore, key_random = jax.random.split(key, 4)
        state = jnp.argmax(trial_obs.obs).astype(jnp.int32)
        step = jnp.asarray(trial_obs.step, jnp.int32)
        within = step % horizon
        new_episode = within == 0
        stats = update_stats(
            agent_state.stats, agent_state.prev_state, state, trial_obs, new_episode
        )
        q = jax.lax.cond(new_episode, lambda: plan(key_plan, stats, step), lambda: agent_state.q)
        action = argmax_random_ties(key_ties, q[within, state])
        if epsilon > 0.0:
            random_action = jax.random.randint(key_random, (), 0, num_actions, dtype=jnp.int32)
            explore = jax.random.uniform(key_explore) < epsilon
            action = jnp.where(explore, random_action, action)
        return action, MDPAgentState(stats=stats, prev_state=state, q=q)

    return Agent(name=name, init=init, act=act)


def random_agent(family, num_episodes: int) -> Agent:
    """A uniformly random action at every step (``baselines.generic.random_agent``)."""
    return generic.random_agent(check_family(family))


def greedy_agent(
    family,
    num_episodes: int,
    reward_prior_mean: float = REWARD_MEAN,
    reward_prior_std: float = REWARD_PRIOR_STD,
    transition_prior: float = TRANSITION_PRIOR,
) -> Agent:
    """Certainty equivalence: the optimal plan of the posterior-mean MDP, replanned per episode."""
    family = check_family(family)
    prior = make_prior(reward_prior_mean, reward_prior_std, transition_prior)
    horizon = family.episode_length
    return _planning_agent(
        "greedy", family, lambda key, stats, step: greedy_plan(stats, prior, horizon)
    )


def epsilon_greedy_agent(
    family,
    num_episodes: int,
    epsilon: float = 0.1,
    reward_prior_mean: float = REWARD_MEAN,
    reward_prior_std: float = REWARD_PRIOR_STD,
    transition_prior: float = TRANSITION_PRIOR,
) -> Agent:
    """Greedy, but a uniformly random action (maybe the greedy one) with probability epsilon."""
    family = check_family(family)
    epsilon = _finite("epsilon", epsilon, 0.0)
    if epsilon > 1.0:
        raise Learn2RLError(f"epsilon must be in [0, 1], got {epsilon}")
    prior = make_prior(reward_prior_mean, reward_prior_std, transition_prior)
    horizon = family.episode_length
    return _planning_agent(
        "eps-greedy",
        family,
        lambda key, stats, step: greedy_plan(stats, prior, horizon),
        epsilon=epsilon,
    )


def psrl_agent(
    family,
    num_episodes: int,
    reward_prior_mean: float = REWARD_MEAN,
    reward_prior_std: float = REWARD_PRIOR_STD,
    transition_prior: float = TRANSITION_PRIOR,
) -> Agent:
    """Posterior sampling (Strens 2000; Osband, Russo & Van Roy 2013): one posterior sample per
    episode, followed optimally for the episode."""
    family = check_family(family)
    prior = make_prior(reward_prior_mean, reward_prior_std, transition_prior)
    horizon = family.episode_length
    return _planning_agent(
        "psrl", family, lambda key, stats, step: psrl_plan(key, stats, prior, horizon)
    )


def opsrl_agent(
    family,
    num_episodes: int,
    num_samples: int = 10,
    reward_prior_mean: float = REWARD_MEAN,
    reward_prior_std: float = REWARD_PRIOR_STD,
    transition_prior: float = TRANSITION_PRIOR,
) -> Agent:
    """Optimistic PSRL: ``num_samples`` posterior samples per episode, acting on the elementwise
    maximum of their Q tables."""
    family = check_family(family)
    is_int = isinstance(num_samples, numbers.Integral) and not isinstance(num_samples, bool)
    if not is_int or not 1 <= num_samples <= MAX_SAMPLES:
        raise Learn2RLError(
            f"num_samples must be an integer in [1, {MAX_SAMPLES}], got {num_samples!r}"
        )
    num_samples = int(num_samples)
    prior = make_prior(reward_prior_mean, reward_prior_std, transition_prior)
    horizon = family.episode_length
    return _planning_agent(
        "opsrl",
        family,
        lambda key, stats, step: opsrl_plan(key, stats, prior, horizon, num_samples),
    )


def ucrl2_agent(
    family,
    num_episodes: int,
    confidence_scale: float = 1.0,
    delta: float = UCRL2_DELTA,
    reward_prior_mean: float = REWARD_MEAN,
    reward_prior_std: float = REWARD_PRIOR_STD,
    transition_prior: float = TRANSITION_PRIOR,
) -> Agent:
    """UCRL2 (Jaksch, Ortner & Auer 2010) replanned at every episode start: extended value
    iteration over the L1 ball around the estimated transitions plus a reward bonus."""
    family = check_family(family)
    scale = _finite("confidence_scale", confidence_scale, 0.0)
    delta = _finite("delta", delta, 0.0, strict=True)
    if delta >= 1.0:
        raise Learn2RLError(f"delta must be in (0, 1), got {delta}")
    prior = make_prior(reward_prior_mean, reward_prior_std, transition_prior)
    horizon = family.episode_length
    return _planning_agent(
        "ucrl2",
        family,
        lambda key, stats, step: ucrl2_plan(stats, step, prior, horizon, scale, delta),
    )


def beb_agent(
    family,
    num_episodes: int,
    beta: float | None = None,
    reward_prior_mean: float = REWARD_MEAN,
    reward_prior_std: float = REWARD_PRIOR_STD,
    transition_prior: float = TRANSITION_PRIOR,
) -> Agent:
    """Bayesian exploration bonus (Kolter & Ng 2009): the optimal plan of the posterior-mean MDP
    with ``beta / (1 + alpha0(s, a))`` added to every mean reward; ``beta`` defaults to
    2 H^2 (H the episode length), the value of Kolter & Ng's Theorem 1."""
    family = check_family(family)
    horizon = family.episode_length
    beta = 2.0 * horizon**2 if beta is None else _finite("beta", beta, 0.0)
    prior = make_prior(reward_prior_mean, reward_prior_std, transition_prior)
    return _planning_agent(
        "beb", family, lambda key, stats, step: beb_plan(stats, prior, horizon, beta)
    )


def oracle_agent(family, num_episodes: int) -> Agent:
    """Privileged: knows the MDP and follows its optimal non-stationary plan (backward induction
    on the true mean rewards and transitions, computed once per trial in ``init``); ties between
    actions with equal Q are broken at random. Its expected episode return is
    ``tasks.tabular_mdp.optimal_values``."""
    family = check_family(family)
    horizon = family.episode_length

    def init(key, task_params=None):
        return backward_induction(
            jnp.asarray(task_params.mean_rewards, jnp.float32),
            jnp.asarray(task_params.transitions, jnp.float32),
            horizon,
        )

    def act(key, q, trial_obs: TrialObs):
        state = jnp.argmax(trial_obs.obs).astype(jnp.int32)
        within = jnp.asarray(trial_obs.step, jnp.int32) % horizon
        return argmax_random_ties(key, q[within, state]), q

    return Agent(name="oracle", init=init, act=act, privileged=True)


# The columns of RL^2 Table 2, in its order.
AGENTS = {
    "random": random_agent,
    "psrl": psrl_agent,
    "opsrl": opsrl_agent,
    "ucrl2": ucrl2_agent,
    "beb": beb_agent,
    "eps-greedy": epsilon_greedy_agent,
    "greedy": greedy_agent,
}
# The registry's table (``learn2rl.baselines.get``): Table 2's columns and the oracle.
BASELINES = {**AGENTS, "oracle": oracle_agent}


# --------------------------------------------------------------------------------------------
# The settings of Duan et al.'s code, the tuning grids and the tuned values
# --------------------------------------------------------------------------------------------

# The priors of the TabulaRL agents Duan et al.'s released evaluation script ran (their
# defaults): PSRL, OPSRL and BEB alpha0 = 1, mu0 = 0, tau0 = 1; EpsilonGreedy (also greedy,
# epsilon = 0) alpha0 = tau0 = 1e-4, UCRL2 alpha0 = 1e-5, tau0 = 1e-4, both with mu0 = 0.
_FLAT_REWARDS = {"reward_prior_mean": 0.0, "reward_prior_std": 100.0}
PAPER_CODE_PRIORS: dict[str, dict] = {
    "random": {},
    "psrl": {"reward_prior_mean": 0.0},
    "opsrl": {"reward_prior_mean": 0.0},
    "ucrl2": {**_FLAT_REWARDS, "transition_prior": 1e-5},
    "beb": {"reward_prior_mean": 0.0},
    "eps-greedy": {**_FLAT_REWARDS, "transition_prior": 1e-4},
    "greedy": {**_FLAT_REWARDS, "transition_prior": 1e-4},
}

# The grids searched on training-split tasks (the option, its values).
TUNING_GRIDS: dict[str, tuple[str, tuple]] = {
    "opsrl": ("num_samples", (1, 2, 4, 8, 16)),
    "ucrl2": ("confidence_scale", (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)),
    "beb": ("beta", (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)),
    "eps-greedy": ("epsilon", (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)),
}
PRIOR_SETTINGS = ("family", "paper-code")

# The best grid value on 500 training-split tasks, per prior setting and number of episodes.
TUNED: dict[str, dict[int, dict[str, float]]] = {
    "family": {
        10: {"opsrl": 16, "ucrl2": 0.02, "beb": 16.0, "eps-greedy": 0.01},
        25: {"opsrl": 16, "ucrl2": 0.02, "beb": 16.0, "eps-greedy": 0.01},
        50: {"opsrl": 8, "ucrl2": 0.05, "beb": 16.0, "eps-greedy": 0.01},
        75: {"opsrl": 8, "ucrl2": 0.05, "beb": 16.0, "eps-greedy": 0.02},
        100: {"opsrl": 8, "ucrl2": 0.05, "beb": 16.0, "eps-greedy": 0.05},
    },
    "paper-code": {
        10: {"opsrl": 16, "ucrl2": 0.05, "beb": 32.0, "eps-greedy": 0.01},
        25: {"opsrl": 16, "ucrl2": 0.05, "beb": 32.0, "eps-greedy": 0.1},
        50: {"opsrl": 16, "ucrl2": 0.5, "beb": 32.0, "eps-greedy": 0.1},
        75: {"opsrl": 16, "ucrl2": 0.5, "beb": 32.0, "eps-greedy": 0.1},
        100: {"opsrl": 16, "ucrl2": 0.5, "beb": 32.0, "eps-greedy": 0.1},
    },
}


def tuned_options(num_episodes: int, priors: str = "family") -> dict[str, dict]:
    """Options for every tabular-MDP baseline, for trials of ``num_episodes`` episodes.

    ``priors="family"``: the module defaults (the family's own prior) plus the tuned constants;
    ``"paper-code"``: the priors of Duan et al.'s code (``PAPER_CODE_PRIORS``) plus the
    constants tuned with them. Pass each entry to ``baselines.get(name, family, num_episodes,
    **options)``.
    """
    if priors not in PRIOR_SETTINGS:
        raise Learn2RLError(f"unknown prior setting {priors!r}; known: {', '.join(PRIOR_SETTINGS)}")
    table = TUNED[priors]
    if num_episodes not in table:
        known = ", ".join(str(n) for n in sorted(table))
        raise Learn2RLError(
            f"the tabular-MDP baselines were tuned for {known} episodes, not {num_episodes!r}"
        )
    options = {
        name: dict(PAPER_CODE_PRIORS[name]) if priors == "paper-code" else {} for name in AGENTS
    }
    for name, value in table[num_episodes].items():
        options[name][TUNING_GRIDS[name][0]] = value
    return options
