"""The Harlow task, "learning to learn" (Harlow 1949, Psychol. Rev. 56:51), as used by Wang et al.
2016 (arXiv 1611.05763) to show one-shot learning of a new object-reward association.

Words. Harlow's *trial* is one presentation of a pair of objects; here it is called a
*presentation*. A task is one pair of novel objects; a learn2rl *trial* (RL^2's) runs
``num_episodes`` presentations of the same pair (6 in Harlow's and Wang et al.'s protocol).

Our version replaces Harlow's objects (and Wang et al.'s images) by random feature vectors:

- A task (``sample_params``) is two objects, each a vector of ``num_features`` (8) independent
  N(0, 1) features. Object 0 is the rewarded one; since the objects are exchangeable draws and
  their screen positions are random, the index carries no information an agent could see.
- One episode is one presentation, one environment step: ``reset_env`` puts the objects on the left
  and right at random (object 1 on the left iff ``uniform(key) < 0.5``); the observation is
  ``[left features, right features]``. Action 0 picks the left object, 1 the right one. Picking the
  rewarded object pays ``correct_reward`` (1), the other ``incorrect_reward`` (0 by default; -1 is
  also allowed), and the episode ends. A new presentation of the same pair follows, with a fresh
  random left/right placement drawn by the trial's reset.

The left/right placement is the nuisance that makes the task one of object identity: the previous
action (left/right) alone says nothing about which side to pick now; an agent has to remember which
*object* it chose and compare it with the objects in front of it. The first presentation of a pair
is a coin flip (50% at best); after it, an agent that keeps the rewarded object (win-stay,
lose-shift on objects) is always right, so the best expected total over 6 presentations is
0.5 + 5 = 5.5 correct choices.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import TaskFamily


@struct.dataclass
class HarlowParams:
    """One task: the two objects' feature vectors; object 0 is the rewarded one."""

    objects: jax.Array  # float32 [2, num_features]


@struct.dataclass
class HarlowState:
    time: jax.Array  # steps in this episode (0 before the choice, 1 after)
    left: jax.Array  # index (0 or 1) of the object shown on the left


class HarlowTask(TaskFamily):
    """Pairs of random feature-vector objects; one presentation per episode (see module doc)."""

    has_expected_reward = True
    episode_length = 1

    def __init__(
        self,
        num_features: int = 8,
        correct_reward: float = 1.0,
        incorrect_reward: float = 0.0,
    ):
        super().__init__()
        if not isinstance(num_features, int) or isinstance(num_features, bool) or num_features < 1:
            raise Learn2RLError(
                f"num_features (features per object) must be a positive integer, "
                f"got {num_features!r}"
            )
        for name, value in (
            ("correct_reward", correct_reward),
            ("incorrect_reward", incorrect_reward),
        ):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise Learn2RLError(f"{name} must be a number, got {value!r}")
        if not correct_reward > incorrect_reward:
            raise Learn2RLError(
                f"correct_reward must exceed incorrect_reward, got {correct_reward} <= "
                f"{incorrect_reward}"
            )
        self.num_features = num_features
        self.correct_reward = float(correct_reward)
        self.incorrect_reward = float(incorrect_reward)
        self.family_id = "harlow/vectors"

    @property
    def num_actions(self) -> int:
        return 2

    def sample_params(self, key: jax.Array) -> HarlowParams:
        return HarlowParams(objects=jax.random.normal(key, (2, self.num_features), jnp.float32))

    def observe(self, params: HarlowParams, state: HarlowState) -> jax.Array:
        """``[left object's features, right object's features]``."""
        left = params.objects[state.left]
        right = params.objects[1 - state.left]
        return jnp.concatenate([left, right]).astype(jnp.float32)

    def reset_env(self, key: jax.Array, params: HarlowParams):
        left = (jax.random.uniform(key) < 0.5).astype(jnp.int32)
        state = HarlowState(time=jnp.int32(0), left=left)
        return self.observe(params, state), state

    def chosen_object(self, state: HarlowState, action: jax.Array) -> jax.Array:
        return jnp.where(jnp.asarray(action) == 0, state.left, 1 - state.left)

    def expected_reward(self, params: HarlowParams, state: HarlowState, action) -> jax.Array:
        correct = self.chosen_object(state, action) == 0
        return jnp.where(correct, self.correct_reward, self.incorrect_reward).astype(jnp.float32)

    def best_expected_reward(self, params: HarlowParams, state: HarlowState) -> jax.Array:
        return jnp.float32(self.correct_reward)

    def step_env(self, key: jax.Array, state: HarlowState, action: jax.Array, params):
        reward = self.expected_reward(params, state, action)  # rewards are deterministic
        new_state = HarlowState(time=state.time + 1, left=state.left)
        return self.observe(params, new_state), new_state, reward, jnp.asarray(False), {}

    def action_space(self, params=None):
        return spaces.Discrete(2)

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (2 * self.num_features,), jnp.float32)


TASKS: list = [
    (
        "harlow/vectors",
        HarlowTask,
        "Harlow task: a pair of novel objects (8 random N(0,1) features each) in random left/right "
        "places; reward 1 for the rewarded object, 0 else; one presentation per episode "
        "(Harlow 1949, Wang et al. 2016)",
        {"num_features": 8},
    ),
]
