"""The episodic LSTM with reinstatement (epLSTM): Ritter et al. 2018, "Been There, Done That:
Meta-Learning with Episodic Recall" (ICML 2018, arXiv 1805.09692).

An RL^2 agent (an LSTM meta-trained by A2C, the previous action and reward in its input; Wang et
al. 2016) forgets a task when the next begins: its working memory, the LSTM state, starts empty
in every episode. The epLSTM adds an episodic memory that lasts for the whole trial (Ritter's
epoch), a differentiable neural dictionary (``ops/dnd.py``) whose keys are contexts and whose
values are LSTM cell states:

    write, at the end of each episode:  key = the episode's context, value = the cell state c_T;
    read, at every step:                c_ep = sum_i w_i c_i over the ``num_neighbours`` stored
                                        keys nearest the current context (DND kernel weights);
    the cell (i, f, o, g as in an LSTM, fused gates as in ``nets.recurrent.LSTMCell``):
        r_t = sigmoid(W_r [x_t, h_{t-1}] + b_r)                     (the reinstatement gate)
        c_t = f_t * c_{t-1} + i_t * tanh(g_t) + r_t * tanh(c_ep)
        h_t = o_t * tanh(c_t)

so when a context returns, the cell state its last episode ended in is reinstated and the agent
can exploit at once what it found then. With ``match_input`` (the default; not in the paper)
``x_t`` also carries ``1 / (1 + d^2)``, ``d`` the distance from the context to the nearest stored
key, so the gate can tell a returning context (1) from a novel one whose read is another
context's state. Switches: ``memory=False`` is the plain LSTM baseline
(no dictionary, no reinstatement gate, everything else the same: the working memory is still
reset at every episode), and ``agent(params, retrieval=False)`` evaluates a trained epLSTM with
reading turned off (``c_ep = 0``, so the reinstatement term vanishes; writes still happen).

Implementation notes.
- The task family is ``tasks/recurring_bandits.py``, whose gymnax episode is the whole trial;
  the network finds Ritter's episode boundaries from the trial's step index (``pull = step mod
  pulls_per_episode``), resets its working memory at ``pull == 0`` and writes at the last pull.
  At a pull 0 the previous action and reward (the last episode's) are hidden from the input and
  the time input is the pull index within the episode.
- Training is RL^2's A2C (``learners/rl2.py``), reused whole: this learner builds an ``RL2``
  around its own network (``RL2(..., network=...)``), so the rollout, GAE over the whole trial,
  the fused act-and-differentiate loss, sharding, chunks and checkpoints are RL^2's. Stored cell
  states are constants to the gradient by default (``memory_gradient=False``, as truncated
  backpropagation would leave them); with ``memory_gradient=True`` the loss at a reinstatement
  reaches the episode that wrote the state (backpropagation through the whole trial).
- A write whose key equals a stored key exactly (a returning barcode) overwrites that entry:
  each context keeps the newest state it ended in. The dictionary has one slot per context of a
  trial, so nothing is ever evicted; its cost grows with the slots (the dictionary is part of
  the scan's carry), which is why it is not one slot per episode. The DND's values are scalars
  in MFEC and NEC; here each value is a cell-state vector, read by ``recall`` (one neighbour:
  the nearest key; more: ``dnd.nearest`` and ``dnd.kernel_weights``) and written by ``store``
  (only the written row changes; a one-hot select, no slower than a scatter). Measured on the
  2-core CPU, paper task, 64 trials per update: about 135k env steps/s with 10 slots, 66k with
  100, and 180k for the plain LSTM.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import linen as nn

from learn2rl.errors import Learn2RLError
from learn2rl.learners import rl2
from learn2rl.learners.base import (
    ConfigMixin,
    check_non_negative,
    check_positive,
    check_positive_ints,
    check_seed,
    check_unit_interval,
)
from learn2rl.learners.episodic.common import check_bool
from learn2rl.nets.recurrent import LSTMCell, trial_features
from learn2rl.ops import dnd
from learn2rl.tasks import make
from learn2rl.tasks.base import TaskFamily
from learn2rl.tasks.recurring_bandits import RecurringContextBandit
from learn2rl.types import Agent, TrialObs


@dataclass(frozen=True)
class Config(ConfigMixin):
    """epLSTM settings. Defaults: the barcode bandits of Ritter et al. 2018 (10 arms, 10 pulls,
    100 episodes of 10 recurring contexts), an LSTM-48 trained by A2C; ``reproduce ritter2018``'s
    full config."""

    learner = "episodic_lstm"

    task: str = "bandit/recurring-context"
    """Task family id: a ``bandit/recurring-context`` family (options in brackets)."""
    memory: bool = True
    """The episodic memory and reinstatement gate; ``false``: the plain LSTM baseline (same
    network, input, resets and training otherwise)."""
    hidden_size: int = 48
    """LSTM units."""
    num_neighbours: int = 1
    """Stored contexts a read averages over (kernel-weighted; an exact match outweighs others
    a thousandfold at the default ``kernel_delta``)."""
    kernel_delta: float = 1e-3
    """The DND kernel's delta, ``k(q, k_i) = 1 / (|q - k_i|^2 + delta)``."""
    match_input: bool = True
    """Give the cell (every gate, the reinstatement gate included) how closely the nearest stored
    context matches the current one, ``1 / (1 + squared distance)`` (1: the context returns; 0:
    nothing stored or retrieval off). Not in the paper: without it a novel context reinstates
    another context's cell state and nothing tells the gate that the match is inexact."""
    memory_gradient: bool = False
    """Differentiate through the stored cell states (a later reinstatement's loss reaches the
    episode that wrote it); ``false``: stored states are constants, as in truncated BPTT."""
    num_tasks: int = 32
    """Trials run in parallel per update, each on a freshly drawn training task."""
    num_updates: int = 10000
    """Total updates."""
    updates_per_chunk: int = 250
    """Updates per jitted chunk (logging, checkpoints and progress happen between chunks)."""
    learning_rate: float = 5e-3
    """Adam step size at the start; decays linearly to ``final_learning_rate``."""
    final_learning_rate: float = 5e-4
    """Adam step size at the end of training."""
    gamma: float = 0.9
    """Discount within a trial (GAE runs over the whole trial, episode ends included)."""
    gae_lambda: float = 1.0
    """GAE lambda (1 = Monte-Carlo returns)."""
    value_coef: float = 0.5
    """Weight of the value regression loss."""
    entropy_coef: float = 0.05
    """Entropy bonus at the start; decays linearly to ``final_entropy_coef``."""
    final_entropy_coef: float = 0.0
    """Entropy bonus at the end of training."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip."""
    normalize_advantages: bool = True
    """Scale advantages to zero mean and unit variance over each batch of trials."""
    seed: int = 0
    """Random seed; the same config and seed give the same numbers."""

    def __post_init__(self):
        check_positive_ints(
            self, "hidden_size", "num_neighbours", "num_tasks", "num_updates", "updates_per_chunk"
        )
        check_positive(self, "learning_rate", "final_learning_rate", "max_grad_norm")
        check_positive(self, "kernel_delta")
        check_unit_interval(self, "gamma", "gae_lambda")
        check_non_negative(self, "value_coef", "entropy_coef", "final_entropy_coef")
        check_bool(self, "memory", "match_input", "memory_gradient", "normalize_advantages")
        check_seed(self)
        if not isinstance(self.task, str):
            raise Learn2RLError(f"config.task must be a task id, got {self.task!r}")

    def rl2_config(self) -> rl2.Config:
        """The RL^2 settings this learner trains with (one trial = one gymnax episode)."""
        return rl2.Config(
            task=self.task,
            num_episodes=1,
            algorithm="a2c",
            cell="lstm",
            hidden_size=self.hidden_size,
            num_tasks=self.num_tasks,
            num_updates=self.num_updates,
            updates_per_chunk=self.updates_per_chunk,
            learning_rate=self.learning_rate,
            final_learning_rate=self.final_learning_rate,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
            value_coef=self.value_coef,
            entropy_coef=self.entropy_coef,
            final_entropy_coef=self.final_entropy_coef,
            max_grad_norm=self.max_grad_norm,
            normalize_advantages=self.normalize_advantages,
            seed=self.seed,
        )


# --- the episodic memory ------------------------------------------------------------------------
def empty_memory(capacity: int, key_size: int, value_size: int) -> dnd.DND:
    """A dictionary of ``capacity`` slots with keys of ``key_size`` and vector values."""
    return dnd.init(capacity, key_size).replace(values=jnp.zeros((capacity, value_size)))


def recall(
    memory: dnd.DND, query: jax.Array, num_neighbours: int, delta: float
) -> tuple[jax.Array, jax.Array]:
    """``(c_ep, match)``: ``c_ep = sum_i w_i v_i`` over the ``num_neighbours`` stored keys nearest
    ``query``, with the DND's weights ``w_i ~ 1 / (|query - k_i|^2 + delta)``, and how well the
    nearest key matches, ``1 / (1 + |query - k_nearest|^2)`` (1 for an exact match); both zero
    when nothing is stored. Differentiable in the stored values (the choice of neighbours and
    ``match`` are not)."""
    keys, query = jax.lax.stop_gradient((memory.keys, query))
    if num_neighbours == 1:  # the nearest key alone (its weight is 1): argmin, not a top-k sort
        sq = jnp.where(dnd.filled(memory), jnp.sum((keys - query) ** 2, -1), jnp.inf)
        index = jnp.argmin(sq)
        # An empty memory's nearest distance is inf: its match is 1 / (1 + inf) = 0.
        return jnp.where(memory.size > 0, memory.values[index], 0.0), 1.0 / (1.0 + sq[index])
    indices, valid = dnd.nearest(memory, query, num_neighbours)
    sq_distances = jnp.sum((keys[indices] - query) ** 2, -1)
    weights = dnd.kernel_weights(sq_distances, valid, delta)
    nearest = jnp.min(jnp.where(valid, sq_distances, jnp.inf))
    return weights @ memory.values[indices], 1.0 / (1.0 + nearest)


def store(memory: dnd.DND, key: jax.Array, value: jax.Array, when: jax.Array) -> dnd.DND:
    """``memory`` with ``(key, value)`` written where ``when``: over the entry with an equal key
    (a returning context keeps its newest state), else into the first free slot (the caller
    never writes more entries than there are slots). Only the written row changes."""
    found, matched = dnd.find(memory, key)
    slot = jnp.where(found, matched, memory.size)
    write = when & (found | (memory.size < memory.capacity))
    row = (jnp.arange(memory.capacity) == slot) & write
    return memory.replace(
        keys=jnp.where(row[:, None], key, memory.keys),
        values=jnp.where(row[:, None], value, memory.values),
        size=memory.size + (write & ~found).astype(jnp.int32),
    )


# --- the network --------------------------------------------------------------------------------
class ReinstatementLSTMCell(nn.Module):
    """An LSTM cell with Ritter et al.'s reinstatement gate (module docstring): returns the new
    ``(cell, hidden)`` state, stacked as ``nets.recurrent.LSTMCell``'s, and the gate ``r_t``.
    Fused gates (one input and one hidden matmul, ``r`` the fifth block); the forget gate's
    bias starts at +1 as in ``LSTMCell``."""

    hidden_size: int

    @nn.compact
    def __call__(self, state: jax.Array, x: jax.Array, retrieved: jax.Array):
        size = self.hidden_size
        cell, hidden = state[0], state[1]
        gates = nn.Dense(5 * size, name="input")(x) + nn.Dense(
            5 * size, use_bias=False, name="hidden", kernel_init=nn.initializers.orthogonal()
        )(hidden)
        i, f, g, o, r = (gates[k * size : (k + 1) * size] for k in range(5))
        reinstate = jax.nn.sigmoid(r)
        cell = (
            jax.nn.sigmoid(f + 1.0) * cell
            + jax.nn.sigmoid(i) * jnp.tanh(g)
            + reinstate * jnp.tanh(retrieved)
        )
        hidden = jax.nn.sigmoid(o) * jnp.tanh(cell)
        return jnp.stack([cell, hidden]), reinstate


class EpisodicActorCritic(nn.Module):
    """``(state, trial_obs) -> (state, logits, value)`` for one unbatched step; the state is
    ``(working, memory)``: the LSTM's stacked ``(cell, hidden)`` and the episodic dictionary
    (``None`` without memory). The observation is the context (the memory's key)."""

    num_actions: int
    context_size: int
    pulls_per_episode: int
    capacity: int  # memory slots: one per context of a trial
    hidden_size: int = 48
    memory: bool = True
    retrieval: bool = True  # False: never read (c_ep = 0); writes go on
    memory_gradient: bool = False  # differentiate through stored cell states
    num_neighbours: int = 1
    kernel_delta: float = 1e-3
    match_input: bool = True  # the LSTM's input includes recall's match

    def setup(self):
        self.core = (
            ReinstatementLSTMCell(self.hidden_size) if self.memory else LSTMCell(self.hidden_size)
        )
        self.policy_head = nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal(0.01))
        self.value_head = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0))

    def __call__(self, state, obs: TrialObs):
        working, memory = state
        pull = obs.step % self.pulls_per_episode
        first = pull == 0
        # A new episode: the working memory starts empty and last episode's action and reward
        # are not shown; the time input is the pull within the episode.
        working = jnp.where(first, jnp.zeros_like(working), working)
        episode_obs = obs.replace(
            prev_action=jnp.where(first, -1, obs.prev_action),
            prev_reward=jnp.where(first, 0.0, obs.prev_reward),
            prev_done=jnp.float32(0.0),
            step=pull,
        )
        features = trial_features(episode_obs, self.num_actions, self.pulls_per_episode)
        if self.memory:
            context = jnp.ravel(obs.obs).astype(jnp.float32)
            if self.retrieval:
                retrieved, match = recall(memory, context, self.num_neighbours, self.kernel_delta)
            else:  # nothing is read: as at a trial's start, before anything was stored
                retrieved, match = jnp.zeros((self.hidden_size,)), jnp.float32(0.0)
            if self.match_input:
                features = jnp.concatenate([features, match[None]])
            working, _ = self.core(working, features, retrieved)
            value = working[0] if self.memory_gradient else jax.lax.stop_gradient(working[0])
            memory = store(memory, context, value, pull == self.pulls_per_episode - 1)
        else:
            working = self.core(working, features)
        hidden = working[1]
        return (working, memory), self.policy_head(hidden), self.value_head(hidden)[0]

    def initialize(self, state, obs: TrialObs):
        """Creates every parameter (``init(..., method="initialize")``)."""
        return self(state, obs)

    def initial_state(self):
        working = jnp.zeros((2, self.hidden_size))
        if not self.memory:
            return working, None
        return working, empty_memory(self.capacity, self.context_size, self.hidden_size)


# --- the learner --------------------------------------------------------------------------------
class EpisodicLSTM:
    """The epLSTM (or, with ``memory=False``, the plain LSTM) meta-trained by RL^2's A2C.

    A ``types.Learner``; ``family`` defaults to ``make(config.task)``."""

    progress_metric = "trial_return"

    def __init__(
        self, config: Config, family: TaskFamily | None = None, devices: list | None = None
    ):
        self.config = config
        self.family = make(config.task) if family is None else family
        if not isinstance(self.family, RecurringContextBandit):
            raise Learn2RLError(
                f"config.task must be a bandit/recurring-context family (contexts that recur "
                f"within a trial), got {config.task!r}"
            )
        if config.num_neighbours > self.family.num_contexts:
            raise Learn2RLError(
                f"config.num_neighbours ({config.num_neighbours}) must not exceed the memory's "
                f"slots, one per context of a trial ({self.family.num_contexts})"
            )
        self.network = EpisodicActorCritic(
            num_actions=self.family.num_actions,
            context_size=self.family.barcode_size,
            pulls_per_episode=self.family.pulls_per_episode,
            capacity=self.family.num_contexts,
            hidden_size=config.hidden_size,
            memory=config.memory,
            memory_gradient=config.memory_gradient,
            num_neighbours=config.num_neighbours,
            kernel_delta=config.kernel_delta,
            match_input=config.match_input,
        )
        self.rl2 = rl2.RL2(config.rl2_config(), self.family, devices, network=self.network)
        self.trial = self.rl2.trial
        self.devices = self.rl2.devices

    @property
    def episodes_per_trial(self) -> int:
        """Gymnax episodes of one trial: 1 (the family's episode is Ritter's whole epoch)."""
        return 1

    @property
    def steps_per_update(self) -> int:
        return self.rl2.steps_per_update

    def init(self, seed: int | None = None) -> rl2.TrainState:
        return self.rl2.init(seed)

    def place(self, state: rl2.TrainState) -> rl2.TrainState:
        return self.rl2.place(state)

    def train_chunk(self, state: rl2.TrainState, num_updates: int) -> tuple[rl2.TrainState, dict]:
        """``num_updates`` A2C updates inside one jit (RL^2's chunk)."""
        return self.rl2.train_chunk(state, num_updates)

    def train_members(self, states: rl2.TrainState, num_updates: int):
        """Several train states (a leading member axis) at once (RL^2's ``train_members``)."""
        return self.rl2.train_members(states, num_updates)

    def agent(
        self,
        params,
        greedy: bool = False,
        retrieval: bool = True,
        name: str = "episodic_lstm",
    ) -> Agent:
        """The trained agent; ``retrieval=False`` never reads its memory (the lesion test)."""
        network = self.network.clone(retrieval=retrieval)
        return self.rl2.agent(params, greedy=greedy, name=name, network=network)
