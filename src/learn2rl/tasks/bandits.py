"""Multi-armed bandit task families.

- ``BernoulliBandit``: independent Bernoulli arms, p_i ~ U[0, 1] (Duan et al. 2016 Table 1; Wang et
  al. 2016 independent-arm bandits).
- ``GaussianBandit``: independent Gaussian arms, mean_i ~ N(prior_mean, prior_std^2), reward noise
  N(0, noise_std^2).
- ``DependentBandit``: two arms with p_1 = 1 - p_2 (Wang et al. 2016, arXiv 1611.05763, Sec. 3.1.1):
  p_2 ~ U[0, 1] ("uniform"), or p_2 drawn from {x, 1 - x} with x = 0.1 ("easy"), 0.25 ("medium"),
  0.4 ("hard").

By default one episode is one pull, as in Duan et al. (2016), where a trial of n episodes is n
pulls;
``pulls_per_episode`` changes that. The environment observation is an empty vector: everything an
agent can know arrives through the trial's previous action and reward.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import TaskFamily


@struct.dataclass
class BanditParams:
    """One bandit task: per-arm reward means, and per-arm reward noise for Gaussian arms."""

    means: jax.Array  # [num_arms]
    noise_std: jax.Array  # [num_arms]; unused by Bernoulli arms


def _check_positive(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise Learn2RLError(f"{name} must be a positive integer, got {value!r}")
    return value


class _Bandit(TaskFamily):
    """Shared reset/step of every bandit; subclasses define the prior and the reward draw."""

    has_expected_reward = True

    def __init__(self, num_arms: int, pulls_per_episode: int = 1):
        super().__init__()
        self.num_arms = _check_positive("num_arms", num_arms)
        self.episode_length = _check_positive("pulls_per_episode", pulls_per_episode)

    @property
    def num_actions(self) -> int:
        return self.num_arms

    def draw_reward(self, key: jax.Array, params: BanditParams, action: jax.Array) -> jax.Array:
        raise NotImplementedError

    def reset_env(self, key: jax.Array, params: BanditParams):
        return jnp.zeros((0,), jnp.float32), environment.EnvState(time=jnp.int32(0))

    def step_env(self, key: jax.Array, state, action: jax.Array, params: BanditParams):
        reward = self.draw_reward(key, params, action)
        new_state = environment.EnvState(time=state.time + 1)
        terminated = jnp.asarray(False)
        return jnp.zeros((0,), jnp.float32), new_state, reward, terminated, {}

    def expected_reward(self, params: BanditParams, state, action: jax.Array) -> jax.Array:
        return params.means[action]

    def best_expected_reward(self, params: BanditParams, state) -> jax.Array:
        return jnp.max(params.means)

    def action_space(self, params=None):
        return spaces.Discrete(self.num_arms)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (0,), jnp.float32)


class BernoulliBandit(_Bandit):
    """Independent Bernoulli arms with success probabilities p_i ~ U[low, high]."""

    def __init__(
        self, num_arms: int = 2, pulls_per_episode: int = 1, low: float = 0.0, high: float = 1.0
    ):
        super().__init__(num_arms, pulls_per_episode)
        if not 0.0 <= low < high <= 1.0:
            raise Learn2RLError(f"need 0 <= low < high <= 1 for Bernoulli arms, got {low}, {high}")
        self.low, self.high = float(low), float(high)
        self.family_id = f"bandit/independent-{num_arms}arm"

    def sample_params(self, key: jax.Array) -> BanditParams:
        means = jax.random.uniform(key, (self.num_arms,), minval=self.low, maxval=self.high)
        return BanditParams(means=means, noise_std=jnp.zeros((self.num_arms,)))

    def draw_reward(self, key, params, action):
        return jax.random.bernoulli(key, params.means[action]).astype(jnp.float32)


class GaussianBandit(_Bandit):
    """Independent Gaussian arms: mean_i ~ N(prior_mean, prior_std^2), noise N(0, noise_std^2)."""

    def __init__(
        self,
        num_arms: int = 2,
        pulls_per_episode: int = 1,
        prior_mean: float = 0.0,
        prior_std: float = 1.0,
        noise_std: float = 1.0,
    ):
        super().__init__(num_arms, pulls_per_episode)
        if prior_std <= 0 or noise_std <= 0:
            raise Learn2RLError(
                f"prior_std and noise_std must be positive, got {prior_std}, {noise_std}"
            )
        self.prior_mean, self.prior_std, self.noise_std = prior_mean, prior_std, noise_std
        self.family_id = f"bandit/gaussian-{num_arms}arm"

    def sample_params(self, key):
        means = self.prior_mean + self.prior_std * jax.random.normal(key, (self.num_arms,))
        return BanditParams(means=means, noise_std=jnp.full((self.num_arms,), self.noise_std))

    def draw_reward(self, key, params, action):
        return params.means[action] + params.noise_std[action] * jax.random.normal(key)


# Wang et al. 2016 dependent-arm priors: p_2 is x or 1 - x with equal probability.
DEPENDENT_PRIORS: dict[str, float | None] = {
    "uniform": None,
    "easy": 0.1,
    "medium": 0.25,
    "hard": 0.4,
}


class DependentBandit(_Bandit):
    """Two Bernoulli arms with p_1 = 1 - p_2 and one of Wang et al.'s priors on p_2."""

    def __init__(self, prior: str = "uniform", pulls_per_episode: int = 1):
        super().__init__(2, pulls_per_episode)
        if prior not in DEPENDENT_PRIORS:
            raise Learn2RLError(
                f"unknown dependent-bandit prior {prior!r}; known: {', '.join(DEPENDENT_PRIORS)}"
            )
        self.prior = prior
        self.family_id = f"bandit/dependent-{prior}"

    def sample_params(self, key):
        x = DEPENDENT_PRIORS[self.prior]
        if x is None:
            p2 = jax.random.uniform(key)
        else:
            p2 = jnp.where(jax.random.bernoulli(key), x, 1.0 - x)
        means = jnp.stack([1.0 - p2, p2])
        return BanditParams(means=means, noise_std=jnp.zeros((2,)))

    def draw_reward(self, key, params, action):
        return jax.random.bernoulli(key, params.means[action]).astype(jnp.float32)
