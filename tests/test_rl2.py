import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import baselines, runner
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import evaluate
from learn2rl.experiments.demo import DEMO_CONFIG
from learn2rl.learners.rl2 import RL2, Config
from learn2rl.tasks import make


@pytest.mark.parametrize(
    "field,value",
    [
        ("num_tasks", 0),
        ("num_updates", -1),
        ("hidden_size", 2.5),
        ("gamma", 1.5),
        ("gae_lambda", -0.1),
        ("learning_rate", 0.0),
        ("entropy_coef", -1.0),
        ("algorithm", "sac"),
        ("cell", "rnn"),
        ("num_episodes", 0),
    ],
)
def test_config_values_out_of_range_name_the_field(field, value):
    with pytest.raises(Learn2RLError, match=field):
        Config(**{field: value})


def test_ppo_minibatches_must_divide_tasks():
    with pytest.raises(Learn2RLError, match="ppo_minibatches"):
        Config(algorithm="ppo", num_tasks=10, ppo_minibatches=4)


def test_config_round_trips_and_rejects_unknown_fields():
    config = Config(num_tasks=64)
    assert Config.from_dict(config.to_dict()) == config
    with pytest.raises(Learn2RLError, match="bogus"):
        Config.from_dict({**config.to_dict(), "bogus": 1})


@pytest.mark.parametrize("algorithm,cell", [("a2c", "gru"), ("ppo", "lstm")])
def test_same_config_and_seed_give_bit_identical_results(tiny_config, algorithm, cell):
    config = tiny_config.replace(algorithm=algorithm, cell=cell, ppo_minibatches=2)
    runs = []
    for _ in range(2):
        learner = RL2(config, make(config.task))
        state, metrics = learner.train_chunk(learner.init(), 3)
        runs.append((jax.device_get(state.params), jax.device_get(metrics)))
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    other = RL2(config.replace(seed=1), make(config.task))
    other_state, _ = other.train_chunk(other.init(), 3)
    assert not np.array_equal(
        jax.tree.leaves(other_state.params)[0], jax.tree.leaves(runs[0][0])[0]
    )


def test_chunks_compose(tiny_config):
    """Two chunks of 2 updates end where one chunk of 4 does (what resume relies on)."""
    learner = RL2(tiny_config, make(tiny_config.task))
    one, _ = learner.train_chunk(learner.init(), 4)
    two, _ = learner.train_chunk(learner.init(), 2)
    two, _ = learner.train_chunk(two, 2)
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a2c_gradient_matches_collect_then_differentiate(tiny_config):
    """Differentiating through the rollout equals the textbook two-pass A2C gradient."""
    learner = RL2(tiny_config.replace(normalize_advantages=False), make(tiny_config.task))
    params = learner.init().params
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    tasks = jax.vmap(learner.family.sample)(keys)
    fused = jax.grad(lambda p: learner._a2c_loss(p, keys, tasks, 0.05)[0])

    def two_pass(p):
        t = jax.vmap(lambda k, task: learner.rollout(params, k, task))(keys, tasks)
        adv = jax.vmap(learner.advantages)(t)
        log_prob, entropy, value = jax.vmap(lambda tr: learner._replay(p, tr))(t)
        weight = 1.0 / t.valid.shape[1]
        policy = -jnp.sum(weight * log_prob * adv, axis=1)
        value_loss = 0.5 * jnp.sum(weight * (value - (adv + t.value)) ** 2, axis=1)
        ent = jnp.sum(weight * entropy, axis=1)
        return jnp.mean(policy + learner.config.value_coef * value_loss - 0.05 * ent)

    # _a2c_loss uses pmean-free psum only when normalizing, so it runs outside shard_map here.
    for a, b in zip(
        jax.tree.leaves(fused(params)), jax.tree.leaves(jax.grad(two_pass)(params)), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-6)


def test_rl2_learns_to_beat_random_and_greedy_on_a_tiny_bandit():
    """Two arms, 100 pulls, a small batch: about 20 s of training on two CPU cores.

    Greedy (highest Beta(1,1) posterior mean) is a strong baseline here (regret about 2.7, against
    1.75 for Bayes-optimal and 16.7 for random); beating it needs real within-trial learning.
    """
    # The demo's learner with a smaller batch, so more updates fit in a few seconds.
    config = DEMO_CONFIG.replace(num_tasks=128, num_updates=1600, updates_per_chunk=1600)
    family = make(config.task)
    learner = RL2(config, family)
    state, metrics = learner.train_chunk(learner.init(), config.num_updates)
    tasks = family.tasks(2000)
    key = jax.random.PRNGKey(0)
    ours = evaluate(learner.agent(state.params), family, tasks, 100, key)
    random = evaluate(baselines.get("random", family, 100), family, tasks, 100, key)
    greedy = evaluate(baselines.get("greedy", family, 100), family, tasks, 100, key)
    assert ours.total_regrets.mean() < random.total_regrets.mean() - 10.0
    # Paired over the same tasks and reward draws: a clear margin, not noise.
    difference = greedy.total_regrets - ours.total_regrets
    assert difference.mean() > 3 * difference.std() / np.sqrt(difference.size)


def test_resumed_training_ends_where_uninterrupted_training_ends(tiny_config, tmp_path):
    _, full = runner.train("rl2", tiny_config, tmp_path / "full", progress=False)
    _, cut = runner.train("rl2", tiny_config, tmp_path / "cut", progress=False, stop_at=3)
    assert int(cut.update) == 4  # the chunk that reaches update 3 ends at 4
    with pytest.raises(Learn2RLError, match="different config"):
        runner.train("rl2", tiny_config.replace(seed=5), tmp_path / "cut", resume=True)
    _, resumed = runner.train("rl2", tiny_config, tmp_path / "cut", resume=True, progress=False)
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


def test_num_tasks_must_divide_over_devices(tiny_config):
    devices = jax.devices()
    with pytest.raises(Learn2RLError, match="divisible by the number of devices"):
        RL2(tiny_config.replace(num_tasks=3), make(tiny_config.task), devices=devices * 2)
