"""Classical bandit baselines behind the ``Agent`` interface (RL^2 Table 1, Duan et al. 2016).

Every agent keeps per-arm statistics (pulls and reward sums) in its state, updates them from the
trial's previous action and reward (no update at the first step, where ``prev_action`` is -1)
and picks an arm with pure JAX code, so ``act`` runs under ``jax.jit`` and ``jax.vmap``. Tables
that need real work (Gittins indices, the Bayes-optimal policy) are computed once, in numpy
float64, when the agent is built, and ``act`` only looks them up.

- ``random``: a uniformly random arm.
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
- ``gittins``: the discounted Gittins (1979) index of a Beta(1,1) Bernoulli arm, computed by
  calibration against a retirement reward (the "retirement" formulation of Whittle 1980).
- ``bayes-optimal``: the exact finite-horizon Bayes-optimal policy for independent Bernoulli arms
  with uniform priors (dynamic programming over posterior counts, Bellman 1956; Berry & Fristedt
  1985), with a documented fallback when the table is too large (see ``bayes_optimal_method``).

Ties between arms with equal index are broken uniformly at random with the key passed to ``act``;
this matters for the numbers (deterministic lowest-index tie-breaking favours arm 0). See
``docs/baselines.md`` for every detail that changes results.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.bandits import BernoulliBandit, DependentBandit, GaussianBandit
from learn2rl.types import Agent, TrialObs

logger = logging.getLogger(__name__)

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


@struct.dataclass
class DPState:
    """Arm statistics plus the index of the current posterior state in the exact k-arm DP table."""

    counts: ArmCounts
    dp_state: jax.Array  # int32 scalar


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


def random_agent(family, num_pulls: int) -> Agent:
    """Pulls a uniformly random arm at every step."""
    num_arms = family.num_arms
    return _counting_agent(
        "random", num_arms, lambda key, counts: jax.random.randint(key, (), 0, num_arms)
    )


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


# --------------------------------------------------------------------------------------------
# Index tables: discounted and finite-horizon Gittins indices of a Beta(1,1) Bernoulli arm
# --------------------------------------------------------------------------------------------
#
# Both indices are found by calibration (Whittle 1980; Gittins, Glazebrook & Weber 2011, Ch. 8):
# the index of arm state x is the per-pull retirement reward lam at which "pull x now and continue
# optimally, with the option to retire at any later step" and "retire now" are worth the same. With
# g(lam) = (value of pulling now) - (value of retiring now), g is convex, piecewise linear and
# decreasing in lam with slope <= -1, so
#   * one backward induction with a fixed lam gives g and its slope for *every* state at once;
#   * Newton's method started below the root stays below it and converges, and the distance to
#     the root is at most g(lam) (the slope is <= -1), which is our stopping test.
# We run a uniform grid of lam values through the whole state grid (cheap, shared by all states),
# start each state's Newton iteration at the tangent zero from its last grid point with g > 0, and
# polish state by state until g <= _NEWTON_TOL.

_NEWTON_TOL = 1e-10
_LAMBDA_GRID_SIZE = 400  # lam grid points in [0, 1] for the shared first pass
_GITTINS_TRUNCATION_TOL = 1e-7  # bound on the index error from truncating the discounted problem
_INDEX_DECIMALS = 10  # index values are compared after rounding to this many decimals


def state_id(successes, failures):
    """Packed id of a per-arm state (s, f): states are ordered by s + f, then by s."""
    pulls = successes + failures
    return pulls * (pulls + 1) // 2 + successes


def _states_up_to(max_pulls: int) -> tuple[np.ndarray, np.ndarray]:
    """All per-arm states with s + f <= max_pulls, in ``state_id`` order."""
    pulls = np.concatenate([np.full(m + 1, m) for m in range(max_pulls + 1)])
    successes = np.concatenate([np.arange(m + 1) for m in range(max_pulls + 1)])
    return successes, pulls - successes


def gittins_truncation_depth(gamma: float, tol: float = _GITTINS_TRUNCATION_TOL) -> int:
    """Look-ahead depth H after which the discounted calibration problem is truncated.

    At depth H a state's value is replaced by max(lam, mean) / (1 - gamma) (retire or pull forever
    without learning). The true value lies between that and E[max(lam, p)] / (1 - gamma), which is
    at most 1 / (4 (1 - gamma) sqrt(a + b + 1)) above it (half the posterior standard deviation of
    p ~ Beta(a, b), a + b >= H + 2). Discounting by gamma^H and a slope of g <= -1 bound the index
    error by gamma^H / (4 (1 - gamma) sqrt(H + 3)); H is the smallest depth making that <= tol.
    """
    depth = 1
    while gamma**depth / (4.0 * (1.0 - gamma) * math.sqrt(depth + 3.0)) > tol:
        depth += 1
    return depth


def _discounted_calibration(successes, failures, lam, gamma: float, depth: int):
    """g(lam) and dg/dlam of each state for the depth-truncated discounted calibration problem.

    Arrays are [num_states]; each state gets its own look-ahead triangle of ``depth`` levels.
    """
    retire_factor = 1.0 / (1.0 - gamma)
    lam = lam[:, None]
    base_s, base_n = successes[:, None] + 1.0, (successes + failures)[:, None] + 2.0
    offsets = np.arange(depth + 1)[None, :]
    mean = (base_s + offsets) / (base_n + depth)
    value = np.maximum(lam, mean) * retire_factor
    slope = np.where(lam >= mean, retire_factor, 0.0)
    for level in range(depth - 1, -1, -1):
        mean = (base_s + offsets[:, : level + 1]) / (base_n + level)
        pull = mean + gamma * (mean * value[:, 1:] + (1.0 - mean) * value[:, :-1])
        pull_slope = gamma * (mean * slope[:, 1:] + (1.0 - mean) * slope[:, :-1])
        retire = lam * retire_factor
        if level == 0:
            return pull[:, 0] - retire[:, 0], pull_slope[:, 0] - retire_factor
        value = np.maximum(pull, retire)
        slope = np.where(pull > retire, pull_slope, retire_factor)
    raise AssertionError("unreachable")


def _finite_horizon_calibration(successes, failures, lam, horizon: int):
    """g(lam) and dg/dlam for the undiscounted calibration problem with ``horizon`` pulls left.

    g = (expected reward of pulling now, then pulling or retiring optimally) - horizon * lam.
    """
    lam = lam[:, None]
    base_s, base_n = successes[:, None] + 1.0, (successes + failures)[:, None] + 2.0
    offsets = np.arange(horizon + 1)[None, :]
    value = np.zeros((len(successes), horizon + 1))
    slope = np.zeros_like(value)
    for level in range(horizon - 1, -1, -1):
        remaining = horizon - level
        mean = (base_s + offsets[:, : level + 1]) / (base_n + level)
        pull = mean * (1.0 + value[:, 1 : level + 2]) + (1.0 - mean) * value[:, : level + 1]
        pull_slope = mean * slope[:, 1 : level + 2] + (1.0 - mean) * slope[:, : level + 1]
        retire = remaining * lam
        if level == 0:
            return pull[:, 0] - retire[:, 0], pull_slope[:, 0] - remaining
        value = np.maximum(pull, retire)
        slope = np.where(pull > retire, pull_slope, float(remaining))
    raise AssertionError("unreachable")


def _newton_polish(calibrate, lam: np.ndarray, cells_per_state: int) -> np.ndarray:
    """Newton iterations lam <- lam + g / |g'| from below, until g <= _NEWTON_TOL everywhere.

    ``calibrate(indices, lam)`` returns (g, g') of the states ``indices`` at ``lam``; states are
    processed in chunks of about two million DP cells.
    """
    lam = lam.copy()
    chunk = max(1, 2_000_000 // max(cells_per_state, 1))
    for start in range(0, len(lam), chunk):
        todo = np.arange(start, min(start + chunk, len(lam)))
        for _ in range(100):
            g, g_slope = calibrate(todo, lam[todo])
            lam[todo] = lam[todo] + g / -g_slope
            todo = todo[g > _NEWTON_TOL]
            if len(todo) == 0:
                break
        else:
            raise RuntimeError("Gittins index calibration did not converge")
    return lam


class _TangentStart:
    """Running Newton start points from a lam grid: for each state, the tangent zero at the
    largest grid lam with g > 0 (a lower bound on the index, by convexity)."""

    def __init__(self, num_states: int):
        self.start = np.zeros(num_states)

    def update(self, where, lam: np.ndarray, g: np.ndarray, g_slope: np.ndarray):
        """``lam`` [B] increasing; ``g``, ``g_slope`` [B, states]; ``where`` selects the states."""
        positive = g > 0
        has_positive = positive.any(axis=0)
        last = positive.shape[0] - 1 - np.argmax(positive[::-1], axis=0)
        columns = np.arange(g.shape[1])
        tangent_zero = lam[last] + g[last, columns] / -g_slope[last, columns]
        self.start[where] = np.where(has_positive, tangent_zero, self.start[where])


@functools.lru_cache(maxsize=8)
def _gittins_table(num_pulls: int, gamma: float) -> np.ndarray:
    """Discounted Gittins indices of all states with s + f < num_pulls, in ``state_id`` order."""
    depth = gittins_truncation_depth(gamma)
    successes, failures = _states_up_to(num_pulls - 1)
    retire_factor = 1.0 / (1.0 - gamma)
    # Shared pass: the calibration problem for a fixed lam is the same for every start state, so
    # one backward induction over the grid of all states up to depth num_pulls - 1 + depth gives
    # g for every table state at once.
    last_level = num_pulls - 1 + depth
    starts = _TangentStart(len(successes))
    grid = np.linspace(0.0, 1.0, _LAMBDA_GRID_SIZE + 1)
    for batch in np.array_split(grid, max(1, len(grid) // 40)):
        lam = batch[:, None]
        mean = (np.arange(last_level + 1) + 1.0) / (last_level + 2.0)
        value = np.maximum(lam, mean) * retire_factor
        slope = np.where(lam >= mean, retire_factor, 0.0)
        for level in range(last_level - 1, -1, -1):
            mean = (np.arange(level + 1) + 1.0) / (level + 2.0)
            pull = mean + gamma * (mean * value[:, 1:] + (1.0 - mean) * value[:, :-1])
            pull_slope = gamma * (mean * slope[:, 1:] + (1.0 - mean) * slope[:, :-1])
            retire = lam * retire_factor
            if level < num_pulls:
                first = level * (level + 1) // 2
                starts.update(
                    slice(first, first + level + 1),
                    batch,
                    pull - retire,
                    pull_slope - retire_factor,
                )
            value = np.maximum(pull, retire)
            slope = np.where(pull > retire, pull_slope, retire_factor)
    table = _newton_polish(
        lambda idx, lam: _discounted_calibration(successes[idx], failures[idx], lam, gamma, depth),
        starts.start,
        depth * depth // 2,
    )
    table.setflags(write=False)  # cached: callers share it
    return table


def _check_state(successes, failures):
    for name, value in (("successes", successes), ("failures", failures)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise Learn2RLError(f"{name} must be a non-negative integer, got {value!r}")


def _check_gamma(gamma) -> float:
    if not isinstance(gamma, (int, float)) or not 0.0 < gamma < 1.0:
        raise Learn2RLError(f"gamma must be a discount factor in (0, 1), got {gamma!r}")
    return float(gamma)


def gittins_index(successes: int, failures: int, gamma: float) -> float:
    """Discounted Gittins index of a Bernoulli arm with a Beta(1 + successes, 1 + failures)
    posterior (Gittins 1979), accurate to 1e-7 (truncation) + 1e-10 (root finding).

    ``gittins_index(0, 0, 0.9)`` is 0.70289 (Gittins' tables: 0.7029).
    """
    _check_state(successes, failures)
    gamma = _check_gamma(gamma)
    depth = gittins_truncation_depth(gamma)
    s, f = np.array([successes], float), np.array([failures], float)
    start = np.array([(successes + 1.0) / (successes + failures + 2.0)])  # index >= mean
    lam = _newton_polish(
        lambda idx, lam: _discounted_calibration(s, f, lam, gamma, depth), start, depth * depth // 2
    )
    return float(lam[0])


def finite_horizon_gittins_index(successes: int, failures: int, remaining_pulls: int) -> float:
    """Finite-horizon Gittins index (Nino-Mora 2011; Kaufmann 2018) of a Beta(1 + s, 1 + f) arm
    with ``remaining_pulls`` pulls left: the per-pull reward lam at which pulling this arm (with
    optimal stopping) for the remaining pulls and retiring on lam forever are equally good."""
    _check_state(successes, failures)
    horizon = check_num_pulls(remaining_pulls, "remaining_pulls")
    s, f = np.array([successes], float), np.array([failures], float)
    start = np.array([(successes + 1.0) / (successes + failures + 2.0)])
    lam = _newton_polish(
        lambda idx, lam: _finite_horizon_calibration(s, f, lam, horizon),
        start,
        horizon * horizon // 2,
    )
    return float(lam[0])


@functools.lru_cache(maxsize=4)
def _finite_horizon_gittins_table(num_pulls: int) -> np.ndarray:
    """Finite-horizon Gittins indices, [num_pulls + 1, num_states]: row r holds the indices with r
    pulls left (including the current one) of all states with s + f <= num_pulls - r; other
    entries are NaN. Row r = 1 is the posterior mean."""
    num_states = (num_pulls + 1) * (num_pulls + 2) // 2
    table = np.full((num_pulls + 1, num_states), np.nan)
    starts = [_TangentStart((num_pulls - r + 1) ** 2) for r in range(num_pulls + 1)]
    grid = np.linspace(0.0, 1.0, _LAMBDA_GRID_SIZE + 1)
    for batch in np.array_split(grid, max(1, len(grid) // 25)):
        lam = batch[:, None, None]
        value = np.zeros((len(batch), num_pulls + 1, num_pulls + 1))  # [lam, s, f], 0 pulls left
        slope = np.zeros_like(value)
        for remaining in range(1, num_pulls + 1):
            top = num_pulls - remaining  # states with s + f <= top (a square; the rest unused)
            s = np.arange(top + 1)[:, None]
            mean = (s + 1.0) / (s + np.arange(top + 1)[None, :] + 2.0)
            pull = (
                mean * (1.0 + value[:, 1 : top + 2, : top + 1])
                + (1.0 - mean) * value[:, : top + 1, 1 : top + 2]
            )
            pull_slope = (
                mean * slope[:, 1 : top + 2, : top + 1]
                + (1.0 - mean) * slope[:, : top + 1, 1 : top + 2]
            )
            retire = remaining * lam
            starts[remaining].update(
                slice(None),
                batch,
                (pull - retire).reshape(len(batch), -1),
                (pull_slope - remaining).reshape(len(batch), -1),
            )
            value = np.maximum(pull, retire)
            slope = np.where(pull > retire, pull_slope, float(remaining))
    for remaining in range(1, num_pulls + 1):
        top = num_pulls - remaining
        s_square, f_square = np.divmod(np.arange((top + 1) ** 2), top + 1)
        keep = s_square + f_square <= top
        s, f = s_square[keep].astype(float), f_square[keep].astype(float)
        lam = _newton_polish(
            lambda idx, lam, s=s, f=f, r=remaining: _finite_horizon_calibration(
                s[idx], f[idx], lam, r
            ),
            starts[remaining].start[keep],
            remaining * remaining // 2,
        )
        table[remaining, state_id(s_square[keep], f_square[keep])] = lam
    table.setflags(write=False)  # cached: callers share it
    return table


def _ranks(values: np.ndarray) -> np.ndarray:
    """Integer ranks preserving order, equal (to _INDEX_DECIMALS) values sharing a rank; NaN last
    (rank -1). Lets ``act`` compare indices exactly in int32 instead of float32."""
    ranks = np.full(values.shape, -1, np.int32)
    finite = np.isfinite(values)
    _, inverse = np.unique(np.round(values[finite], _INDEX_DECIMALS), return_inverse=True)
    ranks[finite] = inverse
    return ranks


def gittins_agent(family, num_pulls: int, gamma: float = 0.9) -> Agent:
    """Discounted Gittins index policy for Beta(1,1) Bernoulli arms (Gittins 1979).

    The index of every state an arm can reach in ``num_pulls`` pulls is computed at construction
    (discount ``gamma``, default 0.9, truncation error < 1e-7); ``act`` pulls the arm with the
    largest index, ties at random. Beyond ``num_pulls`` pulls it plays greedy (posterior mean).
    """
    gamma = _check_gamma(gamma)
    num_pulls = check_num_pulls(num_pulls)
    rank_table = jnp.asarray(_ranks(_gittins_table(num_pulls, gamma)))

    def choose(key, counts):
        within = jnp.sum(counts.pulls) < num_pulls
        ids = jnp.minimum(
            state_id(_successes(counts), counts.pulls - _successes(counts)), rank_table.shape[0] - 1
        )
        key_index, key_greedy = jax.random.split(key)
        by_index = argmax_random_ties(key_index, rank_table[ids])
        return jnp.where(
            within, by_index, argmax_random_ties(key_greedy, beta_posterior_means(counts))
        )

    return _counting_agent("gittins", family.num_arms, choose)


# --------------------------------------------------------------------------------------------
# Bayes-optimal policy: exact dynamic programming, with fallbacks for large tables
# --------------------------------------------------------------------------------------------

EXACT_TWO_ARM_MAX_ENTRIES = 12_000_000  # decision-table entries of the 2-arm DP (int8)
EXACT_MULTISET_MAX_STATES = 200_000  # posterior states of the k-arm DP
FH_GITTINS_MAX_PULLS = 150  # largest horizon with a finite-horizon Gittins table
_Q_TIE_TOL = 1e-9  # actions whose values differ by less are ties (values are O(num_pulls))


def _two_arm_entries(num_pulls: int) -> int:
    return math.comb(num_pulls + 3, 4)  # sum over t < num_pulls of C(t + 3, 3)


def multiset_state_count(num_arms: int, num_pulls: int, cap: int = 10**12) -> int:
    """Number of posterior states (multisets of per-arm (s, f), t < num_pulls pulls made) of the
    exchangeable k-arm DP, from the generating function prod_m (1 - y x^m)^-(m + 1); counting
    stops early, returning a number > ``cap``, once the count is known to exceed ``cap``."""
    max_used = min(num_arms, num_pulls)
    # ways[u, t]: multisets of u pulled-arm states with t pulls in total (t < num_pulls)
    ways = np.zeros((max_used + 1, num_pulls), np.int64)
    ways[0, 0] = 1
    for pulls_per_arm in range(1, num_pulls):
        for _ in range(pulls_per_arm + 1):  # pulls_per_arm + 1 states (s, f) with that many pulls
            for used in range(1, max_used + 1):  # ascending: a state may occur several times
                ways[used, pulls_per_arm:] += ways[used - 1, : num_pulls - pulls_per_arm]
            np.minimum(ways, cap + 1, out=ways)
        if ways.sum() > cap:  # the count only grows as more states are allowed
            return cap + 1
    return int(ways.sum())


def bayes_optimal_method(num_arms: int, num_pulls: int) -> str:
    """Which policy ``get("bayes-optimal", ...)`` builds for this many arms and pulls.

    - "exact-dp": the exact Bayes-optimal policy. For 2 arms when the decision table (C(n+3, 4)
      entries) has at most ``EXACT_TWO_ARM_MAX_ENTRIES`` (n <= 128); for other k when the number of
      posterior states (``multiset_state_count``) is at most ``EXACT_MULTISET_MAX_STATES``
      (e.g. k = 5, 10, 50 with n = 10; k = 3 with n <= 28).
    - "fh-gittins": otherwise, for n <= ``FH_GITTINS_MAX_PULLS`` (150), the finite-horizon Gittins
      index policy, near-optimal in this setting (Nino-Mora 2011; Kaufmann 2018).
    - "approx-fh-gittins": otherwise (e.g. n = 500, where the finite-horizon Gittins table would
      have 2e7 entries and take hours), the finite-horizon Gittins index interpolated from exact
      values at a few hundred (pulls, pulls left) pairs; see ``approximate_fh_gittins_indices``.
    """
    if num_arms == 2 and _two_arm_entries(num_pulls) <= EXACT_TWO_ARM_MAX_ENTRIES:
        return "exact-dp"
    if (
        num_arms != 2
        and multiset_state_count(num_arms, num_pulls, cap=EXACT_MULTISET_MAX_STATES)
        <= EXACT_MULTISET_MAX_STATES
    ):
        return "exact-dp"
    if num_pulls <= FH_GITTINS_MAX_PULLS:
        return "fh-gittins"
    return "approx-fh-gittins"


@functools.lru_cache(maxsize=4)
def _two_arm_dp(num_pulls: int) -> tuple[float, np.ndarray]:
    """Exact 2-arm DP over (t, m, s1, s2): t pulls made, m of them on arm 0, s1 and s2 successes.

    Returns the Bayes-optimal expected total reward and the packed decision table (int8: 0 or 1
    = the strictly better arm, 2 = tie), laid out as ``_two_arm_entry`` describes.
    """
    value = np.zeros((num_pulls + 1,) * 3)
    decisions = []
    for t in range(num_pulls - 1, -1, -1):
        m = np.arange(t + 1)[:, None, None]
        s1 = np.arange(t + 1)[None, :, None]
        s2 = np.arange(t + 1)[None, None, :]
        mean1, mean2 = (s1 + 1.0) / (m + 2.0), (s2 + 1.0) / (t - m + 2.0)
        nxt = value[: t + 2, : t + 2, : t + 2]
        q1 = mean1 * (1.0 + nxt[1:, 1:, : t + 1]) + (1.0 - mean1) * nxt[1:, : t + 1, : t + 1]
        stay = nxt[: t + 1, : t + 1, : t + 1]
        q2 = mean2 * (1.0 + nxt[: t + 1, : t + 1, 1:]) + (1.0 - mean2) * stay
        decision = np.where(q2 > q1, 1, 0).astype(np.int8)
        decision[np.abs(q1 - q2) <= _Q_TIE_TOL] = 2
        valid = (s1 <= m) & (s2 <= t - m)
        decisions.append(decision[valid])  # row-major (m, s1, s2) order
        value = np.maximum(q1, q2)
    table = np.concatenate(decisions[::-1])
    table.setflags(write=False)
    return float(value[0, 0, 0]), table


def _two_arm_offsets(num_pulls: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets into the packed 2-arm table: per t, and per (t, m) within t."""
    t = np.arange(num_pulls)
    by_t = np.array([math.comb(u + 3, 4) for u in t], np.int64)
    m = np.arange(num_pulls + 1)
    block = (m[None, :] + 1) * (t[:, None] - m[None, :] + 1)  # entries of block m at time t
    by_m = np.concatenate([np.zeros((num_pulls, 1), np.int64), np.cumsum(block, axis=1)[:, :-1]], 1)
    return by_t, by_m


def _two_arm_entry(by_t, by_m, t, m, s1, s2):
    """Position of state (t, m, s1, s2) in the packed table."""
    return by_t[t] + by_m[t, m] + s1 * (t - m + 1) + s2


@dataclass(frozen=True)
class MultisetTables:
    """The exact k-arm DP over exchangeable posterior states (read-only numpy arrays).

    A state is the multiset of per-arm (s, f), stored as ``slot_ids`` [states, slots]: the
    ``state_id`` of the pulled-or-not arms, sorted descending, with 0 for fresh arms (slots =
    min(k, n): at most n arms are ever pulled). Pulling an arm of the class in slot j moves to
    ``next_state[state, j, reward]``. ``optimal[state, j]`` marks the Bayes-optimal slots.
    States are numbered level by level (all pulls-made = 0 states, then 1, ...).
    """

    value: float
    slot_ids: np.ndarray
    next_state: np.ndarray
    optimal: np.ndarray
    level_start: np.ndarray


@functools.lru_cache(maxsize=4)
def _multiset_dp(num_arms: int, num_pulls: int) -> MultisetTables:
    """Exact Bayes-optimal DP for k independent Beta(1,1) Bernoulli arms over multisets of per-arm
    posterior states (arms are exchangeable, so permutations of a state share one value)."""
    slots = min(num_arms, num_pulls)
    successes, failures = _states_up_to(num_pulls)
    mean = (successes + 1.0) / (successes + failures + 2.0)
    can_grow = successes + failures < num_pulls
    success_id = np.where(can_grow, state_id(successes + 1, failures), 0)
    failure_id = np.where(can_grow, state_id(successes, failures + 1), 0)
    id_dtype = np.int16 if len(successes) < 2**15 else np.int32
    levels = [np.zeros((1, slots), id_dtype)]
    transitions = []
    for _ in range(num_pulls):
        states = levels[-1]
        # the first slot of each class is the one to pull (same class = same outcome)
        first_of_class = np.ones(states.shape, bool)
        first_of_class[:, 1:] = states[:, 1:] != states[:, :-1]
        successors = np.repeat(states[:, None, None, :], 2, axis=2).repeat(slots, axis=1)
        columns = np.arange(slots)
        successors[:, columns, 0, columns] = failure_id[states]  # indexed by the reward
        successors[:, columns, 1, columns] = success_id[states]
        successors = -np.sort(-successors, axis=-1)
        chosen = successors[first_of_class]  # [pairs, 2, slots]
        unique, inverse = np.unique(chosen.reshape(-1, slots), axis=0, return_inverse=True)
        next_local = np.full((*states.shape, 2), -1, np.int64)
        next_local[first_of_class] = inverse.reshape(-1, 2)
        levels.append(unique.astype(id_dtype))
        transitions.append(next_local)
    # backward induction
    values = np.zeros(len(levels[-1]))
    optimal_by_level = [np.zeros(levels[-1].shape, bool)]
    for level in range(num_pulls - 1, -1, -1):
        states, nxt = levels[level], transitions[level]
        p = mean[states]
        after_success, after_failure = np.maximum(nxt[..., 1], 0), np.maximum(nxt[..., 0], 0)
        q = p * (1.0 + values[after_success]) + (1.0 - p) * values[after_failure]
        q = np.where(nxt[..., 0] >= 0, q, -np.inf)
        values = q.max(axis=1)
        optimal_by_level.append(q >= values[:, None] - _Q_TIE_TOL)
    level_start = np.cumsum([0] + [len(states) for states in levels])
    next_state = np.concatenate(
        [np.where(nxt >= 0, nxt + level_start[i + 1], -1) for i, nxt in enumerate(transitions)]
        + [np.full((*levels[-1].shape, 2), -1)]
    )
    # after the last pull, stay put (the agent plays greedy beyond the horizon)
    last = np.arange(level_start[-2], level_start[-1])
    next_state[last] = last[:, None, None]
    next_state = np.where(next_state >= 0, next_state, 0).astype(np.int32)
    tables = MultisetTables(
        value=float(values[0]),
        slot_ids=np.concatenate(levels).astype(np.int32),
        next_state=next_state,
        optimal=np.concatenate(optimal_by_level[::-1]),
        level_start=level_start,
    )
    for array in (tables.slot_ids, tables.next_state, tables.optimal, tables.level_start):
        array.setflags(write=False)
    return tables


def bayes_optimal_value(num_arms: int, num_pulls: int) -> float:
    """Expected total reward of the Bayes-optimal policy for ``num_arms`` independent Bernoulli
    arms with uniform priors and ``num_pulls`` pulls (64.9184 for 2 arms and 100 pulls).

    Raises ``Learn2RLError`` when the exact DP is too large (``bayes_optimal_method`` is not
    "exact-dp").
    """
    num_arms, num_pulls = check_num_pulls(num_arms, "num_arms"), check_num_pulls(num_pulls)
    method = bayes_optimal_method(num_arms, num_pulls)
    if method != "exact-dp":
        raise Learn2RLError(
            f"the exact Bayes-optimal DP for {num_arms} arms and {num_pulls} pulls is too large "
            f"(get('bayes-optimal') would use {method!r})"
        )
    if num_arms == 2:
        return _two_arm_dp(num_pulls)[0]
    return _multiset_dp(num_arms, num_pulls).value


@dataclass(frozen=True)
class BudgetGrid:
    """Exploration budgets b = N kl(mean, FH-GI) of the exact finite-horizon Gittins index at a
    grid of (N = pulls + 2, r = pulls left) pairs, for ``approximate_fh_gittins_indices``."""

    pulls_plus_two: np.ndarray  # [P] increasing
    remaining: np.ndarray  # [R] increasing
    budget: np.ndarray  # [P, R]


def _interpolation_nodes(top: int, first: int) -> np.ndarray:
    """``first``, ..., 16 one by one, then 30 geometric steps up to ``top`` (at least 2 nodes)."""
    geometric = np.rint(np.geomspace(16, max(top, 16), 30)).astype(int)
    nodes = np.unique(np.concatenate([np.arange(first, 17), geometric]).clip(first, top))
    return nodes if len(nodes) > 1 else np.array([first, first + 1])


@functools.lru_cache(maxsize=4)
def fh_gittins_budget_grid(num_pulls: int) -> BudgetGrid:
    """The exact finite-horizon Gittins index of the near-symmetric states s = floor(m/2),
    f = ceil(m/2) at a grid of m = s + f (0..15, then geometric to n - 1) and r (1..16, then
    geometric to n), expressed as the KL budget N kl(mean, index), N = m + 2. Pairs with
    m + r > n, which no trial reaches, copy their neighbour at smaller r."""
    pulls_grid = _interpolation_nodes(num_pulls - 1, 0)
    remaining_grid = _interpolation_nodes(num_pulls, 1)
    budget = np.zeros((len(pulls_grid), len(remaining_grid)))
    successes = (pulls_grid // 2).astype(float)
    failures = pulls_grid - successes
    mean = (successes + 1.0) / (pulls_grid + 2.0)
    for column, remaining in enumerate(remaining_grid):
        rows = np.nonzero(pulls_grid + remaining <= num_pulls)[0]
        index = _newton_polish(
            lambda idx, lam, rows=rows, r=int(remaining): _finite_horizon_calibration(
                successes[rows][idx], failures[rows][idx], lam, r
            ),
            mean[rows],
            int(remaining) ** 2 // 2,
        )
        p, q = mean[rows], np.maximum(index, mean[rows])
        kl = p * np.log(p / q) + (1.0 - p) * np.log((1.0 - p) / (1.0 - q))
        budget[rows, column] = (pulls_grid[rows] + 2.0) * kl
        unreached = np.setdiff1d(np.arange(len(pulls_grid)), rows)
        if column > 0:
            budget[unreached, column] = budget[unreached, column - 1]
    grid = BudgetGrid(pulls_grid + 2.0, remaining_grid.astype(float), budget)
    for array in (grid.pulls_plus_two, grid.remaining, grid.budget):
        array.setflags(write=False)
    return grid


def _log_interpolation(nodes: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Left node index and weight of x for linear interpolation in log(x) (x clipped to range)."""
    log_nodes = jnp.log(nodes)
    log_x = jnp.log(jnp.clip(x, nodes[0], nodes[-1]))
    left = jnp.clip(jnp.searchsorted(log_nodes, log_x, side="right") - 1, 0, len(nodes) - 2)
    return left, (log_x - log_nodes[left]) / (log_nodes[left + 1] - log_nodes[left])


def approximate_fh_gittins_indices(
    counts: ArmCounts, num_pulls: int, grid: BudgetGrid
) -> jax.Array:
    """The finite-horizon Gittins index, interpolated, for horizons too long to tabulate it:

        max{q >= m_i : N_i kl(m_i, q) <= b(N_i, r)},  N_i = pulls_i + 2,  m_i = (s_i + 1) / N_i,

    with kl the Bernoulli relative entropy (inverted by 30 bisection steps) and r the pulls left.
    This KL form of the index is the one Kaufmann (2018, Sec. 5) uses to approximate the
    finite-horizon Gittins index (her exploration level is ln(r / N)); here the budget b(N, r) is
    instead taken from the exact index of near-symmetric states (``fh_gittins_budget_grid``),
    interpolated bilinearly in (log N, log r), so only the dependence of b on the posterior mean
    is approximated. At n = 100 it gets within 0.2 of the exact finite-horizon Gittins policy
    (docs/baselines.md).
    """
    pulls = counts.pulls.astype(jnp.float32) + 2.0
    mean = (counts.reward_sums + 1.0) / pulls
    remaining = jnp.maximum(num_pulls - jnp.sum(counts.pulls), 1).astype(jnp.float32)
    table = jnp.asarray(grid.budget, jnp.float32)
    row, row_weight = _log_interpolation(jnp.asarray(grid.pulls_plus_two, jnp.float32), pulls)
    column, column_weight = _log_interpolation(jnp.asarray(grid.remaining, jnp.float32), remaining)
    budget = (
        (1 - row_weight) * (1 - column_weight) * table[row, column]
        + row_weight * (1 - column_weight) * table[row + 1, column]
        + (1 - row_weight) * column_weight * table[row, column + 1]
        + row_weight * column_weight * table[row + 1, column + 1]
    ) / pulls

    def kl(p, q):
        q = jnp.clip(q, 1e-12, 1.0 - 1e-12)
        return p * jnp.log(p / q) + (1.0 - p) * jnp.log((1.0 - p) / (1.0 - q))

    def bisect(_, bounds):
        low, high = bounds
        middle = 0.5 * (low + high)
        inside = kl(mean, middle) <= budget
        return jnp.where(inside, middle, low), jnp.where(inside, high, middle)

    low, _ = jax.lax.fori_loop(0, 30, bisect, (mean, jnp.ones_like(mean)))
    return low


BAYES_OPTIMAL_METHODS = ("exact-dp", "fh-gittins", "approx-fh-gittins")


def bayes_optimal_agent(family, num_pulls: int, method: str | None = None) -> Agent:
    """The Bayes-optimal policy for independent Beta(1,1) Bernoulli arms over ``num_pulls`` pulls,
    or its fallback (see ``bayes_optimal_method``). Among optimal arms (values within 1e-9) the
    agent picks uniformly at random; beyond ``num_pulls`` pulls it plays greedy.

    ``method`` forces one of ``BAYES_OPTIMAL_METHODS`` (for comparisons); a method more expensive
    than the automatic choice raises ``Learn2RLError``, as its table would be too large.
    """
    num_arms, num_pulls = family.num_arms, check_num_pulls(num_pulls)
    automatic = bayes_optimal_method(num_arms, num_pulls)
    if method is None:
        method = automatic
    elif method not in BAYES_OPTIMAL_METHODS:
        raise Learn2RLError(
            f"unknown bayes-optimal method {method!r}; known: {', '.join(BAYES_OPTIMAL_METHODS)}"
        )
    elif BAYES_OPTIMAL_METHODS.index(method) < BAYES_OPTIMAL_METHODS.index(automatic):
        raise Learn2RLError(
            f"method {method!r} is too expensive for {num_arms} arms and "
            f"{num_pulls} pulls; the most exact feasible one is {automatic!r}"
        )
    if method != "exact-dp":
        logger.info("bayes-optimal, %d arms, %d pulls: using %s", num_arms, num_pulls, method)

    def greedy(key, counts):
        return argmax_random_ties(key, beta_posterior_means(counts))

    if method == "exact-dp" and num_arms == 2:
        _, table = _two_arm_dp(num_pulls)
        decisions = jnp.asarray(table)
        by_t, by_m = (jnp.asarray(a, jnp.int32) for a in _two_arm_offsets(num_pulls))

        def choose(key, counts):
            t = jnp.sum(counts.pulls)
            within = t < num_pulls
            safe_t = jnp.minimum(t, num_pulls - 1)
            m = jnp.minimum(counts.pulls[0], safe_t)
            s1, s2 = jnp.minimum(_successes(counts), jnp.stack([m, safe_t - m]))
            decision = decisions[_two_arm_entry(by_t, by_m, safe_t, m, s1, s2)]
            key_tie, key_greedy = jax.random.split(key)
            coin = jax.random.randint(key_tie, (), 0, 2)
            by_dp = jnp.where(decision == 2, coin, decision).astype(jnp.int32)
            return jnp.where(within, by_dp, greedy(key_greedy, counts))

        return _counting_agent("bayes-optimal", num_arms, choose)

    if method == "exact-dp":
        tables = _multiset_dp(num_arms, num_pulls)
        slot_ids, next_state = jnp.asarray(tables.slot_ids), jnp.asarray(tables.next_state)
        optimal = jnp.asarray(tables.optimal)

        def init(key, task_params=None):
            return DPState(counts=initial_counts(num_arms), dp_state=jnp.int32(0))

        def act(key, state, trial_obs):
            counts = state.counts
            # move the DP state along the class of the arm pulled last (its state before the pull)
            pulled = jnp.maximum(trial_obs.prev_action, 0)
            pulled_id = state_id(
                _successes(counts)[pulled], counts.pulls[pulled] - _successes(counts)[pulled]
            )
            slot = jnp.argmax(slot_ids[state.dp_state] == pulled_id)
            reward = (trial_obs.prev_reward > 0.5).astype(jnp.int32)
            moved = next_state[state.dp_state, slot, reward]
            dp_state = jnp.where(trial_obs.prev_action >= 0, moved, state.dp_state)
            counts = update_counts(counts, trial_obs)
            successes = _successes(counts)
            arm_ids = state_id(successes, counts.pulls - successes)
            best_ids = jnp.where(optimal[dp_state], slot_ids[dp_state], -1)
            eligible = jnp.any(arm_ids[:, None] == best_ids[None, :], axis=1)
            key_tie, key_greedy = jax.random.split(key)
            within = jnp.sum(counts.pulls) < num_pulls
            action = jnp.where(within, uniform_among(key_tie, eligible), greedy(key_greedy, counts))
            return action, DPState(counts=counts, dp_state=dp_state)

        return Agent(name="bayes-optimal", init=init, act=act)

    if method == "fh-gittins":
        table = _finite_horizon_gittins_table(num_pulls)
        rank_table = jnp.asarray(_ranks(table))  # [remaining, state id]; NaN entries unreachable

        def choose(key, counts):
            t = jnp.sum(counts.pulls)
            remaining = jnp.clip(num_pulls - t, 1, num_pulls)
            successes = _successes(counts)
            ids = jnp.minimum(
                state_id(successes, counts.pulls - successes), rank_table.shape[1] - 1
            )
            key_index, key_greedy = jax.random.split(key)
            by_index = argmax_random_ties(key_index, rank_table[remaining, ids])
            return jnp.where(t < num_pulls, by_index, greedy(key_greedy, counts))

        return _counting_agent("bayes-optimal", num_arms, choose)

    grid = fh_gittins_budget_grid(num_pulls)
    return _counting_agent(
        "bayes-optimal",
        num_arms,
        lambda key, counts: argmax_random_ties(
            key, approximate_fh_gittins_indices(counts, num_pulls, grid)
        ),
    )
