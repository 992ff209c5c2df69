"""Evaluation compiles once per kind of agent: checkpoints of one learner and rebuilt task families
reuse the compiled trial, and results equal those of the old path (parameters baked into a fresh
jit as constants)."""

from __future__ import annotations

import contextlib
import logging
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import baselines
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import evaluate, run_gradient_trial, run_trial
from learn2rl.learners import maml
from learn2rl.learners.rl2 import RL2, Config
from learn2rl.tasks import make
from learn2rl.trial import Trial
from learn2rl.types import AgentKind, GradientAgent

BANDIT = "bandit/independent-2arm"


class _CompileCounter(logging.Handler):
    def __init__(self, name: str):
        super().__init__(logging.DEBUG)
        self.prefix = f"Compiling jit({name})"
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(self.prefix):
            self.count += 1


@contextlib.contextmanager
def count_compiles(name: str = "_run_batch"):
    """Counts XLA compilations of the jitted function ``name`` inside the block."""
    counter = _CompileCounter(name)
    logger = logging.getLogger("jax")
    logger.addHandler(counter)
    try:
        with jax.log_compiles():
            yield counter
    finally:
        logger.removeHandler(counter)


def old_path(agent, family, tasks, num_episodes, key):
    """The evaluation before agent kinds: the agent's closures (parameters as constants) in a
    fresh jit. One seed, one batch: task i gets fold_in(fold_in(key, 0), i), as in ``evaluate``."""
    plain = agent._replace(params=None, kind=None)
    run = run_gradient_trial if isinstance(agent, GradientAgent) else run_trial
    num = int(jax.tree.leaves(tasks)[0].shape[0])
    keys = jax.vmap(partial(jax.random.fold_in, jax.random.fold_in(key, 0)))(jnp.arange(num))
    fresh = jax.jit(jax.vmap(partial(run, plain, Trial(family, num_episodes))))
    rewards, _, valid, actions, _, _ = jax.device_get(fresh(keys, tasks))
    return rewards, valid, actions


def perturbed(params, seed: int, scale: float = 1.0):
    """``params`` moved by Gaussian noise, as numpy arrays (as a checkpoint loads them); numpy
    keeps building test checkpoints free of per-shape compilations."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda x: (np.asarray(x) + scale * rng.normal(size=x.shape)).astype(x.dtype), params
    )


def assert_same(result, reference):
    rewards, valid, actions = reference
    np.testing.assert_array_equal(result.rewards, rewards)
    np.testing.assert_array_equal(result.valid, valid)
    np.testing.assert_array_equal(result.actions, actions)


# --- task families and trials compare by value ----------------------------------------------------
def test_families_built_twice_are_equal_and_settings_tell_them_apart():
    assert make(BANDIT) == make(BANDIT) and hash(make(BANDIT)) == hash(make(BANDIT))
    assert make(BANDIT) != make("bandit/independent-5arm")
    assert make(BANDIT) != make(BANDIT, pulls_per_episode=2)
    assert make("bandit/restless-2arm") != make("bandit/restless-2arm-independent")
    assert Trial(make(BANDIT), 5) == Trial(make(BANDIT), 5)
    assert hash(Trial(make(BANDIT), 5)) == hash(Trial(make(BANDIT), 5))
    assert Trial(make(BANDIT), 5) != Trial(make(BANDIT), 6)


def test_family_equality_follows_attribute_changes_arrays_and_unknown_objects():
    family, other = make(BANDIT), make(BANDIT)
    family.episode_length = 3  # a change after construction must not match the old compile
    assert family != other
    family.episode_length = other.episode_length
    assert family == other
    family.table, other.table = np.arange(4.0), np.arange(4.0)  # arrays: by content
    assert family == other
    other.table[0] = 9.0
    assert family != other
    other.table, family.table = jnp.arange(4.0), jnp.arange(4.0)
    assert family == other
    thing = object()  # an object of unknown kind: equal only to itself
    family.thing, other.thing = thing, object()
    assert family != other
    other.thing = thing
    assert family == other


def test_maze_families_with_layout_arrays_and_jitted_methods_compare_by_value():
    assert make("maze/5x5") == make("maze/5x5")
    assert make("maze/5x5") != make("maze/5x5", view_depth=2)


# --- compile once per kind of agent ---------------------------------------------------------------
def tiny_rl2(**changes):
    config = Config(task=BANDIT, num_episodes=7, hidden_size=5, num_tasks=2, num_updates=1)
    return RL2(config.replace(**changes), make(BANDIT))


@pytest.fixture(scope="module")
def rl2_setup():
    """A tiny RL^2 learner and its initial parameters (initialising costs seconds: share it)."""
    learner = tiny_rl2()
    return learner, learner.init().params


@pytest.mark.long
def test_rl2_checkpoints_and_rebuilt_families_compile_once_and_match_the_old_path(rl2_setup):
    learner, initial = rl2_setup
    key = jax.random.PRNGKey(3)
    # The policy head starts at zero (uniform actions), so checkpoints are the initial parameters
    # (replicated over the training devices, as training leaves them) and copies moved by
    # different random amounts (numpy, as a checkpoint loads them), each acting differently.
    param_sets = [initial] + [perturbed(initial, seed) for seed in range(3)]
    results = []
    with count_compiles() as compiles:
        for params in param_sets:
            family = make(BANDIT)  # a new family object every time
            results.append(evaluate(learner.agent(params), family, family.tasks(3), 7, key))
        # A second learner for the same network (another seed) is the same kind of agent.
        other = tiny_rl2(seed=5)
        evaluate(other.agent(param_sets[1]), make(BANDIT), make(BANDIT).tasks(3), 7, key)
    assert compiles.count == 1
    # The parameters really are arguments: different checkpoints act differently ...
    assert not np.array_equal(results[1].actions, results[2].actions)
    # ... and give bit for bit what the old path (constants in a fresh jit) gave.
    family = make(BANDIT)
    assert_same(results[1], old_path(learner.agent(param_sets[1]), family, family.tasks(3), 7, key))


@pytest.mark.long
def test_rl2_greedy_agents_are_another_kind_compiled_once(rl2_setup):
    learner, initial = rl2_setup
    family, key = make(BANDIT), jax.random.PRNGKey(2)
    param_sets = [perturbed(initial, seed) for seed in range(3)]
    # Four tasks: a batch shape no other test uses, so both kinds compile here whatever the order.
    with count_compiles() as compiles:
        for params in param_sets:
            evaluate(learner.agent(params, greedy=True), family, family.tasks(4), 7, key)
        evaluate(learner.agent(param_sets[0]), family, family.tasks(4), 7, key)
    assert compiles.count == 2


@pytest.mark.long
def test_maml_checkpoints_compile_once_and_match_the_old_path():
    tiny = dict(
        hidden_sizes=(6,), num_tasks=2, episodes_per_step=3, num_updates=1, updates_per_chunk=1
    )
    family = make("control/point-goal", episode_length=5)
    learner = maml.MAML(maml.Config(**tiny), family)
    key = jax.random.PRNGKey(4)
    initial = learner.init().params
    param_sets = [initial] + [perturbed(initial, seed, 0.3) for seed in range(2)]
    results = []
    with count_compiles() as compiles:
        for params in param_sets:
            fresh = make("control/point-goal", episode_length=5)
            results.append(evaluate(learner.agent(params), fresh, fresh.tasks(2), 6, key))
        other = maml.MAML(maml.Config(**tiny, seed=9), make("control/point-goal", episode_length=5))
        evaluate(other.agent(param_sets[2]), family, family.tasks(2), 6, key)
    assert compiles.count == 1
    assert not np.array_equal(results[1].actions, results[2].actions)
    assert_same(results[1], old_path(learner.agent(param_sets[1]), family, family.tasks(2), 6, key))
    # Another step size changes what adaptation computes: a different kind, compiled anew.
    with count_compiles() as compiles:
        evaluate(learner.agent(param_sets[0], step_size=0.3), family, family.tasks(2), 6, key)
    assert compiles.count == 1


@pytest.mark.slow
def test_a_baseline_built_once_compiles_once_and_matches_the_old_path():
    family = make(BANDIT)
    agent = baselines.get("ucb1", family, 9)
    key = jax.random.PRNGKey(5)
    with count_compiles() as compiles:
        first = evaluate(agent, family, family.tasks(3), 9, key)
        evaluate(agent, make(BANDIT), make(BANDIT).tasks(3), 9, key)
        evaluate(agent._replace(name="renamed"), family, family.tasks(3), 9, key)
    assert compiles.count == 1
    assert_same(first, old_path(agent, family, family.tasks(3), 9, key))


def test_params_without_a_kind_are_refused():
    family = make(BANDIT)
    agent = baselines.get("random", family, 4)._replace(params={"w": jnp.zeros(2)})
    with pytest.raises(Learn2RLError, match="no kind"):
        evaluate(agent, family, family.tasks(2), 4, jax.random.PRNGKey(0))


def test_agent_kinds_compare_by_key_alone():
    first = AgentKind(("k", 1), lambda params: None)
    assert first == AgentKind(("k", 1), lambda params: 1)
    assert hash(first) == hash(AgentKind(("k", 1), print))
    assert first != AgentKind(("k", 2), lambda params: None)


def test_long_trials_run_in_step_budgeted_batches_with_the_same_results(monkeypatch):
    """By default a compiled call holds at most EVAL_STEP_BUDGET environment steps: with a budget
    of two trials' steps, 5 tasks run as 2 + 2 + 1 and give what one call gives (each task's key
    follows its index); a batch size that is not positive is refused."""
    from learn2rl import evaluation

    family = make(BANDIT)
    agent = baselines.get("thompson", family, 10)
    tasks, key = family.tasks(5), jax.random.PRNGKey(8)
    whole = evaluate(agent, family, tasks, 10, key, batch_size=5)
    steps = Trial(family, 10).max_steps
    monkeypatch.setattr(evaluation, "EVAL_STEP_BUDGET", 2 * steps)
    calls = []
    run_batch = evaluation._run_batch
    monkeypatch.setattr(
        evaluation,
        "_run_batch",
        lambda static, trial, params, keys, *rest: (
            calls.append(len(keys)) or run_batch(static, trial, params, keys, *rest)
        ),
    )
    chunked = evaluate(agent, family, tasks, 10, key)
    assert calls == [2, 2, 1]
    np.testing.assert_allclose(chunked.rewards, whole.rewards)
    np.testing.assert_array_equal(chunked.actions, whole.actions)
    with pytest.raises(Learn2RLError, match="batch_size must be positive"):
        evaluate(agent, family, tasks, 10, key, batch_size=0)
