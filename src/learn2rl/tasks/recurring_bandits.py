"""Contextual bandits whose contexts recur: the "barcode" bandits of Ritter et al. 2018, "Been
There, Done That: Meta-Learning with Episodic Recall" (ICML 2018, arXiv 1805.09692).

Words. Ritter et al.'s *episode* is ``pulls_per_episode`` pulls of one bandit, shown together with
its *context* (a binary "barcode"); their *epoch* is a sequence of ``num_episodes`` such episodes
in which every context recurs. Here one learn2rl trial is one epoch, and the family's gymnax
episode is the whole epoch (``episode_length = num_episodes * pulls_per_episode``), so a learn2rl
trial of this family has ``num_episodes=1``: the environment has to know which of Ritter's
episodes it is in to show the right context, and a trial resets an environment at every gymnax
episode end. ``episode_of(time)`` and ``pull_of(time)`` locate a step; agents that keep a
working memory per episode (``learners.episodic.episodic_lstm``) reset it at ``pull_of == 0``.

A task (``sample_params``), following the paper's appendix ("we first sampled a set of unique
contexts, and paired each element of that set randomly with one of the possible rewarding arm
positions, ensuring that each rewarding arm position was paired with at least one context ...
sampling uniformly without replacement" from a bag holding each pair once per repetition):

- ``num_contexts`` distinct barcodes of ``barcode_size`` random bits (fresh for every task, so
  nothing about a barcode can be learnt into the weights);
- a rewarding arm per context: a random permutation of the arms for the first ``num_arms``
  contexts (every arm is some context's rewarding arm when there are at least as many contexts
  as arms), uniform for the rest, then shuffled;
- the schedule: which context each episode shows, a random order of a bag holding every context
  ``num_episodes / num_contexts`` times (the counts differ by at most one when that is not
  whole).

The first episode of a context is *novel* (nothing about it can be known), every later one is
*returning*: the fraction of novel episodes is ``num_contexts / num_episodes`` (the paper: 10
contexts in 100 episodes, 10%), so ``num_contexts`` is the option that sets it. A pull of the
context's rewarding arm pays 1 with probability ``best_probability``, any other arm with
``other_probability`` (0.9 and 0.1 by default). The observation is the current context's barcode
(0/1 floats); rewards are drawn per pull, so a returning context is the same bandit with fresh
draws.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import TaskFamily


@struct.dataclass
class RecurringBanditParams:
    """One task (one epoch): the contexts, their rewarding arms and the order they are shown in."""

    barcodes: jax.Array  # float32 [num_contexts, barcode_size], 0/1, distinct rows
    best_arm: jax.Array  # int32 [num_contexts]: the rewarding arm of each context
    schedule: jax.Array  # int32 [num_episodes]: the context each episode shows


@struct.dataclass
class RecurringBanditState:
    time: jax.Array  # pulls so far in the epoch


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise Learn2RLError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _probability(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise Learn2RLError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def distinct_barcodes(key: jax.Array, num: int, size: int) -> jax.Array:
    """``num`` distinct rows of ``size`` uniform random bits (float32 0/1): rows equal to an
    earlier row are drawn again until none is (a round or two when ``2**size`` is far above
    ``num``; more as it nears ``num``)."""
    earlier = jnp.tril(jnp.ones((num, num), bool), k=-1)

    def duplicates(bits):
        same = jnp.all(bits[:, None, :] == bits[None, :, :], axis=-1)
        return jnp.any(same & earlier, axis=1)  # [num]: equals an earlier row

    def redraw(carry):
        key, bits = carry
        key, sub = jax.random.split(key)
        fresh = jax.random.bernoulli(sub, 0.5, bits.shape)
        return key, jnp.where(duplicates(bits)[:, None], fresh, bits)

    key, sub = jax.random.split(key)
    bits = jax.random.bernoulli(sub, 0.5, (num, size))
    _, bits = jax.lax.while_loop(lambda c: jnp.any(duplicates(c[1])), redraw, (key, bits))
    return bits.astype(jnp.float32)


class RecurringContextBandit(TaskFamily):
    """Barcode-labelled Bernoulli bandits whose contexts recur within a trial (module doc)."""

    has_expected_reward = True

    def __init__(
        self,
        num_arms: int = 10,
        pulls_per_episode: int = 10,
        num_episodes: int = 100,
        num_contexts: int = 10,
        barcode_size: int = 16,
        best_probability: float = 0.9,
        other_probability: float = 0.1,
    ):
        super().__init__()
        self.num_arms = _positive_int("num_arms", num_arms, minimum=2)
        self.pulls_per_episode = _positive_int("pulls_per_episode", pulls_per_episode)
        self.num_episodes = _positive_int("num_episodes", num_episodes)
        self.num_contexts = _positive_int("num_contexts", num_contexts)
        self.barcode_size = _positive_int("barcode_size", barcode_size)
        if num_contexts > num_episodes:
            raise Learn2RLError(
                f"num_contexts ({num_contexts}) must not exceed num_episodes ({num_episodes}): "
                "every context is shown at least once"
            )
        if barcode_size < 31 and 2**barcode_size < num_contexts:
            raise Learn2RLError(
                f"barcode_size ({barcode_size}) is too small for {num_contexts} distinct "
                f"barcodes: 2**barcode_size must be at least num_contexts"
            )
        self.best_probability = _probability("best_probability", best_probability)
        self.other_probability = _probability("other_probability", other_probability)
        if not self.best_probability > self.other_probability:
            raise Learn2RLError(
                f"best_probability must exceed other_probability, got {best_probability} <= "
                f"{other_probability}"
            )
        self.episode_length = self.num_episodes * self.pulls_per_episode
        self.family_id = "bandit/recurring-context"

    @property
    def num_actions(self) -> int:
        return self.num_arms

    @property
    def novel_fraction(self) -> float:
        """The fraction of episodes that show a context for the first time."""
        return self.num_contexts / self.num_episodes

    # --- the prior ----------------------------------------------------------------------------
    def sample_params(self, key: jax.Array) -> RecurringBanditParams:
        k_codes, k_perm, k_rest, k_pair, k_order = jax.random.split(key, 5)
        num_arms, num_contexts = self.num_arms, self.num_contexts
        arms = jax.random.permutation(k_perm, num_arms)
        extra = jax.random.randint(k_rest, (max(num_contexts - num_arms, 0),), 0, num_arms)
        best = jax.random.permutation(k_pair, jnp.concatenate([arms, extra])[:num_contexts])
        bag = jnp.arange(self.num_episodes, dtype=jnp.int32) % num_contexts
        return RecurringBanditParams(
            barcodes=distinct_barcodes(k_codes, num_contexts, self.barcode_size),
            best_arm=best.astype(jnp.int32),
            schedule=jax.random.permutation(k_order, bag),
        )

    # --- where a step is ------------------------------------------------------------------
    def episode_of(self, time: jax.Array) -> jax.Array:
        """Ritter's episode (0-based) a pull at ``time`` belongs to (the last one past the end)."""
        return jnp.minimum(time // self.pulls_per_episode, self.num_episodes - 1)

    def pull_of(self, time: jax.Array) -> jax.Array:
        """The pull's index (0-based) within its episode."""
        return time % self.pulls_per_episode

    def context_at(self, params: RecurringBanditParams, time: jax.Array) -> jax.Array:
        """The index of the context shown at ``time``."""
        return params.schedule[self.episode_of(time)]

    def novel(self, params: RecurringBanditParams) -> jax.Array:
        """``[num_episodes]`` bool: whether each episode shows its context for the first time."""
        schedule = params.schedule
        earlier = jnp.tril(jnp.ones((self.num_episodes,) * 2, bool), k=-1)
        seen = jnp.any((schedule[:, None] == schedule[None, :]) & earlier, axis=1)
        return jnp.logical_not(seen)

    def means(self, params: RecurringBanditParams) -> jax.Array:
        """``[num_contexts, num_arms]``: each context's reward probability per arm."""
        rewarding = jax.nn.one_hot(params.best_arm, self.num_arms, dtype=jnp.bool_)
        return jnp.where(rewarding, self.best_probability, self.other_probability)

    # --- the environment --------------------------------------------------------------------
    def observe(self, params: RecurringBanditParams, state: RecurringBanditState) -> jax.Array:
        return params.barcodes[self.context_at(params, state.time)]

    def reset_env(self, key: jax.Array, params: RecurringBanditParams):
        state = RecurringBanditState(time=jnp.int32(0))
        return self.observe(params, state), state

    def expected_reward(self, params, state: RecurringBanditState, action) -> jax.Array:
        return self.means(params)[self.context_at(params, state.time), action]

    def best_expected_reward(self, params, state: RecurringBanditState) -> jax.Array:
        return jnp.float32(self.best_probability)

    def step_env(self, key: jax.Array, state: RecurringBanditState, action: jax.Array, params):
        probability = self.expected_reward(params, state, action)
        reward = jax.random.bernoulli(key, probability).astype(jnp.float32)
        new_state = RecurringBanditState(time=state.time + 1)
        return self.observe(params, new_state), new_state, reward, jnp.asarray(False), {}

    def action_space(self, params=None):
        return spaces.Discrete(self.num_arms)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (self.barcode_size,), jnp.float32)


TASKS: list = [
    (
        "bandit/recurring-context",
        RecurringContextBandit,
        "Barcode bandits with recurring contexts: 100 episodes of 10 pulls, 10 arms, 10 contexts "
        "shown 10 times each; the context's arm pays 1 w.p. 0.9, others 0.1 (Ritter et al. 2018)",
        {},
    ),
]
