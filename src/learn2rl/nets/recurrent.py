"""Recurrent actor-critic for memory-based meta-RL (Wang et al. 2016; Duan et al. 2016).

The network sees one ``TrialObs`` per step: the environment observation, the previous action
(one-hot; for continuous-control families the raw float vector), the previous reward, the previous
done flag and the step index scaled to [0, 1). Its recurrent state carries everything it learns
about the current task; the caller resets it only when a trial (a new task) begins. The cells are
written with fused gate matrices (one input and one hidden matmul per step) because on a CPU the
per-step matmul count, not FLOPs, dominates small recurrent nets.

For discrete families the policy head gives action logits. For continuous-control families
(``continuous=True``) it gives a diagonal Gaussian: the head's output is the action mean and a
learned, state-independent ``log_std`` vector (one entry per action dimension, initialised to
``log(init_std)``) is its log standard deviation; the network returns the pair ``(mean, log_std)``
where a discrete network returns logits. The network works in units of ``action_scale`` (the
half-width of the family's action box): the previous action enters divided by it, and the mean and
standard deviation it returns are multiplied by it, so ``init_std = 0.5`` means half the action
range whether the family's actions are bounded by 1 (locomotion) or by 0.1 (point navigation).

With ``previous_obs=True`` the input also holds the observation of the previous step (zeros at the
first step of a trial), so one input carries a whole transition ``(s, a, r, s')``: the state the
previous action was taken in, the action, its reward and where it led. The information is the
same (the recurrent state could carry ``s`` itself); what changes is that the network need not
learn to hold it for one step before it can bind a reward to a state-action pair, which is what a
within-trial learner of a tabular MDP must do. The network's state is then the pair
``(core state, previous observation)``.

With ``state_heads=True`` the policy and value heads are indexed by the observation: a head emits
one row per observation entry and the output is ``obs @ reshape(W h + b, [obs_size, k])``, which
for a one-hot state is the row of the current state. A within-trial learner of a tabular MDP must
keep a table of what it learnt per state; such a head reads the current state's row of it instead
of having to learn the lookup (a hypernetwork-style head, cf. Beck et al. 2023, "Hypernetworks in
Meta-Reinforcement Learning"). With ``reward_decoder=True`` the network also has ``decode``: from
the recurrent state after a step, an estimate of the mean reward each action has paid in the
current state so far in the trial (the learner trains it by regression on the observed means, an
auxiliary task in the spirit of VariBAD's decoder, Zintgraf et al. 2020).

With ``index_head=d > 0`` the policy scores every action with one shared function: each action
``a`` gets its own ``d`` features ``P_a h + b_a`` of the hidden vector, and its logit is
``v . tanh(P_a h + b_a + G h)`` with ``G`` and ``v`` shared by all actions. This is the shape
of an index policy (Gittins, UCB: one scoring rule applied to every arm's summary), where a plain
head learns a separate linear map per action. With a reward decoder and no observation (bandits),
the decoder's estimate for action ``a`` is the first of its features, so the regression lays out
each arm's observed mean in the same coordinate for the shared rule to read.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import linen as nn

from learn2rl.types import TrialObs


def trial_features(
    obs: TrialObs,
    num_actions: int,
    max_steps: int,
    continuous: bool = False,
    action_scale: float = 1.0,
) -> jax.Array:
    """Flatten a TrialObs into the network input vector (unbatched).

    ``num_actions`` is the number of actions of a discrete family (the previous action enters
    one-hot) or the action vector length of a continuous one (it enters as it was sampled, divided
    by ``action_scale``; zeros at the first step).
    """
    if continuous:
        prev_action = jnp.reshape(obs.prev_action, (num_actions,)).astype(jnp.float32)
        prev_action = prev_action / action_scale
    else:
        prev_action = jax.nn.one_hot(obs.prev_action, num_actions)  # all zeros for action -1
    return jnp.concatenate(
        [
            jnp.ravel(obs.obs).astype(jnp.float32),
            prev_action,
            jnp.reshape(obs.prev_reward, (1,)).astype(jnp.float32),
            jnp.reshape(obs.prev_done, (1,)).astype(jnp.float32),
            jnp.reshape(obs.step / max_steps, (1,)).astype(jnp.float32),
        ]
    )


class GRUCell(nn.Module):
    """GRU (Cho et al. 2014) with fused gates: h' = (1 - z) * n + z * h."""

    hidden_size: int

    @nn.compact
    def __call__(self, h: jax.Array, x: jax.Array) -> jax.Array:
        size = self.hidden_size
        gates_x = nn.Dense(3 * size, name="input")(x)
        gates_h = nn.Dense(3 * size, name="hidden", kernel_init=nn.initializers.orthogonal())(h)
        reset = jax.nn.sigmoid(gates_x[:size] + gates_h[:size])
        update = jax.nn.sigmoid(gates_x[size : 2 * size] + gates_h[size : 2 * size])
        candidate = jnp.tanh(gates_x[2 * size :] + reset * gates_h[2 * size :])
        return (1.0 - update) * candidate + update * h

    def initial_state(self) -> jax.Array:
        return jnp.zeros((self.hidden_size,))


class LSTMCell(nn.Module):
    """LSTM (Hochreiter & Schmidhuber 1997), fused gates; the state is (cell, hidden) stacked."""

    hidden_size: int

    @nn.compact
    def __call__(self, state: jax.Array, x: jax.Array) -> jax.Array:
        size = self.hidden_size
        cell, hidden = state[0], state[1]
        gates = nn.Dense(4 * size, name="input")(x) + nn.Dense(
            4 * size, use_bias=False, name="hidden", kernel_init=nn.initializers.orthogonal()
        )(hidden)
        i, f, g, o = (gates[k * size : (k + 1) * size] for k in range(4))
        cell = jax.nn.sigmoid(f + 1.0) * cell + jax.nn.sigmoid(i) * jnp.tanh(g)
        hidden = jax.nn.sigmoid(o) * jnp.tanh(cell)
        return jnp.stack([cell, hidden])

    def initial_state(self) -> jax.Array:
        return jnp.zeros((2, self.hidden_size))


class NormGRUCell(nn.Module):
    """GRU with a ReLU candidate and normalised pre-activations, the cell of Duan et al. 2016.

    ``h' = keep * h + (1 - keep) * relu(W_x x + reset * W_h h)`` with
    ``keep = sigmoid(. + keep_bias)``: the update gate starts biased towards keeping the state
    (``keep_bias = 1``), and the reset gate acts after the hidden matmul. ``norm="layer"``
    puts a LayerNorm on each pre-activation, the input part and the hidden part separately (gates
    and candidate also separately), as in the public reproduction that reached the paper's MDP
    numbers; ``norm="weight"`` reparametrises both matmuls by weight normalisation (Salimans &
    Kingma 2016; ``flax.linen.WeightNorm``), as the paper's code did. Gates stay fused: one input
    and one hidden matmul per step.
    """

    hidden_size: int
    norm: str = "layer"
    keep_bias: float = 1.0

    @nn.compact
    def __call__(self, h: jax.Array, x: jax.Array) -> jax.Array:
        size = self.hidden_size
        orthogonal = nn.initializers.orthogonal()
        if self.norm == "weight":
            gates_x = nn.WeightNorm(nn.Dense(3 * size), name="input")(x)
            hidden = nn.Dense(3 * size, use_bias=False, kernel_init=orthogonal)
            gates_h = nn.WeightNorm(hidden, name="hidden")(h)
        else:
            gates_x = nn.Dense(3 * size, use_bias=False, name="input")(x)
            gates_h = nn.Dense(3 * size, use_bias=False, name="hidden", kernel_init=orthogonal)(h)
            gates_x = jnp.concatenate(
                [
                    nn.LayerNorm(name="input_gates_norm")(gates_x[: 2 * size]),
                    nn.LayerNorm(name="input_candidate_norm")(gates_x[2 * size :]),
                ]
            )
            gates_h = jnp.concatenate(
                [
                    nn.LayerNorm(name="hidden_gates_norm")(gates_h[: 2 * size]),
                    nn.LayerNorm(name="hidden_candidate_norm")(gates_h[2 * size :]),
                ]
            )
        reset = jax.nn.sigmoid(gates_x[:size] + gates_h[:size])
        keep = jax.nn.sigmoid(gates_x[size : 2 * size] + gates_h[size : 2 * size] + self.keep_bias)
        candidate = jax.nn.relu(gates_x[2 * size :] + reset * gates_h[2 * size :])
        return keep * h + (1.0 - keep) * candidate


def make_cell(cell: str, hidden_size: int) -> nn.Module:
    """The recurrent core named ``cell`` (one of ``CELLS``)."""
    if cell == "ln-gru":
        return NormGRUCell(hidden_size, norm="layer")
    if cell == "wn-gru":
        return NormGRUCell(hidden_size, norm="weight")
    return {"gru": GRUCell, "lstm": LSTMCell}[cell](hidden_size)


CELLS = ("gru", "lstm", "ln-gru", "wn-gru")
"""``gru`` (tanh, unnormalised), ``lstm``, and the paper's normalised ReLU GRU (``NormGRUCell``)
with LayerNorm (``ln-gru``) or weight normalisation (``wn-gru``)."""


class RecurrentActorCritic(nn.Module):
    """``(state, trial_obs) -> (state, policy, value)`` for one unbatched step.

    ``policy`` is the action logits (discrete), or the pair ``(mean, log_std)`` of a diagonal
    Gaussian over action vectors of length ``num_actions`` (``continuous=True``).
    """

    num_actions: int
    max_steps: int
    hidden_size: int = 48
    cell: str = "gru"
    # Continuous families only: the action box's half-width, and the Gaussian's standard deviation
    # at initialisation in units of it.
    continuous: bool = False
    action_scale: float = 1.0
    init_std: float = 0.5
    # Feed the previous step's observation beside the current one (module docstring).
    previous_obs: bool = False
    obs_size: int = 0  # the observation length (previous_obs, state_heads, reward_decoder)
    # A second recurrent core of the same kind for the value (Duan et al. 2016 fit a separate
    # GRU value network): the state is then the pair (policy core state, value core state).
    separate_value: bool = False
    # Heads indexed by the observation (module docstring): out = obs @ reshape(W h + b, [obs, k]).
    state_heads: bool = False
    # A decoder of the current observation's per-action mean rewards seen so far (``decode``).
    reward_decoder: bool = False
    # Width of the per-action features of an index-shaped policy head (module docstring); 0: a
    # plain linear head.
    index_head: int = 0
    # Diagnosis only: the recurrent core gets zeros in place of the observation (the previous
    # action, reward and done flag stay), while state-indexed heads still read it. Tells whether
    # the memory itself is indexed by the state (benchmarks/duan2016_mdp_diagnosis.py).
    blind_core: bool = False

    def setup(self):
        self.core = make_cell(self.cell, self.hidden_size)
        if self.separate_value:
            self.value_core = make_cell(self.cell, self.hidden_size)
        rows = self.obs_size if self.state_heads else 1
        if self.index_head:
            self.action_features = nn.Dense(self.num_actions * self.index_head)
            self.shared_features = nn.Dense(self.index_head, use_bias=False)
            self.index_out = nn.Dense(
                1, use_bias=False, kernel_init=nn.initializers.orthogonal(0.01)
            )
        else:
            self.policy_head = nn.Dense(
                rows * self.num_actions, kernel_init=nn.initializers.orthogonal(0.01)
            )
        self.value_head = nn.Dense(rows, kernel_init=nn.initializers.orthogonal(1.0))
        if self.reward_decoder and not self._decoder_tied:
            self.decoder = nn.Dense(max(self.obs_size, 1) * self.num_actions)
        if self.continuous:
            self.log_std = self.param(
                "log_std",
                nn.initializers.constant(math.log(self.init_std)),
                (self.num_actions,),
                jnp.float32,
            )

    def __call__(self, state: jax.Array, obs: TrialObs):
        core_obs = obs.replace(obs=jnp.zeros_like(obs.obs)) if self.blind_core else obs
        features = trial_features(
            core_obs, self.num_actions, self.max_steps, self.continuous, self.action_scale
        )
        if self.previous_obs:
            state, last_obs = state
            features = jnp.concatenate([features, last_obs])
        if self.separate_value:
            policy_state, value_state = state
            policy_state = self.core(policy_state, features)
            value_state = self.value_core(value_state, features)
            state = (policy_state, value_state)
            hidden, value_hidden = self._output(policy_state), self._output(value_state)
        else:
            state = self.core(state, features)
            hidden = value_hidden = self._output(state)
        obs_vector = jnp.ravel(obs.obs).astype(jnp.float32)
        if self.previous_obs:
            state = (state, jnp.ravel(core_obs.obs).astype(jnp.float32))
        if self.index_head:
            policy = self._index_logits(hidden)
        else:
            policy = self._indexed(self.policy_head(hidden), obs_vector, self.num_actions)
        if self.continuous:
            scale = self.action_scale
            policy = (scale * policy, self.log_std + math.log(scale))
        value = self._indexed(self.value_head(value_hidden), obs_vector, 1)
        return state, policy, value[0]

    def _indexed(self, out: jax.Array, obs_vector: jax.Array, size: int) -> jax.Array:
        """A head's output as is, or (``state_heads``) its rows weighted by the observation."""
        if not self.state_heads:
            return out
        return obs_vector @ out.reshape(self.obs_size, size)

    @property
    def _decoder_tied(self) -> bool:
        """Whether the decoder reads the index head's first per-action feature (bandits)."""
        return bool(self.index_head) and self.obs_size == 0

    def _per_action(self, hidden: jax.Array) -> jax.Array:
        """The index head's features of each action, ``[num_actions, index_head]``."""
        return self.action_features(hidden).reshape(self.num_actions, self.index_head)

    def _index_logits(self, hidden: jax.Array) -> jax.Array:
        """``v . tanh(P_a h + b_a + G h)`` for every action ``a`` (``index_head``)."""
        shared = self.shared_features(hidden)
        return self.index_out(jnp.tanh(self._per_action(hidden) + shared))[:, 0]

    def decode(self, state, obs: TrialObs) -> jax.Array:
        """The decoder's estimate, from the state *after* the step that saw ``obs``, of the mean
        reward of each action in the observed state so far (``[num_actions]``; the observation is
        a one-hot state, and the decoder is indexed by it; a family without observations, a
        bandit, has one state)."""
        if self.previous_obs:
            state = state[0]
        hidden = self._output(state[0] if self.separate_value else state)
        if self._decoder_tied:
            return self._per_action(hidden)[:, 0]
        if self.obs_size == 0:  # no observation (bandits): one state
            return self.decoder(hidden)
        table = self.decoder(hidden).reshape(self.obs_size, self.num_actions)
        return jnp.ravel(obs.obs).astype(jnp.float32) @ table

    def initialize(self, state, obs: TrialObs):
        """Creates every parameter (``init(..., method="initialize")``): a step, then decode."""
        outputs = self(state, obs)
        if self.reward_decoder:
            self.decode(outputs[0], obs)
        return outputs

    def _output(self, core_state: jax.Array) -> jax.Array:
        """The hidden vector of a core's state (an LSTM's state stacks cell and hidden)."""
        return core_state[1] if self.cell == "lstm" else core_state

    def initial_state(self):
        shape = (2, self.hidden_size) if self.cell == "lstm" else (self.hidden_size,)
        core = jnp.zeros(shape)
        if self.separate_value:
            core = (core, core)
        if self.previous_obs:
            return core, jnp.zeros((self.obs_size,), jnp.float32)
        return core
