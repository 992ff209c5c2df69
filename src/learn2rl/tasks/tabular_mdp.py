"""Random tabular MDPs: a task family of RL^2 (Duan et al. 2016, arXiv 1611.02779, Sec. 3.2).

Every task is a small finite MDP drawn from a fixed prior; an agent meets a new one in each trial
and has ``n`` episodes to learn it. Duan et al. report the average total reward of a trial for
n = 10, 25, 50, 75, 100 episodes (Table 2).

- States ``0 .. num_states - 1`` (10 in the paper), actions ``0 .. num_actions - 1`` (5), episodes
  of ``episode_length`` steps (10). Every episode starts in state 0.
- The task (``TabularParams``), drawn by ``sample_params``: mean rewards
  ``mean_rewards[s, a] ~ N(1, 1)`` and transition probabilities
  ``transitions[s, a, :] ~ Dirichlet(1, ..., 1)`` (flat over next states), all independent.
- A step from state ``s`` with action ``a`` pays ``N(mean_rewards[s, a], 1)`` and moves to a next
  state drawn from ``transitions[s, a, :]``. The step key is split in two: the first half gives the
  standard normal noise of the reward, the second a uniform ``u`` in [0, 1) whose place in the
  cumulative row ``cumsum(transitions[s, a, :])`` picks the next state (inverse-CDF sampling, so a
  plain reference can reproduce a step from the same two numbers).
- Observation: the one-hot vector of the current state (float32, ``num_states`` entries). Nothing
  ever terminates; the base class truncates the episode after ``episode_length`` steps.

Expected rewards (for pseudo-regret): ``expected_reward`` is ``mean_rewards[s, a]`` and
``best_expected_reward`` is ``max_a mean_rewards[s, a]``. This is a *myopic, per-step* reference:
the greedy action need not be the optimal one of the MDP (it ignores where the action leads), so
the pseudo-regret it gives can be negative and is not regret against the optimal policy. For that
reference use ``optimal_values``: the finite-horizon optimal value of the start state, by backward
value iteration on the true task.

Under a uniformly random policy the expected reward of every step is exactly E[mean_rewards] = 1:
the states visited depend only on the transitions and the actions, which are independent of the
mean rewards. A trial of ``n`` episodes of 10 steps thus has expected total reward ``10 n``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import TaskFamily

START_STATE = 0
REWARD_MEAN = 1.0  # mean of the prior over mean rewards
REWARD_PRIOR_STD = 1.0  # its standard deviation
REWARD_NOISE_STD = 1.0  # standard deviation of a reward around its mean


@struct.dataclass
class TabularParams:
    """One task: mean rewards [S, A] and transition probabilities [S, A, S] (rows sum to 1)."""

    mean_rewards: jax.Array
    transitions: jax.Array


@struct.dataclass
class TabularState:
    time: jax.Array  # steps taken in this episode
    state: jax.Array  # the current MDP state, int32 in [0, num_states)


def _positive_int(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise Learn2RLError(f"{name} must be a positive integer, got {value!r}")
    return value


class TabularMDP(TaskFamily):
    """Random finite MDPs: Gaussian rewards, flat-Dirichlet transitions (Duan et al. 2016)."""

    has_expected_reward = True

    def __init__(self, num_states: int = 10, num_actions: int = 5, episode_length: int = 10):
        super().__init__()
        self.num_states = _positive_int("num_states", num_states)
        self._num_actions = _positive_int("num_actions", num_actions)
        self.episode_length = _positive_int("episode_length", episode_length)
        self.family_id = f"mdp/tabular-{num_states}s{num_actions}a"

    @property
    def num_actions(self) -> int:
        return self._num_actions

    @property
    def observation_size(self) -> int:
        return self.num_states

    # --- the prior over tasks --------------------------------------------------------------
    def sample_params(self, key: jax.Array) -> TabularParams:
        key_rewards, key_transitions = jax.random.split(key)
        shape = (self.num_states, self._num_actions)
        mean_rewards = REWARD_MEAN + REWARD_PRIOR_STD * jax.random.normal(key_rewards, shape)
        # Dirichlet(1, ..., 1) is a vector of independent Exponential(1) draws divided by their
        # sum; this is exact and far cheaper to compile than jax.random.dirichlet's gamma sampler.
        weights = jax.random.exponential(key_transitions, shape + (self.num_states,))
        transitions = weights / jnp.sum(weights, axis=-1, keepdims=True)
        return TabularParams(
            mean_rewards=mean_rewards.astype(jnp.float32),
            transitions=transitions.astype(jnp.float32),
        )

    # --- dynamics ----------------------------------------------------------------------------
    def observe(self, state: jax.Array) -> jax.Array:
        return jax.nn.one_hot(state, self.num_states, dtype=jnp.float32)

    @staticmethod
    def step_draws(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The (standard normal reward noise, uniform in [0, 1)) a step draws from its key."""
        key_reward, key_next = jax.random.split(key)
        return jax.random.normal(key_reward, ()), jax.random.uniform(key_next, ())

    def next_state(self, probabilities: jax.Array, uniform: jax.Array) -> jax.Array:
        """The state whose cumulative-probability interval holds ``uniform`` (inverse CDF)."""
        below = jnp.cumsum(probabilities) <= uniform
        # Round-off can leave the last cumulative sum a hair under 1; stay inside the state space.
        return jnp.minimum(jnp.sum(below), self.num_states - 1).astype(jnp.int32)

    def reset_env(self, key: jax.Array, params: TabularParams):
        state = TabularState(time=jnp.int32(0), state=jnp.int32(START_STATE))
        return self.observe(state.state), state

    def step_env(
        self, key: jax.Array, state: TabularState, action: jax.Array, params: TabularParams
    ):
        noise, uniform = self.step_draws(key)
        mean = params.mean_rewards[state.state, action]
        reward = (mean + REWARD_NOISE_STD * noise).astype(jnp.float32)
        following = self.next_state(params.transitions[state.state, action], uniform)
        new_state = TabularState(time=state.time + 1, state=following)
        return self.observe(following), new_state, reward, jnp.asarray(False), {}

    def action_space(self, params=None):
        return spaces.Discrete(self._num_actions)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (self.num_states,), jnp.float32)

    # --- expected rewards (a myopic reference, see the module docstring) ----------------------
    def expected_reward(self, params: TabularParams, state: TabularState, action: jax.Array):
        return params.mean_rewards[state.state, action]

    def best_expected_reward(self, params: TabularParams, state: TabularState):
        return jnp.max(params.mean_rewards[state.state])


def optimal_values(params: TabularParams, horizon: int) -> jax.Array:
    """Finite-horizon optimal value of the start state: the best expected ``horizon``-step return.

    Backward value iteration: ``V_horizon = 0`` and
    ``V_t(s) = max_a (mean_rewards[s, a] + sum_s' transitions[s, a, s'] V_{t+1}(s'))``; returns
    ``V_0(START_STATE)``. The optimum is over non-stationary policies that know the task, so it is
    an upper bound on the expected episode return of any agent. Pure JAX; ``horizon`` is a static
    Python integer; vmap over a batch of tasks with ``jax.vmap(optimal_values, (0, None))``.
    """
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 0:
        raise Learn2RLError(f"horizon must be an integer >= 0, got {horizon!r}")
    mean_rewards = jnp.asarray(params.mean_rewards, jnp.float32)
    transitions = jnp.asarray(params.transitions, jnp.float32)

    def backup(_, values):
        q = mean_rewards + jnp.einsum("san,n->sa", transitions, values)
        return jnp.max(q, axis=1)

    values = jax.lax.fori_loop(0, horizon, backup, jnp.zeros(mean_rewards.shape[0], jnp.float32))
    return values[START_STATE]


TASKS = [
    (
        "mdp/tabular-10s5a",
        TabularMDP,
        "random tabular MDP, 10 states x 5 actions, 10-step episodes from state 0, mean reward "
        "N(1,1), reward noise N(0,1), transitions Dirichlet(1) (Duan et al. 2016 RL^2, Sec. 3.2)",
        {"num_states": 10, "num_actions": 5, "episode_length": 10},
    ),
]
