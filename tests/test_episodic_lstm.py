"""The recurring-context bandits and the episodic LSTM (Ritter et al. 2018, arXiv 1805.09692):
the task's recurrence and splits, the reinstatement cell, the memory's read and write, the
memory and retrieval switches, resume, config errors, and one slow learning test."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import runner
from learn2rl.errors import Learn2RLError
from learn2rl.learners.episodic.episodic_lstm import (
    Config,
    EpisodicActorCritic,
    EpisodicLSTM,
    ReinstatementLSTMCell,
    empty_memory,
    recall,
    store,
)
from learn2rl.tasks import make
from learn2rl.tasks.recurring_bandits import RecurringContextBandit
from learn2rl.trial import Trial

SMALL = (
    "bandit/recurring-context"
    "[num_arms=3,pulls_per_episode=2,num_episodes=6,num_contexts=3,barcode_size=6]"
)
KEY = jax.random.PRNGKey(2)
RECALL = jax.jit(recall, static_argnums=(2, 3))  # one compilation per shape, not per operation
STORE = jax.jit(store)
# A config that compiles and trains in a few seconds.
TINY = Config(task=SMALL, hidden_size=8, num_tasks=4, num_updates=4, updates_per_chunk=2)


# --- the task family ---------------------------------------------------------------------------
def _steps(family, params):
    """Observation, expected reward of every arm and context index at every step of a trial."""

    def step(carry, key):
        obs, state = carry
        arms = jnp.arange(family.num_arms)
        means = jax.vmap(lambda a: family.expected_reward(params, state, a))(arms)
        seen = (obs, means, family.context_at(params, state.time))
        obs, state, *_ = family.step_env(key, state, jnp.int32(0), params)
        return (obs, state), seen

    start = family.reset_env(jax.random.PRNGKey(0), params)
    keys = jax.random.split(jax.random.PRNGKey(1), family.episode_length)
    _, (seen, means, contexts) = jax.jit(lambda: jax.lax.scan(step, start, keys))()
    return np.asarray(seen), np.asarray(means), np.asarray(contexts)


@pytest.mark.slow
def test_contexts_recur_with_the_same_barcode_and_the_same_best_arm():
    family = make(SMALL)
    params = family.task(7)
    seen, means, contexts = _steps(family, params)
    schedule = np.asarray(params.schedule)
    np.testing.assert_array_equal(contexts, np.repeat(schedule, 2))
    assert sorted(np.bincount(schedule, minlength=3)) == [2, 2, 2]  # each context twice
    for c in range(3):
        at = contexts == c
        # Every step showing context c shows its barcode and the same bandit.
        np.testing.assert_array_equal(seen[at], np.broadcast_to(params.barcodes[c], seen[at].shape))
        np.testing.assert_allclose(means[at], np.broadcast_to(means[at][0], means[at].shape))
        assert np.argmax(means[at][0]) == int(params.best_arm[c])
        np.testing.assert_allclose(sorted(means[at][0]), [0.1, 0.1, 0.9], rtol=1e-6)
    # The first episode of each context is novel, later ones return.
    novel = np.asarray(family.novel(params))
    first = [int(np.argmax(schedule == c)) for c in range(3)]
    np.testing.assert_array_equal(np.flatnonzero(novel), sorted(first))


@pytest.mark.long
def test_novel_contexts_get_fresh_barcodes_and_bandits():
    family = RecurringContextBandit(num_arms=4, num_episodes=40, num_contexts=8, barcode_size=4)
    tasks = jax.jit(lambda: family.tasks(100, "test"))()
    codes = np.asarray(tasks.barcodes)
    # Barcodes are distinct within a task (8 of the 16 codes of 4 bits).
    for row in codes:
        assert len({tuple(c) for c in row}) == 8
    # Every arm is some context's rewarding arm (at least as many contexts as arms).
    best = np.asarray(tasks.best_arm)
    assert all(set(row) == {0, 1, 2, 3} for row in best)
    # Fresh per task: another task shows other barcodes and other pairings.
    wide = jax.jit(lambda: make("bandit/recurring-context").tasks(50, "test"))()
    rows = {tuple(np.asarray(b).ravel()) for b in wide.barcodes}
    assert len(rows) == 50
    assert len({tuple(np.asarray(b)) for b in wide.best_arm}) > 40
    # The bag: 100 episodes of 10 contexts, each shown exactly 10 times; 10% novel.
    schedule = np.asarray(wide.schedule)
    assert all(np.all(np.bincount(row, minlength=10) == 10) for row in schedule)
    assert (
        np.asarray(jax.vmap(make("bandit/recurring-context").novel)(wide)).sum(1).tolist()
        == [10] * 50
    )


@pytest.mark.long
def test_train_and_test_splits_share_no_task():
    family = make("bandit/recurring-context")
    test = jax.jit(lambda: family.tasks(200, "test"))()
    test = {tuple(np.asarray(b).ravel()) for b in test.barcodes}
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    train = jax.jit(jax.vmap(lambda k: family.sample(k, "train")))(keys)
    assert not any(tuple(np.asarray(b).ravel()) in test for b in train.barcodes)
    np.testing.assert_array_equal(family.tasks(3, "test").barcodes, family.tasks(3).barcodes)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(num_contexts=11, num_episodes=10), "num_contexts"),
        (dict(barcode_size=2, num_contexts=5), "barcode_size"),
        (dict(num_arms=1), "num_arms"),
        (dict(best_probability=0.1, other_probability=0.5), "best_probability"),
        (dict(other_probability=1.5), "other_probability"),
    ],
)
def test_bad_family_settings_are_one_line_errors(kwargs, match):
    with pytest.raises(Learn2RLError, match=match) as error:
        RecurringContextBandit(**kwargs)
    assert "\n" not in str(error.value)


# --- the cell and the memory ------------------------------------------------------------------
@pytest.mark.slow
def test_reinstatement_cell_shapes_and_equations():
    size, inputs = 5, 7
    cell = ReinstatementLSTMCell(size)
    keys = jax.random.split(jax.random.PRNGKey(1), 4)
    state = jax.random.normal(keys[0], (2, size))
    x = jax.random.normal(keys[1], (inputs,))
    retrieved = jax.random.normal(keys[2], (size,))
    params = cell.init(keys[3], state, x, retrieved)
    assert params["params"]["input"]["kernel"].shape == (inputs, 5 * size)
    assert params["params"]["hidden"]["kernel"].shape == (size, 5 * size)
    new, gate = cell.apply(params, state, x, retrieved)
    assert new.shape == (2, size) and gate.shape == (size,)
    assert np.all((np.asarray(gate) > 0) & (np.asarray(gate) < 1))
    # The equations, in numpy.
    p = jax.tree.map(np.asarray, params["params"])
    z = np.asarray(x) @ p["input"]["kernel"] + p["input"]["bias"]
    z = z + np.asarray(state[1]) @ p["hidden"]["kernel"]
    i, f, g, o, r = np.split(z, 5)
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    c = sig(f + 1) * np.asarray(state[0]) + sig(i) * np.tanh(g) + sig(r) * np.tanh(retrieved)
    np.testing.assert_allclose(new[0], c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new[1], sig(o) * np.tanh(c), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gate, sig(r), rtol=1e-5)
    # Nothing retrieved (zeros): the reinstatement term vanishes.
    plain, _ = cell.apply(params, state, x, jnp.zeros(size))
    c0 = sig(f + 1) * np.asarray(state[0]) + sig(i) * np.tanh(g)
    np.testing.assert_allclose(plain[0], c0, rtol=1e-5, atol=1e-6)


def test_recall_returns_the_stored_cell_state_of_the_nearest_context_and_how_well_it_matches():
    memory = empty_memory(4, 3, 2)
    for k in (1, 2):  # empty: nothing read, no match
        value, match = RECALL(memory, jnp.ones(3), k, 1e-3)
        np.testing.assert_array_equal(value, [0.0, 0.0])
        assert float(match) == 0.0
    codes = jnp.array([[0, 0, 1], [1, 1, 0], [1, 0, 1]], jnp.float32)
    values = jnp.array([[1.0, -1.0], [2.0, 0.5], [-3.0, 4.0]])
    for code, value in zip(codes, values, strict=True):
        memory = STORE(memory, code, value, jnp.bool_(True))
    assert int(memory.size) == 3
    for k in range(3):
        value, match = RECALL(memory, codes[k], 1, 1e-3)
        np.testing.assert_array_equal(value, values[k])
        assert float(match) == 1.0  # a returning context matches exactly
    # A query no key equals: the nearest one (0.9 from [1, 1, 0]); match 1 / (1 + 0.81).
    value, match = RECALL(memory, jnp.array([1.0, 1.0, 0.9]), 1, 1e-3)
    np.testing.assert_array_equal(value, values[1])
    assert float(match) == pytest.approx(1 / 1.81)
    # Two neighbours: kernel weights 1 / (d^2 + delta), normalised; an exact match dominates.
    two, match = RECALL(memory, codes[0], 2, 1e-3)
    w = np.array([1 / 1e-3, 1 / (1 + 1e-3)])  # [0,0,1] vs itself and vs [1,0,1]
    np.testing.assert_allclose(two, (w / w.sum()) @ np.asarray(values)[[0, 2]], rtol=1e-5)
    assert float(match) == 1.0
    assert float(RECALL(memory, jnp.array([1.0, 1.0, 0.9]), 2, 1e-3)[1]) == pytest.approx(1 / 1.81)


def test_store_overwrites_a_returning_context_and_skips_when_not_told():
    memory = empty_memory(2, 2, 3)
    key = jnp.array([1.0, 0.0])
    memory = STORE(memory, key, jnp.ones(3), jnp.bool_(True))
    memory = STORE(memory, key, 2 * jnp.ones(3), jnp.bool_(True))  # the same context again
    assert int(memory.size) == 1
    np.testing.assert_array_equal(RECALL(memory, key, 1, 1e-3)[0], [2.0, 2.0, 2.0])
    unchanged = STORE(memory, jnp.array([0.0, 1.0]), 5 * jnp.ones(3), jnp.bool_(False))
    for a, b in zip(jax.tree.leaves(unchanged), jax.tree.leaves(memory), strict=True):
        np.testing.assert_array_equal(a, b)


# --- the network's switches ------------------------------------------------------------------
def _run_network(network, params, family, task, forget=False):
    """Logits at every step of one trial with fixed actions (arms 0, 1, 2, 0, ...); ``forget``
    empties the memory before every step."""
    trial = Trial(family, 1)
    empty = network.initial_state()[1]

    def step(carry, t):
        obs, state, hidden = carry
        if forget:
            hidden = (hidden[0], empty)
        hidden, logits, _ = network.apply(params, hidden, obs)
        obs, state, *_ = trial.step(jax.random.PRNGKey(0), state, t % 3, task)
        return (obs, state, hidden), logits

    def run():
        obs, state = trial.reset(jax.random.PRNGKey(0), task)
        start = (obs, state, network.initial_state())
        return jax.lax.scan(step, start, jnp.arange(trial.max_steps, dtype=jnp.int32))[1]

    return np.asarray(jax.jit(run)())


def _networks():
    family = make(SMALL)
    nets = {
        memory: EpisodicActorCritic(
            num_actions=3, context_size=6, pulls_per_episode=2, capacity=3, hidden_size=8,
            memory=memory,
        )
        for memory in (True, False)
    }  # fmt: skip
    obs, _ = Trial(family, 1).reset(jax.random.PRNGKey(0), family.task(0))
    params = {
        m: jax.jit(lambda net=net: net.init(KEY, net.initial_state(), obs, method="initialize"))()
        for m, net in nets.items()
    }
    return family, nets, params


def _first_pulls(family, task, logits):
    """First-pull logits of each episode, grouped by context: ``{context: [logits, ...]}``."""
    out = {}
    for episode, context in enumerate(np.asarray(task.schedule)):
        out.setdefault(int(context), []).append(logits[episode * family.pulls_per_episode])
    return out


@pytest.mark.slow
def test_memory_false_ignores_memory_and_memory_true_reinstates():
    family, nets, params = _networks()
    task = family.task(3)
    # Without memory a returning context's first pull is its novel first pull, exactly.
    plain = _first_pulls(family, task, _run_network(nets[False], params[False], family, task))
    for firsts in plain.values():
        np.testing.assert_array_equal(firsts[0], firsts[1])
    assert nets[False].initial_state()[1] is None
    # With memory the stored cell state changes the first pull of a returning context.
    episodic = _first_pulls(family, task, _run_network(nets[True], params[True], family, task))
    assert all(not np.allclose(f[0], f[1]) for f in episodic.values())


@pytest.mark.slow
def test_retrieval_off_equals_never_reading_the_memory():
    family, nets, params = _networks()
    task = family.task(3)
    off = _run_network(nets[True].clone(retrieval=False), params[True], family, task)
    forgetting = _run_network(nets[True], params[True], family, task, forget=True)
    np.testing.assert_array_equal(off, forgetting)
    assert not np.allclose(off, _run_network(nets[True], params[True], family, task))


# --- the learner ---------------------------------------------------------------------------------
def test_agent_with_retrieval_off_is_another_kind_of_agent():
    learner = EpisodicLSTM(TINY)
    params = {}  # building an agent does not run it
    on, off = learner.agent(params), learner.agent(params, retrieval=False)
    assert on.kind != off.kind and on.name == "episodic_lstm"
    assert learner.episodes_per_trial == 1
    assert learner.steps_per_update == TINY.num_tasks * 12


@pytest.mark.long
def test_resumed_training_ends_bit_identical(tmp_path):
    _, full = runner.train("episodic_lstm", TINY, tmp_path / "full", progress=False)
    _, cut = runner.train("episodic_lstm", TINY, tmp_path / "cut", progress=False, stop_at=1)
    assert int(cut.update) == 2
    _, resumed = runner.train("episodic_lstm", TINY, tmp_path / "cut", resume=True, progress=False)
    assert int(resumed.update) == 4
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "field,value",
    [
        ("hidden_size", 0),
        ("num_neighbours", 0),
        ("num_tasks", -2),
        ("gamma", 1.5),
        ("learning_rate", 0.0),
        ("kernel_delta", 0.0),
        ("memory", "yes"),
        ("memory_gradient", 1),
        ("seed", -1),
    ],
)
def test_bad_config_values_are_one_line_errors_naming_the_field(field, value):
    with pytest.raises(Learn2RLError, match=field) as error:
        Config(**{field: value})
    assert "\n" not in str(error.value)


def test_configs_the_task_cannot_serve_are_one_line_errors():
    with pytest.raises(Learn2RLError, match="bandit/recurring-context family") as error:
        EpisodicLSTM(TINY.replace(task="bandit/independent-2arm"))
    assert "\n" not in str(error.value)
    with pytest.raises(Learn2RLError, match="num_neighbours") as error:
        EpisodicLSTM(TINY.replace(num_neighbours=4))
    assert "\n" not in str(error.value)


@pytest.mark.long
def test_the_eplstm_learns_to_recall_a_returning_bandit():
    """About 50 s on two CPU cores: 2 arms, 4 pulls, 12 episodes of 3 contexts. After training,
    the first pull on a returning context is mostly the rewarding arm (chance: 1/2); with
    retrieval off it is at chance, since nothing else tells the agent which arm pays."""
    from learn2rl.evaluation import evaluate
    from learn2rl.experiments.ritter2018 import accuracy_by_pull

    task = (
        "bandit/recurring-context"
        "[num_arms=2,pulls_per_episode=4,num_episodes=12,num_contexts=3,barcode_size=8]"
    )
    config = Config(
        task=task, hidden_size=32, num_tasks=64, num_updates=1400, updates_per_chunk=1400,
        learning_rate=5e-3, final_learning_rate=5e-4,
    )  # fmt: skip
    learner = EpisodicLSTM(config)
    state, _ = learner.train_chunk(learner.init(), config.num_updates)
    family, key = learner.family, jax.random.PRNGKey(0)
    tasks = family.tasks(300)

    def first_returning(agent):
        found = accuracy_by_pull([evaluate(agent, family, tasks, 1, key)], family, tasks)
        return found["returning"]["accuracy"][0]

    assert first_returning(learner.agent(state.params)) > 0.68
    assert abs(first_returning(learner.agent(state.params, retrieval=False)) - 0.5) < 0.06


@pytest.mark.long
def test_the_reproduction_runs_on_the_pipeline(tmp_path):
    """``reproduce ritter2018`` end to end at toy size: every row, analysis, finding, figure."""
    import json

    from learn2rl.experiments import pipeline, ritter2018

    tiny = [f"task={SMALL}", "num_updates=2", "num_tasks=4", "updates_per_chunk=2", "hidden_size=8"]
    result = pipeline.run(
        ritter2018.SPEC, tmp_path, quick=True, overrides=tiny, progress=False, num_test_tasks=16
    )
    payload = json.loads((tmp_path / "results.json").read_text())
    rows = {row["agent"] for row in payload["results"]}
    assert rows == {"epLSTM", "LSTM", "epLSTM (retrieval off)", "random"}
    accuracy = payload["analyses"]["accuracy"]
    assert set(accuracy) == rows
    assert len(accuracy["LSTM"]["returning"]["accuracy"]) == 2  # pulls per episode
    assert len(result["findings"]) == len(ritter2018.SPEC.findings) == 4
    assert (tmp_path / "accuracy_by_pull.png").exists()
    assert "## Accuracy by pull" in (tmp_path / "report.md").read_text()
