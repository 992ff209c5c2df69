"""Episodic control (learners/episodic/): MFEC's max rule never lowers a stored value, NEC's online
N-step targets against the episode's discounted returns, resume through the runner for the three
learners, config errors, and (slow) learning Catch and the command line."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import checkpoint, runner
from learn2rl.errors import Learn2RLError
from learn2rl.learners.episodic import common, mfec, nec
from learn2rl.learners.offpolicy import dqn
from learn2rl.logging import read_metrics
from learn2rl.ops import dnd
from learn2rl.types import TrialObs

TINY_MFEC = mfec.Config(
    env="Catch-bsuite", capacity=64, key_size=8, rollout_length=9, num_updates=4,
    updates_per_chunk=2,
)  # fmt: skip
TINY_NEC = nec.Config(
    env="Catch-bsuite", capacity=64, key_size=8, num_neighbours=4, n_step=4, hidden_sizes=(8,),
    replay_size=64, learning_starts=8, batch_size=4, num_updates=4, updates_per_chunk=2,
)  # fmt: skip
TINY_DQN = dqn.Config(
    env="Catch-bsuite", key_size=8, hidden_sizes=(8,), replay_size=64, learning_starts=8,
    batch_size=4, target_update_period=2, num_updates=4, updates_per_chunk=2,
)  # fmt: skip
TINY = {"mfec": TINY_MFEC, "nec": TINY_NEC, "dqn": TINY_DQN}


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_mfec_max_rule_never_lowers_a_stored_value():
    rng = np.random.default_rng(0)
    states = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
    memory = dnd.init(8, 3)  # room for every state: nothing is evicted
    write = jax.jit(lambda m, k, v: dnd.write(m, k, v, rule="max"))
    best = np.full(5, -np.inf)
    for _ in range(40):
        i = int(rng.integers(5))
        value = float(rng.normal())
        before, filled = np.asarray(memory.values).copy(), int(memory.size)
        memory = write(memory, states[i], value)
        best[i] = max(best[i], value)
        assert np.all(np.asarray(memory.values)[:filled] >= before[:filled])
        found, slot = dnd.find(memory, states[i])
        assert bool(found) and float(memory.values[int(slot)]) == pytest.approx(best[i])
    assert int(memory.size) == 5


def test_mfec_writes_an_episodes_discounted_returns_with_the_max_rule():
    learner = mfec.MFEC(TINY_MFEC.replace(discount=0.5))
    memories = common.init_memories(3, 8, 2)
    keys = jnp.asarray([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [9.0, 9.0]])  # step 2 revisits 0
    actions = jnp.asarray([0, 1, 0, 2], jnp.int32)
    rewards = jnp.asarray([1.0, 0.0, 2.0, 5.0])
    out = jax.jit(learner.write_episode)(memories, keys, actions, rewards, 3)  # step 3 is padding
    # R = (1 + 0.5 * 0 + 0.25 * 2, 0 + 0.5 * 2, 2) = (1.5, 1, 2); state [1, 0] keeps max(1.5, 2).
    np.testing.assert_array_equal(out.size, [1, 1, 0])
    np.testing.assert_allclose(out.values[0, 0], 2.0)
    np.testing.assert_allclose(out.values[1, 0], 1.0)


@pytest.mark.slow
def test_nec_targets_are_the_discounted_returns_when_n_exceeds_the_episode():
    # Catch episodes last 9 steps and pay +-1 at the last: with N = 20 every target is a
    # Monte-Carlo return r * gamma^(8 - t), written oldest first when the episode ends.
    config = TINY_NEC.replace(n_step=20, discount=0.9, learning_starts=64, replay_size=64)
    learner = nec.NEC(config)
    state, _ = learner.train_chunk(learner.init(), 2)
    state, _ = learner.train_chunk(state, 2)  # 4 updates x 4 steps = 16 steps: 1 episode
    state, _ = learner.train_chunk(state, 2)  # 24 steps: 2 episodes, 18 items
    size = int(state.replay.size)
    assert size == 18
    targets = np.asarray(state.replay.data["target"][:size]).reshape(2, 9)
    for episode in targets:
        reward = np.sign(episode[-1])
        np.testing.assert_allclose(episode, reward * 0.9 ** np.arange(8, -1, -1), rtol=1e-6)
    # The same items went into the action dictionaries (no exact key repeats the first time).
    assert int(jnp.sum(state.memories.size)) <= 18 and int(jnp.sum(state.memories.size)) > 0


_LEARNERS = {}
_build = runner.build


def _shared_build(name, config):
    """Runs of the same config share one learner and so one compiled chunk."""
    if (name, config) not in _LEARNERS:
        _LEARNERS[name, config] = _build(name, config)
    return _LEARNERS[name, config]


@pytest.fixture
def one_learner_per_config(monkeypatch):
    monkeypatch.setattr(runner, "build", _shared_build)


@pytest.mark.parametrize(
    "name",
    [
        "mfec",
        pytest.param("nec", marks=pytest.mark.slow),
        pytest.param("dqn", marks=pytest.mark.slow),
    ],
)
@pytest.mark.long
def test_a_run_cut_after_its_first_chunk_resumes_to_the_uninterrupted_run(
    name, tmp_path, one_learner_per_config
):
    config = TINY[name]
    learner, straight = runner.train(name, config, tmp_path / "straight", progress=False)
    assert int(straight.update) == 4
    assert checkpoint.updates(tmp_path / "straight" / runner.CHECKPOINT_DIR) == [0, 2, 4]
    rows = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    assert [row["update"] for row in rows] == [1, 2, 3, 4]
    assert rows[-1]["env_steps"] == 4 * learner.steps_per_update
    assert all(np.isfinite(row["episode_return"]) for row in rows)
    cut = tmp_path / "cut"
    runner.train(name, config, cut, progress=False, stop_at=2)
    runner.train(name, config, cut, resume=True, progress=False)
    _, resumed, _ = runner.load_learner(cut / runner.CHECKPOINT_DIR)
    assert_trees_equal(jax.device_get(straight), resumed)
    assert read_metrics(cut / "metrics.jsonl") == rows


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: mfec.Config(env="Pendulum-v1"), "config.env must be a discrete-action gymnax"),
        (lambda: mfec.Config(num_neighbours=0), "config.num_neighbours must be a positive"),
        (lambda: mfec.Config(capacity=5, num_neighbours=11), "config.num_neighbours (11) must"),
        (lambda: mfec.Config(discount=1.5), "config.discount must lie in [0, 1]"),
        (lambda: mfec.Config(epsilon_end=-0.1), "config.epsilon_end must lie in [0, 1]"),
        (lambda: mfec.Config(epsilon_decay_steps=1.5), "config.epsilon_decay_steps must be"),
        (lambda: nec.Config(n_step=0), "config.n_step must be a positive integer"),
        (lambda: nec.Config(delta=0.0), "config.delta must be a positive number"),
        (lambda: nec.Config(tabular_learning_rate=2.0), "config.tabular_learning_rate must lie"),
        (lambda: nec.Config(memory_learning_rate=-1.0), "config.memory_learning_rate must be >="),
        (lambda: nec.Config(batch_size=64, replay_size=32), "config.batch_size (64) must not"),
        (lambda: nec.Config(hidden_sizes=()), "config.hidden_sizes must be positive integers"),
        (lambda: nec.Config(optimizer="sgd"), "config.optimizer must be one of"),
        (lambda: dqn.Config(target_update_period=0), "config.target_update_period must be"),
        (lambda: dqn.Config(huber_delta=0.0), "config.huber_delta must be a positive number"),
        (lambda: dqn.Config(num_envs=0), "config.num_envs must be a positive integer"),
        (lambda: nec.Config.from_dict({"nstep": 3}), "unknown nec config field(s): nstep"),
    ],
)
def test_bad_settings_give_a_one_line_error_naming_the_field(build, message):
    with pytest.raises(Learn2RLError) as err:
        build()
    assert message in str(err.value) and "\n" not in str(err.value)


# --- slow: learning Catch, and the command line ---------------------------------------------
LEARNS = {
    "mfec": mfec.Config(
        env="Catch-bsuite", capacity=1000, rollout_length=50, num_updates=40,
        epsilon_decay_steps=500,
    ),
    "nec": nec.Config(
        env="Catch-bsuite", capacity=1000, n_step=10, hidden_sizes=(32,), key_size=16,
        replay_size=5000, learning_starts=100, learning_rate=1e-3, num_updates=500,
        epsilon_decay_steps=1000,
    ),
    "dqn": dqn.Config(
        env="Catch-bsuite", hidden_sizes=(32,), key_size=16, replay_size=5000,
        learning_starts=100, learning_rate=1e-3, target_update_period=25, num_updates=700,
        epsilon_decay_steps=1000,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(LEARNS))
@pytest.mark.long
def test_it_learns_catch(name):
    config = LEARNS[name]
    learner = runner.build(name, config.replace(updates_per_chunk=config.num_updates))
    state, _ = learner.train_chunk(learner.init(), config.num_updates)
    returns = learner.episode_returns(state.params, 200, jax.random.PRNGKey(1))
    # A random policy catches about 1 ball in 5 (mean return -0.6).
    assert float(jnp.mean(returns)) > 0.5
    # The trained agent acts on a trial observation as the greedy policy does.
    obs = state.obs[0]
    trial_obs = TrialObs(obs.reshape(10, 5), jnp.int32(0), jnp.float32(0), False, jnp.int32(0))
    agent = learner.agent(state.params)
    action, _ = agent.act(jax.random.PRNGKey(0), agent.init(None, None), trial_obs)
    q = learner.q_values(state.params, obs)
    assert float(q[int(action)]) == float(jnp.max(q))


@pytest.mark.long
def test_the_cli_trains_nec(tmp_path):
    from learn2rl.cli import main

    run = tmp_path / "run"
    settings = ["env=Catch-bsuite", "num_updates=2", "updates_per_chunk=2", "capacity=64"]
    settings += ["num_neighbours=4", "n_step=4", "hidden_sizes=8", "replay_size=64"]
    settings += ["learning_starts=8", "batch_size=4"]
    args = ["train", "--learner", "nec", "--out", str(run), "--no-progress"]
    assert main([*args, *[x for s in settings for x in ("--set", s)]]) == 0
    rows = read_metrics(run / "metrics.jsonl")
    assert [row["update"] for row in rows] == [1, 2]
