"""Shared types: the observation an adaptive agent sees inside a trial, the agent interface, and the
contract every learner meets (``Learner``).

Every adaptive agent, learned (RL^2) or classical (Thompson sampling, UCB1, Bayes-optimal ...), is a
pair of pure functions, so that one evaluation function can run any of them under ``jax.jit`` and
``jax.vmap`` over tasks. A learned agent also carries its parameters and an ``AgentKind`` that
rebuilds its functions from them, so that evaluation can pass the parameters to ``jit`` as
arguments and compile once per kind of agent, not once per checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

import jax
from flax import struct

PRNGKey = jax.Array
TaskParams = Any  # a pytree of per-task arrays; see learn2rl.tasks.base
AgentState = Any  # a pytree the agent carries through a trial


@struct.dataclass
class TrialObs:
    """What an agent observes at one step of a trial (Duan et al. 2016, Wang et al. 2016).

    Attributes:
        obs: the environment's own observation (for bandits an empty vector).
        prev_action: the action taken at the previous step, -1 at the first step of a trial
            (continuous-control families: a float vector, zeros at the first step).
        prev_reward: the reward received at the previous step, 0 at the first step.
        prev_done: 1.0 if the previous step ended an episode (the trial goes on), else 0.0.
        step: the index of this step within the trial, 0 at the first step.
    """

    obs: jax.Array
    prev_action: jax.Array
    prev_reward: jax.Array
    prev_done: jax.Array
    step: jax.Array


class Agent(NamedTuple):
    """An adaptive agent: what it does inside one trial on one task.

    ``init(key, task_params)`` returns the agent state at the start of a trial. Only agents with
    ``privileged=True`` (the oracle) receive the task parameters; all others receive ``None``.
    ``act(key, agent_state, trial_obs)`` returns ``(action, new_agent_state)``. Both must be pure
    JAX functions of unbatched inputs: evaluation vmaps them over tasks. ``horizon``, when set, is
    the longest trial (in steps) the agent was built for; evaluation refuses longer trials, since
    table-based agents (Gittins, Bayes-optimal) cannot notice inside ``jit`` that they ran out.

    Learned agents also set ``params`` (a pytree of arrays) and ``kind`` (an ``AgentKind`` with
    ``kind(params)`` equal to this agent up to these two fields); see ``AgentKind.bind``. Agents
    without ``kind`` are compiled per object (per ``init`` / ``act`` functions).
    """

    name: str
    init: Callable[[PRNGKey, TaskParams | None], AgentState]
    act: Callable[[PRNGKey, AgentState, TrialObs], tuple[jax.Array, AgentState]]
    privileged: bool = False
    horizon: int | None = None
    params: Any = None
    kind: AgentKind | None = None


class GradientAgent(NamedTuple):
    """An agent that adapts *between batches of episodes* (MAML, Reptile, MAESN).

    Within a batch its policy is fixed, so the ``episodes_per_adapt`` episodes of a batch are
    independent and evaluation runs them in parallel; after each batch but the last, ``adapt``
    takes one adaptation step (a policy-gradient step for MAML) on the batch. A trial of
    ``num_episodes`` episodes is ``num_episodes / episodes_per_adapt`` batches: the returns of
    batch ``k`` are the returns "after k gradient steps" of Finn et al. 2017, Tables 4-5.

    ``init(key)`` gives the adaptation state at the start of a trial (the meta-learned
    parameters); ``begin_episode(key, state)`` the per-episode context (MAESN's latent draw; an
    empty vector otherwise); ``act(key, state, context, obs)`` an action; ``adapt(key, state,
    episodes)`` the next state from a ``rollout.Episodes`` batch. All pure JAX, unbatched.
    """

    name: str
    init: Callable[[PRNGKey], AgentState]
    begin_episode: Callable[[PRNGKey, AgentState], jax.Array]
    act: Callable[[PRNGKey, AgentState, jax.Array, jax.Array], jax.Array]
    adapt: Callable[[PRNGKey, AgentState, Any], AgentState]
    episodes_per_adapt: int
    params: Any = None  # as for ``Agent``
    kind: AgentKind | None = None


@dataclass(frozen=True)
class AgentKind:
    """A learned agent apart from its parameters: ``kind(params)`` builds its functions.

    Evaluation jits over kinds rather than agents: it passes ``params`` as a traced argument and
    calls ``kind(params)`` inside ``jit``, so ten checkpoints of one learner compile once. The jit
    cache looks kinds up by ``key`` alone (``build`` takes no part in equality or hashing, since
    learners rebuild their closures on every call), so ``key`` must be a hashable value that fixes
    everything ``build`` computes besides reading ``params``: the network definition, greedy or
    sampled actions, step sizes. Two kinds with equal keys are assumed interchangeable; whichever
    was traced first serves both.
    """

    key: Hashable
    build: Callable[[Any], Agent | GradientAgent] = field(compare=False, repr=False)

    def __call__(self, params: Any) -> Agent | GradientAgent:
        return self.build(params)

    def bind(self, params: Any) -> Agent | GradientAgent:
        """The agent for ``params``: its functions work when called directly (built from the
        concrete ``params``), and it carries ``params`` and this kind for ``evaluate``."""
        return self.build(params)._replace(params=params, kind=self)


@runtime_checkable
class Learner(Protocol):
    """What the runner, checkpoints, the CLI and the experiments need of a learner.

    Every registered learner (``learn2rl.learners.get``) is a class built as ``cls(config)`` (a
    learner of a task family builds it from ``config.task``; tests may pass ``family`` and
    ``devices`` too) whose instances have these members:

    ``config``
        A frozen dataclass of settings (fields documented; validated on construction with the
        ``learners.base.check_*`` helpers; one error per field, ``config.<field> must be ...``)
        with ``to_dict()`` (JSON-ready values), ``from_dict(values)`` (names unknown fields) and
        ``replace(**changes)``, as ``learners.base.ConfigMixin`` gives them, and the fields
        ``num_updates`` (updates in a run), ``updates_per_chunk`` (updates per jitted call; the
        runner logs and checkpoints between chunks) and ``seed``.
    ``init(seed=None) -> state``
        A fresh train state for ``seed`` (default ``config.seed``), already ``place``-d: a pytree
        of arrays (a ``flax.struct`` dataclass) with ``params`` and an integer ``update`` field,
        the number of updates done. Checkpoints store it; loading reads into ``init()``'s layout.
    ``place(state) -> state``
        The state laid out over ``devices`` as ``train_chunk`` returns it, so that a restored
        state and a trained one hit the same compiled chunk.
    ``train_chunk(state, n) -> (state, metrics)``
        ``n`` updates (one compiled call); ``state.update`` grows by ``n``. ``metrics`` maps
        names to arrays with one row per update (the runner writes one ``metrics.jsonl`` line per
        update and stops on a non-finite value); it always holds ``progress_metric``. Update
        ``u`` must depend only on the state and ``u``, so a resumed run replays an uninterrupted
        one.
    ``progress_metric``
        The name of the metric the runner's progress bar shows: ``"trial_return"`` (the mean
        return of the training trials) for the RL learners, ``"loss"`` for Hochreiter 2001.
    ``steps_per_update``
        How much data one update consumes, the progress bar's rate and ``metrics.jsonl``'s
        ``env_steps`` column: environment steps (tasks x steps of a trial) for the RL learners,
        examples (functions x examples) for Hochreiter 2001.
    ``devices``
        The devices ``train_chunk`` shards its batch over (``learners.base.ShardedChunks``).
    ``agent(params, ...)``
        The meta-trained learner for evaluation: an ``Agent`` (RL^2) or ``GradientAgent`` (MAML,
        Reptile, MAESN) bound to ``params`` that ``evaluation.evaluate`` runs on held-out tasks;
        for Hochreiter 2001, which fits functions, a ``FunctionAgent`` (its prediction and
        error-curve functions). Keyword options (``name``, ``greedy``, step sizes) vary by
        learner.

    Optional: ``train_members(states, n) -> (states, metrics)``, ``train_chunk`` for a stack of
    train states (a leading member axis, e.g. ``init`` of several seeds), all trained in one
    compiled call; metrics come back with the member axis first; with it, ``place_members``
    when the stack is laid out otherwise than ``place`` lays out one state (one-agent learners
    split the seeds over the devices: ``learners.base.SeedsOverDevices``). ``learn2rl sweep``
    trains the seeds of a setting this way when a learner has it (every registered one), and
    one after another otherwise.

    Learners of a task family also have ``family`` and ``episodes_per_trial`` (the episodes of
    one trial, what ``learn2rl evaluate`` runs). ``isinstance(x, Learner)`` checks only that the
    members exist.
    """

    config: Any
    devices: list
    steps_per_update: int
    progress_metric: str

    def init(self, seed: int | None = None) -> Any: ...

    def place(self, state: Any) -> Any: ...

    def train_chunk(self, state: Any, num_updates: int) -> tuple[Any, dict[str, Any]]: ...

    def agent(self, params: Any, *args: Any, **kwargs: Any) -> Any: ...
