"""Classical bandit baselines behind the ``Agent`` interface (RL^2 Table 1, Duan et al. 2016).

Every agent keeps per-arm statistics (pulls and reward sums) in its state, updates them from the
trial's previous action and reward (no update at the first step, where ``prev_action`` is -1)
and picks an arm with pure JAX code, so ``act`` runs under ``jax.jit`` and ``jax.vmap``. This
module holds those statistics and the simple agents; the index and dynamic-programming agents,
whose tables are computed once in numpy float64 when the agent is built (``act`` only looks them
up), live in ``baselines.gittins`` and ``baselines.bayes_optimal``.

- ``random``: a uniformly random arm (``baselines.generic.random_agent``, shared by every family).
- ``greedy`` / ``eps-greedy``: the arm with the highest estimated mean (the Beta(1,1) posterior
  mean for 0/1 rewards, the sample mean with unpulled arms first for Gaussian rewards); eps-greedy
  plays a uniformly random arm with probability epsilon (default 0.1).
- ``ucb1``: Auer, Cesa-Bianchi & Fischer (2002), index mean_i + c sqrt(2 ln t / n_i), c = 1 by
  default. By default the Beta(1,1) prior enters as pseudo-counts (n_i = pulls_i + 2, mean_i =
  (s_i + 1) / n_i), as in RL^2's evaluation code; RL^2 Table 1 also tuned c per setting, and
  only a tuned c (0.1 to 0.2) reproduces its UCB1 column.
- ``thompson``: Thompson (1933) sampling, Beta(1,1) posteriors for 0/1 rewards, Normal-Normal
  posteriors for Gaussian arms.
- ``oracle``: knows the task and always pulls the arm with the highest mean.
- ``gittins`` (``baselines.gittins``): the discounted Gittins (1979) index of a Beta(1,1)
  Bernoulli arm, computed by calibration against a retirement reward (the "retirement"
  formulation of Whittle 1980).
- ``bayes-optimal`` (``baselines.bayes_optimal``): the exact finite-horizon Bayes-optimal policy
  for independent Bernoulli arms with uniform priors (dynamic programming over posterior counts,
  Bellman 1956; Berry & Fristedt 1985), with a documented fallback when the table is too large
  (see ``bayes_optimal_method``).

Ties between arms with equal index are broken uniformly at random with the key passed to ``act``;
this matters for the numbers (deterministic lowest-index tie-breaking favours arm 0). See
``docs/baselines.md`` for every detail that changes results.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.bandits import BernoulliBandit, DependentBandit, GaussianBandit
from learn2rl.types import Agent, TrialObs

# --------------------------------------------------------------------------------------------
# Family inspection
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardModel:
    """What an agent assumes about one arm: 0/1 rewards with a Beta(1,1) prior, or Gaussian.

    For Gaussian arms, ``prior_mean`` / ``prior_std`` give the prior on the arm mean and
    ``noise_std`` the reward noise (taken from the task family).
    """

    kind: str  # "binary" or "gaussian"
    prior_mean: float = 0.5
    prior_std: float = 1.0
    noise_std: float = 1.0


def reward_model(family) -> RewardModel:
    """The reward model of a bandit family; raises ``Learn2RLError`` for non-bandit families."""
    if isinstance(family, (BernoulliBandit, DependentBandit)):
        return RewardModel("binary")
    if isinstance(family, GaussianBandit):
        return RewardModel(
            "gaussian", float(family.prior_mean), float(family.prior_std), float(family.noise_std)
        )
    raise Learn2RLError(
        f"the classical baselines need a bandit task family (Bernoulli, dependent or Gaussian "
        f"arms), got {type(family).__name__}"
    )


def has_uniform_bernoulli_prior(family) -> bool:
    """True for independent Bernoulli arms with p ~ U[0,1], the setting where the Beta(1,1)
    Gittins index and the independent-arm Bayes-optimal policy are what their names claim."""
    return isinstance(family, BernoulliBandit) and family.low == 0.0 and family.high == 1.0


# --------------------------------------------------------------------------------------------
# Shared pieces of every agent: per-arm statistics and random tie-breaking
# --------------------------------------------------------------------------------------------


@struct.dataclass
class ArmCounts:
    """Per-arm statistics of one trial: number of pulls and sum of rewards."""

    pulls: jax.Array  # int32 [num_arms]
    reward_sums: jax.Array  # float32 [num_arms]


def initial_counts(num_arms: int) -> ArmCounts:
    return ArmCounts(
        pulls=jnp.zeros((num_arms,), jnp.int32), reward_sums=jnp.zeros((num_arms,), jnp.float32)
    )


def update_counts(counts: ArmCounts, trial_obs: TrialObs) -> ArmCounts:
    """Add the previous pull to the statistics; a no-op when ``prev_action`` is -1 (first step)."""
    pulled = jnp.arange(counts.pulls.shape[0]) == trial_obs.prev_action
    return ArmCounts(
        pulls=counts.pulls + pulled.astype(jnp.int32),
        reward_sums=counts.reward_sums + jnp.where(pulled, trial_obs.prev_reward, 0.0),
    )


def argmax_random_ties(key: jax.Array, values: jax.Array) -> jax.Array:
    """Index of the largest value; among equal largest values, a uniformly random one."""
    tie_noise = jax.random.uniform(key, values.shape)
    return jnp.argmax(jnp.where(values == jnp.max(values), tie_noise, -1.0)).astype(jnp.int32)


def uniform_among(key: jax.Array, eligible: jax.Array) -> jax.Array:
    """A uniformly random index among the ``True`` entries of a boolean vector."""
    tie_noise = jax.random.uniform(key, eligible.shape)
    return jnp.argmax(jnp.where(eligible, tie_noise, -1.0)).astype(jnp.int32)


def beta_posterior_means(counts: ArmCounts) -> jax.Array:
    """Posterior means (s_i + 1) / (n_i + 2) of Bernoulli arms under a Beta(1,1) prior."""
    return (counts.reward_sums + 1.0) / (counts.pulls.astype(jnp.float32) + 2.0)


def _successes(counts: ArmCounts) -> jax.Array:
    return jnp.round(counts.reward_sums).astype(jnp.int32)


def check_num_pulls(num_pulls, what: str = "num_pulls") -> int:
    """``num_pulls`` as an int; ``Learn2RLError`` unless it is a positive integer."""
    is_integer = isinstance(num_pulls, (int, np.integer)) and not isinstance(num_pulls, bool)
    if not is_integer or num_pulls <= 0:
        raise Learn2RLError(f"{what} must be a positive integer, got {num_pulls!r}")
    return int(num_pulls)


def _counting_agent(name: str, num_arms: int, choose) -> Agent:
    """An agent whose state is just ``ArmCounts``; ``choose(key, counts)`` picks the arm."""

    def init(key, task_params=None):
        return initial_counts(num_arms)

    def act(key, counts, trial_obs):
        counts = update_counts(counts, trial_obs)
        return choose(key, counts), counts

    return Agent(name=name, init=init, act=act)


# --------------------------------------------------------------------------------------------
# Random, greedy, epsilon-greedy, UCB1, Thompson sampling, oracle
# --------------------------------------------------------------------------------------------


def greedy_values(counts: ArmCounts, model: RewardModel) -> jax.Array:
    """Greedy's estimate of each arm's mean.

    0/1 rewards: the Beta(1,1) posterior mean (s + 1) / (n + 2), so an unpulled arm counts as 0.5.
    Gaussian rewards: the sample mean, with +inf for unpulled arms (each arm is tried once first).
    """
    if model.kind == "binary":
        return beta_posterior_means(counts)
    pulls = counts.pulls.astype(jnp.float32)
    return jnp.where(counts.pulls > 0, counts.reward_sums / jnp.maximum(pulls, 1.0), jnp.inf)


def ucb1_indices(
    counts: ArmCounts, model: RewardModel, prior_pseudo_counts: bool, exploration: float = 1.0
) -> jax.Array:
    """UCB1 indices mean_i + c * scale * sqrt(2 ln t / n_i) (Auer et al. 2002, Fig. 1; c = 1).

    t is the number of pulls so far plus one (the 1-based round). With ``prior_pseudo_counts`` the
    conjugate prior enters as pseudo-observations: for 0/1 rewards Beta(1,1) adds 2 pulls and 1
    success (n_i = pulls_i + 2, mean_i = (s_i + 1) / (pulls_i + 2)); for Gaussian arms the prior
    N(m0, s0^2) adds (noise_std / s0)^2 pulls at m0. Without them n_i = pulls_i, the mean is the
    sample mean and unpulled arms get +inf (played first). ``scale`` is 1 for 0/1 rewards and
    ``noise_std`` for Gaussian ones (the sub-Gaussian form of the bonus); ``exploration`` is c.
    """
    pulls = counts.pulls.astype(jnp.float32)
    round_index = jnp.sum(pulls) + 1.0
    if model.kind == "binary":
        pseudo_pulls, pseudo_sum, scale = 2.0, 1.0, 1.0
    else:
        pseudo_pulls = (model.noise_std / model.prior_std) ** 2
        pseudo_sum, scale = pseudo_pulls * model.prior_mean, model.noise_std
    if prior_pseudo_counts:
        n = pulls + pseudo_pulls
        mean = (counts.reward_sums + pseudo_sum) / n
        return mean + exploration * scale * jnp.sqrt(2.0 * jnp.log(round_index) / n)
    safe_n = jnp.maximum(pulls, 1.0)
    bonus = exploration * scale * jnp.sqrt(2.0 * jnp.log(round_index) / safe_n)
    index = counts.reward_sums / safe_n + bonus
    return jnp.where(counts.pulls > 0, index, jnp.inf)


def thompson_posterior(counts: ArmCounts, model: RewardModel) -> tuple[jax.Array, jax.Array]:
    """Parameters of each arm's posterior.

    0/1 rewards: Beta(alpha, beta) = Beta(s + 1, f + 1). Gaussian arms with prior N(m0, s0^2) and
    noise sigma: Normal(mean, std) with precision 1/s0^2 + n/sigma^2 and
    mean = (m0/s0^2 + sum/sigma^2) / precision.
    """
    pulls = counts.pulls.astype(jnp.float32)
    if model.kind == "binary":
        return counts.reward_sums + 1.0, pulls - counts.reward_sums + 1.0
    precision = 1.0 / model.prior_std**2 + pulls / model.noise_std**2
    mean = model.prior_mean / model.prior_std**2 + counts.reward_sums / model.noise_std**2
    return mean / precision, 1.0 / jnp.sqrt(precision)


def greedy_agent(family, num_pulls: int) -> Agent:
    """Pulls the arm with the highest ``greedy_values`` estimate (random ties)."""
    model = reward_model(family)
    return _counting_agent(
        "greedy",
        family.num_arms,
        lambda key, counts: argmax_random_ties(key, greedy_values(counts, model)),
    )


def epsilon_greedy_agent(family, num_pulls: int, epsilon: float = 0.1) -> Agent:
    """With probability ``epsilon`` a uniformly random arm (maybe the greedy one), else greedy."""
    if not 0.0 <= epsilon <= 1.0:
        raise Learn2RLError(f"epsilon must be in [0, 1], got {epsilon}")
    model, num_arms = reward_model(family), family.num_arms

    def choose(key, counts):
        key_explore, key_arm, key_ties = jax.random.split(key, 3)
        greedy_arm = argmax_random_ties(key_ties, greedy_values(counts, model))
        random_arm = jax.random.randint(key_arm, (), 0, num_arms)
        return jnp.where(jax.random.uniform(key_explore) < epsilon, random_arm, greedy_arm)

    return _counting_agent("eps-greedy", num_arms, choose)


def ucb1_agent(
    family, num_pulls: int, prior_pseudo_counts: bool = True, exploration: float = 1.0
) -> Agent:
    """UCB1 (Auer et al. 2002); see ``ucb1_indices``.

    ``prior_pseudo_counts=True`` (the default) counts the Beta(1,1) prior as 2 pulls and 1 success,
    as RL^2's evaluation code does; without them the first k pulls are a round-robin, which alone
    caps the total at k=50, n=100 near 70. ``exploration`` is the coefficient c (default 1, Auer
    et al.'s UCB1). RL^2 Table 1 reports the best c in {0, 0.1, ..., 1} per setting; with the
    pseudo-counts and c = 0.2 we get 84.8 at n=100, k=50 (paper 84.3), with c = 1 only 59.9.
    """
    if not exploration >= 0.0:
        raise Learn2RLError(f"exploration must be >= 0, got {exploration}")
    model = reward_model(family)
    return _counting_agent(
        "ucb1",
        family.num_arms,
        lambda key, counts: argmax_random_ties(
            key, ucb1_indices(counts, model, bool(prior_pseudo_counts), exploration)
        ),
    )


def thompson_agent(family, num_pulls: int) -> Agent:
    """Thompson sampling: draw one mean per arm from its posterior, pull the largest."""
    model = reward_model(family)

    def choose(key, counts):
        key_sample, key_ties = jax.random.split(key)
        first, second = thompson_posterior(counts, model)
        if model.kind == "binary":
            draws = jax.random.beta(key_sample, first, second)
        else:
            draws = first + second * jax.random.normal(key_sample, first.shape)
        return argmax_random_ties(key_ties, draws)

    return _counting_agent("thompson", family.num_arms, choose)


def oracle_agent(family, num_pulls: int) -> Agent:
    """Privileged: receives the task and always pulls the arm with the highest mean (ties: a
    random one of them, fixed for the trial)."""
    reward_model(family)

    def init(key, task_params):
        return argmax_random_ties(key, task_params.means)

    def act(key, best_arm, trial_obs):
        return best_arm, best_arm

    return Agent(name="oracle", init=init, act=act, privileged=True)
