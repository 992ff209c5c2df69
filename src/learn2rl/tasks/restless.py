"""Restless two-armed bandits whose volatility varies from task to task.

Wang et al. 2016 (arXiv 1611.05763, Sec. 3.1) after Behrens et al. 2007 ("Learning the value of
information in an uncertain world"): the reward probabilities of two Bernoulli arms change during a
trial, and how often they change (the volatility) differs between trials, so a good learner must
adapt its own learning rate: learn slowly when the world is stable, fast when it is volatile.

Dynamics. A trial is one episode of ``num_pulls`` pulls (100 by default). Before each pull t >= 1
a change happens with probability ``hazard`` (the per-pull hazard rate); at pull 0 and at every
change the arm probabilities are drawn afresh:

- ``arms="dependent"`` (default, as in Behrens et al.): p ~ U[0, 1], arm 0 pays 1 with probability
  p and arm 1 with probability 1 - p. Both arms tell the same story, so every pull is equally
  informative and the greedy choice under the exact posterior is Bayes-optimal.
- ``arms="independent"``: both probabilities drawn independently from U[0, 1] at each change.

The hazard of a task is one of the family's ``hazards`` levels, chosen uniformly.

Tasks are data: the whole path of probabilities (change times and new values) is drawn in
``sample_params`` and stored in the task parameters (``probs``, shape [num_pulls, 2]). So a
held-out test task is the same sequence of arm probabilities for every agent and every run,
pseudo-regret and the oracle can read the current probabilities, and only the Bernoulli reward
draws come from the step keys. Drawing changes from the step key instead would make the change path
depend on the evaluation seed and leave the expected reward of an action undefined as a function of
(task, state).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import TaskFamily

# Per-pull hazard rates of the default family: on average about 1, 3, 10 and 30 changes in 100
# pulls, from a nearly stable world to one where a run of the same probabilities lasts ~3 pulls.
DEFAULT_HAZARDS = (0.01, 0.03, 0.1, 0.3)
ARM_KINDS = ("dependent", "independent")


@struct.dataclass
class RestlessParams:
    """One task: its volatility and the whole path of arm probabilities."""

    level: jax.Array  # int32 scalar: index into the family's ``hazards``
    hazard: jax.Array  # float32 scalar: probability of a change before each pull t >= 1
    probs: jax.Array  # float32 [num_pulls, 2]: P(reward = 1) of each arm at each pull
    changes: jax.Array  # bool [num_pulls]: True where new probabilities were drawn (pull 0 too)


class RestlessBandit(TaskFamily):
    """Two Bernoulli arms whose probabilities jump at random times, at a task-specific hazard."""

    has_expected_reward = True

    def __init__(
        self,
        num_pulls: int = 100,
        hazards: tuple[float, ...] | list[float] = DEFAULT_HAZARDS,
        arms: str = "dependent",
    ):
        super().__init__()
        if not isinstance(num_pulls, int) or isinstance(num_pulls, bool) or num_pulls < 1:
            raise Learn2RLError(f"num_pulls must be a positive integer, got {num_pulls!r}")
        try:
            levels = tuple(float(h) for h in hazards)
        except (TypeError, ValueError):
            raise Learn2RLError(
                f"hazards must be a sequence of numbers in [0, 1], got {hazards!r}"
            ) from None
        if not levels or any(not 0.0 <= h <= 1.0 for h in levels):
            raise Learn2RLError(
                f"hazards must be a non-empty list of numbers in [0, 1], got {hazards!r}"
            )
        if list(levels) != sorted(set(levels)):
            raise Learn2RLError(f"hazards must be distinct and increasing, got {hazards!r}")
        if arms not in ARM_KINDS:
            raise Learn2RLError(f"arms must be one of {', '.join(ARM_KINDS)}, got {arms!r}")
        self.num_arms = 2
        self.episode_length = num_pulls
        self.hazards = levels
        self.arms = arms
        self.family_id = "bandit/restless-2arm"

    @property
    def num_pulls(self) -> int:
        return self.episode_length

    @property
    def num_actions(self) -> int:
        return 2

    def sample_params(self, key: jax.Array) -> RestlessParams:
        key_level, key_changes, key_values = jax.random.split(key, 3)
        level = jax.random.randint(key_level, (), 0, len(self.hazards), jnp.int32)
        hazard = jnp.asarray(self.hazards, jnp.float32)[level]
        steps = jnp.arange(self.num_pulls)
        changes = jax.random.uniform(key_changes, (self.num_pulls,)) < hazard
        changes = changes.at[0].set(True)
        # The probabilities in force at pull t are those drawn at the last change at or before t.
        last_change = jax.lax.cummax(jnp.where(changes, steps, 0))
        if self.arms == "dependent":
            p = jax.random.uniform(key_values, (self.num_pulls,))
            drawn = jnp.stack([p, 1.0 - p], axis=1)
        else:
            drawn = jax.random.uniform(key_values, (self.num_pulls, 2))
        return RestlessParams(level=level, hazard=hazard, probs=drawn[last_change], changes=changes)

    def current_probs(self, params: RestlessParams, state) -> jax.Array:
        """The arm probabilities at the state's pull (the last ones once the episode is over)."""
        return params.probs[jnp.minimum(state.time, self.num_pulls - 1)]

    def reset_env(self, key: jax.Array, params: RestlessParams):
        return jnp.zeros((0,), jnp.float32), environment.EnvState(time=jnp.int32(0))

    def step_env(self, key: jax.Array, state, action: jax.Array, params: RestlessParams):
        p = self.current_probs(params, state)[action]
        reward = jax.random.bernoulli(key, p).astype(jnp.float32)
        new_state = environment.EnvState(time=state.time + 1)
        return jnp.zeros((0,), jnp.float32), new_state, reward, jnp.asarray(False), {}

    def expected_reward(self, params: RestlessParams, state, action: jax.Array) -> jax.Array:
        return self.current_probs(params, state)[action]

    def best_expected_reward(self, params: RestlessParams, state) -> jax.Array:
        return jnp.max(self.current_probs(params, state))

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (0,), jnp.float32)


TASKS: list = [
    (
        "bandit/restless-2arm",
        RestlessBandit,
        "2 restless arms p, 1-p, redrawn at hazard h in {0.01,0.03,0.1,0.3} per pull; 100 pulls "
        "(Wang et al. 2016)",
        {"num_pulls": 100, "hazards": DEFAULT_HAZARDS, "arms": "dependent"},
    ),
    (
        "bandit/restless-2arm-independent",
        RestlessBandit,
        "2 restless independent arms, both redrawn U[0,1] at hazard h in {0.01,0.03,0.1,0.3}; "
        "100 pulls",
        {"num_pulls": 100, "hazards": DEFAULT_HAZARDS, "arms": "independent"},
    ),
]
