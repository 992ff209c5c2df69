"""Reference agents for the two-step task (``learn2rl.tasks.two_step``; Daw et al. 2011, Wang et
al. 2016). All are ``types.Agent``s; the experiment ``wang2016-twostep`` runs them beside RL^2.

- ``random``: a coin flip at both stages (0.5 reward per two-step trial); the generic
  ``baselines.generic`` agent.
- ``oracle`` (privileged): knows the good state of every two-step trial and picks the action whose
  common transition leads there (0.75 * 0.9 + 0.25 * 0.1 = 0.7 per two-step trial).
- ``model-free``: cached first-stage values learned by SARSA(lambda = 1) (Daw et al. 2011's
  model-free learner with w = 0): after the reward r of a two-step trial,
  Q1[a1] += alpha (r - Q1[a1]); softmax choice. The transition does not enter its update.
- ``model-based``: knows the transition probabilities, learns second-stage state values
  Q2[s] += alpha (r - Q2[s]) and plans Q1[a] = p_common Q2[a] + (1 - p_common) Q2[1 - a]
  (Daw et al. 2011, w = 1); softmax choice.
- ``ideal-observer``: knows the whole generative model (transition and reward probabilities, swap
  rate) but not the task: a Bayesian belief that state A is good, updated from each reward and
  the swap hazard, and a greedy first-stage choice. With p_good + p_bad = 1 (0.9 / 0.1) an
  outcome in either state is evidence for the truth with the same probability and strength, so
  the choice does not change what is learned and greedy is Bayes-optimal: the physical limit for
  a non-privileged agent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from learn2rl.baselines.generic import random_agent
from learn2rl.tasks.two_step import STAGE1, STATE_A, TwoStepTask
from learn2rl.types import Agent


def _softmax_choice(key, values, beta):
    return jax.random.categorical(key, beta * values).astype(jnp.int32)


def oracle_agent(family: TwoStepTask) -> Agent:
    """Knows ``good[t]``; picks the first-stage action whose common state is good."""
    length = family.episode_length

    def init(key, task):
        return task.good

    def act(key, good, obs):
        t = (obs.step % length) // family.num_stages
        return good[t].astype(jnp.int32), good

    return Agent("oracle", init, act, privileged=True)


def _learning_agent(name: str, initial_memory, learn, plan, beta: float) -> Agent:
    """Shared bookkeeping of the hand-written learners. They remember the first-stage action and
    the second-stage state of the running two-step trial; at the next stage-1 observation they
    learn from ``prev_reward`` (that trial's second-stage reward) with
    ``learn(memory, first_action, second_state, reward)``, then choose the first-stage action by a
    softmax (inverse temperature ``beta``) over ``plan(memory)``. The second-stage action, which
    does not matter, is a coin flip."""

    def init(key, task):
        return {
            "memory": initial_memory,
            "first_action": jnp.int32(0),
            "second_state": jnp.int32(0),
            "seen": jnp.asarray(False),  # a second stage has been reached in this RL^2 trial
        }

    def act(key, state, obs):
        location = jnp.argmax(obs.obs).astype(jnp.int32)
        at_stage1 = location == STAGE1
        learned = learn(
            state["memory"], state["first_action"], state["second_state"], obs.prev_reward
        )
        memory = jax.tree.map(
            lambda new, old: jnp.where(at_stage1 & state["seen"], new, old),
            learned,
            state["memory"],
        )
        key_first, key_second = jax.random.split(key)
        action = jnp.where(
            at_stage1,
            _softmax_choice(key_first, plan(memory), beta),
            jax.random.randint(key_second, (), 0, 2, jnp.int32),
        )
        new_state = {
            "memory": memory,
            "first_action": jnp.where(at_stage1, action, state["first_action"]),
            "second_state": jnp.where(at_stage1, state["second_state"], location - STATE_A),
            "seen": jnp.logical_or(state["seen"], ~at_stage1),
        }
        return action, new_state

    return Agent(name, init, act)


def model_free_agent(alpha: float = 0.5, beta: float = 5.0) -> Agent:
    """SARSA(1) cached first-stage values: the reward updates the chosen action's value,
    whatever transition happened (Daw et al. 2011, model-free, lambda = 1)."""

    def learn(q1, first_action, second_state, reward):
        return q1.at[first_action].add(alpha * (reward - q1[first_action]))

    return _learning_agent("model-free", jnp.full((2,), 0.5), learn, lambda q1: q1, beta)


def model_based_agent(family: TwoStepTask, alpha: float = 0.5, beta: float = 5.0) -> Agent:
    """Learns second-stage state values and plans with the known transition probabilities."""
    c = family.p_common

    def learn(q2, first_action, second_state, reward):
        return q2.at[second_state].add(alpha * (reward - q2[second_state]))

    def plan(q2):
        return c * q2 + (1 - c) * q2[::-1]

    return _learning_agent("model-based", jnp.full((2,), 0.5), learn, plan, beta)


def ideal_observer_agent(family: TwoStepTask) -> Agent:
    """Bayesian belief b = P(state A is good) under the true generative model; greedy choice."""
    p_good, p_bad, hazard = family.p_good, family.p_bad, family.swap_prob

    def learn(belief, first_action, second_state, reward):
        rewarded = reward > 0
        # Probability of reward in the visited state if A is good / if B is good.
        p_if_a = jnp.where(second_state == 0, p_good, p_bad)
        p_if_b = jnp.where(second_state == 0, p_bad, p_good)
        like_a = jnp.where(rewarded, p_if_a, 1 - p_if_a)
        like_b = jnp.where(rewarded, p_if_b, 1 - p_if_b)
        posterior = belief * like_a / (belief * like_a + (1 - belief) * like_b)
        return posterior * (1 - hazard) + (1 - posterior) * hazard  # a swap may come next

    def plan(belief):
        return jnp.stack([belief, 1 - belief])

    # A huge beta makes the softmax greedy; it breaks the 50/50 tie of the first choice at random.
    return _learning_agent("ideal-observer", jnp.float32(0.5), learn, plan, 1e4)


# The registry's table: factory(family, num_episodes, **options).
def _model_free(family, num_episodes: int, alpha: float = 0.5, beta: float = 5.0) -> Agent:
    return model_free_agent(alpha, beta)


def _model_based(family, num_episodes: int, alpha: float = 0.5, beta: float = 5.0) -> Agent:
    return model_based_agent(family, alpha, beta)


BASELINES = {
    "random": lambda family, num_episodes: random_agent(family),
    "oracle": lambda family, num_episodes: oracle_agent(family),
    "model-free": _model_free,
    "model-based": _model_based,
    "ideal-observer": lambda family, num_episodes: ideal_observer_agent(family),
}
