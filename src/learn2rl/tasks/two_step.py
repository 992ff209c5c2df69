"""The two-step task (Daw et al. 2011, Neuron 69:1204) in the form Wang et al. 2016 used
(arXiv 1611.05763, its two-step experiment).

Words. Daw's *two-step trial* is one pass through the task: a first-stage choice, a transition to a
second-stage state, a second-stage action and its reward. learn2rl's *trial* (RL^2's) is a whole run
on one task. Here one learn2rl *episode* holds ``num_trials`` two-step trials (100 by default,
so 200 environment steps), and an RL^2 trial is usually that one episode. Names below say
"two-step trial" whenever they mean Daw's.

Dynamics of two-step trial t (two environment steps):

1. Stage 1 (observation one-hot index 0). Action ``a`` in {0, 1} leads to its *common* second-stage
   state ``a`` (0 = state A, 1 = state B) with probability ``p_common`` (0.75), else to the other
   (*rare*) one. Reward 0. The draw is ``uniform(key) < p_common`` with the step's key.
2. Stage 2 (one-hot index 1 for A, 2 for B). Any action (the choice does not matter) gets reward 1
   with probability ``p_good`` (0.9) in the *good* state ``good[t]`` and ``p_bad`` (0.1) in the
   other: ``uniform(key) < p``. Then back to stage 1 of two-step trial t + 1.

Which state is good is task data: ``sample_params`` draws the good state of the first two-step trial
uniformly and, before each later two-step trial, swaps it with probability ``swap_prob``, and stores
the resulting schedule ``good[0..num_trials-1]``. So every agent run on test task i faces the same
reversals. ``swap_prob`` is 0.025 per two-step trial: our choice, the reversal rate used for the
meta-RL two-step simulations of Wang et al. (the 2018 Nat. Neurosci. 21:860 version of the paper
states 2.5% per trial).

Expected rewards (for pseudo-regret) are credited to the first-stage choice: at stage 1,
``expected_reward(a)`` is the expected reward of the two-step trial that ``a`` starts (0.7 for the
action whose common state is good, 0.3 for the other, with the defaults); at stage 2 every action
is equally good, so both the expected and the best expected reward are 0 there. Summed over an
episode this is the expected total reward, and the oracle that always picks the action whose
common state is good has zero regret (0.75 * 0.9 + 0.25 * 0.1 = 0.7 per two-step trial; a random
agent gets 0.5).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import TaskFamily

STAGE1, STATE_A, STATE_B = 0, 1, 2  # ``location`` values = index of the one-hot observation


@struct.dataclass
class TwoStepParams:
    """One task: the good second-stage state (0 = A, 1 = B) of every two-step trial."""

    good: jax.Array  # int32 [num_trials]
    swaps: jax.Array  # bool [num_trials]; swaps[t]: good[t] != good[t - 1] (swaps[0] is False)


@struct.dataclass
class TwoStepState:
    time: jax.Array  # environment steps taken in this episode (two per two-step trial)
    location: jax.Array  # STAGE1, STATE_A or STATE_B


def _probability(name: str, value, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Learn2RLError(f"{name} must be a probability in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0 or (low_open and value == 0.0):
        raise Learn2RLError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


class TwoStepTask(TaskFamily):
    """Daw et al.'s two-step task with reversals of the good second-stage state (see module doc)."""

    has_expected_reward = True
    num_stages = 2  # environment steps per two-step trial

    def __init__(
        self,
        num_trials: int = 100,
        p_common: float = 0.75,
        p_good: float = 0.9,
        p_bad: float = 0.1,
        swap_prob: float = 0.025,
    ):
        super().__init__()
        if not isinstance(num_trials, int) or isinstance(num_trials, bool) or num_trials <= 0:
            raise Learn2RLError(
                f"num_trials (two-step trials per episode) must be a positive integer, "
                f"got {num_trials!r}"
            )
        self.num_trials = num_trials
        self.p_common = _probability("p_common", p_common)
        if self.p_common <= 0.5:
            raise Learn2RLError(
                f"p_common must lie in (0.5, 1] (the common transition is the likelier one), "
                f"got {p_common!r}"
            )
        self.p_good = _probability("p_good", p_good)
        self.p_bad = _probability("p_bad", p_bad)
        if not self.p_good > self.p_bad:
            raise Learn2RLError(
                f"p_good must exceed p_bad (the good state pays more), got {p_good} <= {p_bad}"
            )
        self.swap_prob = _probability("swap_prob", swap_prob)
        self.episode_length = self.num_stages * num_trials
        self.family_id = "twostep/daw2011"

    @property
    def num_actions(self) -> int:
        return 2

    @property
    def trial_value(self) -> tuple[float, float]:
        """Expected reward of a two-step trial after choosing the action whose common state is
        (good, bad): (0.7, 0.3) with the defaults."""
        c = self.p_common
        return c * self.p_good + (1 - c) * self.p_bad, c * self.p_bad + (1 - c) * self.p_good

    # --- the prior ------------------------------------------------------------------------------
    def sample_params(self, key: jax.Array) -> TwoStepParams:
        key_first, key_swaps = jax.random.split(key)
        first = jax.random.bernoulli(key_first).astype(jnp.int32)
        swaps = jax.random.uniform(key_swaps, (self.num_trials,)) < self.swap_prob
        swaps = swaps.at[0].set(False)
        good = (first + jnp.cumsum(swaps.astype(jnp.int32))) % 2
        return TwoStepParams(good=good.astype(jnp.int32), swaps=swaps)

    # --- dynamics -------------------------------------------------------------------------------
    def observe(self, state: TwoStepState) -> jax.Array:
        return jax.nn.one_hot(state.location, 3, dtype=jnp.float32)

    def trial_index(self, state: TwoStepState) -> jax.Array:
        """The two-step trial (0-based) the state belongs to, clipped to the last one."""
        return jnp.minimum(state.time // self.num_stages, self.num_trials - 1)

    def reset_env(self, key: jax.Array, params: TwoStepParams):
        state = TwoStepState(time=jnp.int32(0), location=jnp.int32(STAGE1))
        return self.observe(state), state

    def step_env(self, key: jax.Array, state: TwoStepState, action: jax.Array, params):
        u = jax.random.uniform(key)
        action = jnp.asarray(action, jnp.int32)
        at_stage1 = state.location == STAGE1
        # Stage 1: common transition to state `action`, rare to the other.
        second = jnp.where(u < self.p_common, action, 1 - action)
        # Stage 2: reward from the state's probability under the current two-step trial.
        good = params.good[self.trial_index(state)]
        p = jnp.where(state.location - STATE_A == good, self.p_good, self.p_bad)
        reward = jnp.where(at_stage1, 0.0, (u < p).astype(jnp.float32))
        location = jnp.where(at_stage1, STATE_A + second, STAGE1).astype(jnp.int32)
        new_state = TwoStepState(time=state.time + 1, location=location)
        return self.observe(new_state), new_state, reward, jnp.asarray(False), {}

    # --- expected rewards (credited to the first-stage choice) ---------------------------------
    def expected_reward(self, params: TwoStepParams, state: TwoStepState, action) -> jax.Array:
        value_good, value_bad = self.trial_value
        good = params.good[self.trial_index(state)]
        first_stage = jnp.where(action == good, value_good, value_bad)
        return jnp.where(state.location == STAGE1, first_stage, 0.0).astype(jnp.float32)

    def best_expected_reward(self, params: TwoStepParams, state: TwoStepState) -> jax.Array:
        return jnp.where(state.location == STAGE1, self.trial_value[0], 0.0).astype(jnp.float32)

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (3,), jnp.float32)


TASKS: list = [
    (
        "twostep/daw2011",
        TwoStepTask,
        "two-step task: common transition 0.75, good state pays 0.9 (other 0.1), swaps w.p. "
        "0.025 per two-step trial; 100 two-step trials (200 steps) per episode (Daw 2011, "
        "Wang et al. 2016)",
        {"num_trials": 100},
    ),
]
