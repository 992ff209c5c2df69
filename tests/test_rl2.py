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
@pytest.mark.long
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


@pytest.mark.long
def test_chunks_compose(tiny_config):
    """Two chunks of 2 updates end where one chunk of 4 does (what resume relies on)."""
    learner = RL2(tiny_config, make(tiny_config.task))
    one, _ = learner.train_chunk(learner.init(), 4)
    two, _ = learner.train_chunk(learner.init(), 2)
    two, _ = learner.train_chunk(two, 2)
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two), strict=True):
        np.testing.assert_array_equal(a, b)


def check_a2c_gradient(config, atol):
    """Differentiating through the rollout equals the textbook two-pass A2C gradient."""
    learner = RL2(config.replace(normalize_advantages=False), make(config.task))
    params = learner.init().params
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    tasks = jax.vmap(learner.family.sample)(keys)
    fused = jax.grad(lambda p: learner._a2c_loss(p, keys, tasks, 0.05, config.gamma, None)[0])

    def two_pass(p):
        t = jax.vmap(lambda k, task: learner.rollout(params, k, task))(keys, tasks)
        adv = jax.vmap(learner.advantages)(t)
        log_prob, entropy, value, _ = jax.vmap(lambda tr: learner._replay(p, tr))(t)
        weight = t.valid / t.valid.sum(axis=1, keepdims=True)
        policy = -jnp.sum(weight * log_prob * adv, axis=1)
        value_loss = 0.5 * jnp.sum(weight * (value - (adv + t.value)) ** 2, axis=1)
        ent = jnp.sum(weight * entropy, axis=1)
        return jnp.mean(policy + learner.config.value_coef * value_loss - 0.05 * ent)

    # _a2c_loss uses pmean-free psum only when normalizing, so it runs outside shard_map here.
    for a, b in zip(
        jax.tree.leaves(fused(params)), jax.tree.leaves(jax.grad(two_pass)(params)), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=atol)


@pytest.mark.long
def test_a2c_gradient_matches_collect_then_differentiate(tiny_config):
    check_a2c_gradient(tiny_config, atol=1e-6)


@pytest.mark.long
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


@pytest.mark.slow
def test_resumed_training_ends_where_uninterrupted_training_ends(tiny_config, tmp_path):
    _, full = runner.train("rl2", tiny_config, tmp_path / "full", progress=False)
    _, cut = runner.train("rl2", tiny_config, tmp_path / "cut", progress=False, stop_at=3)
    assert int(cut.update) == 4  # the chunk that reaches update 3 ends at 4
    with pytest.raises(Learn2RLError, match="different config"):
        runner.train("rl2", tiny_config.replace(seed=5), tmp_path / "cut", resume=True)
    _, resumed = runner.train("rl2", tiny_config, tmp_path / "cut", resume=True, progress=False)
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


def test_any_device_count_uses_the_largest_that_divides_the_batch(tiny_config, capsys):
    devices = [jax.devices()[0]] * 6  # the rule only counts devices; six stands in for six cores
    learner = RL2(tiny_config.replace(num_tasks=8), make(tiny_config.task), devices=devices)
    assert len(learner.devices) == 4
    assert "num_tasks (8) splits evenly over 4 of the 6 devices" in capsys.readouterr().err
    # PPO splits each device's share again: 12 tasks, 4 minibatches, 2 devices -> 6 per device
    # would not split into 4, so one device takes all 12.
    ppo = tiny_config.replace(algorithm="ppo", num_tasks=12, ppo_minibatches=4)
    assert len(RL2(ppo, make(ppo.task), devices=devices[:2]).devices) == 1


# --- continuous actions (Gaussian head) ------------------------------------------------------


@pytest.fixture
def point_config() -> Config:
    """RL^2 on 2-D point navigation, small enough to compile and train in seconds."""
    return Config(
        task="control/point-goal",
        num_episodes=2,
        hidden_size=8,
        num_tasks=8,
        num_updates=6,
        updates_per_chunk=2,
        gamma=0.9,
        gae_lambda=0.95,
        learning_rate=3e-3,
        final_learning_rate=3e-4,
        entropy_coef=0.0,
    )


def test_init_std_must_be_positive():
    with pytest.raises(Learn2RLError, match="init_std"):
        Config(init_std=0.0)


@pytest.mark.slow
def test_gaussian_head_shapes_and_initial_std(point_config):
    family = make(point_config.task)
    learner = RL2(point_config.replace(init_std=0.3), family)
    params = learner.init().params
    obs, _ = learner.trial.reset(jax.random.PRNGKey(0), family.default_params)
    hidden, (mean, log_std), value = learner.network.apply(
        params, learner.network.initial_state(), obs
    )
    assert hidden.shape == (point_config.hidden_size,)
    assert mean.shape == log_std.shape == (family.action_size,)
    assert mean.dtype == log_std.dtype == jnp.float32
    assert value.shape == ()
    # The initial std is init_std half-widths of the action box ([-0.1, 0.1]), the same for all
    # states; the mean starts near zero (small head init).
    np.testing.assert_allclose(np.exp(log_std), 0.3 * family.max_step, rtol=1e-6)
    assert np.all(np.abs(mean) < 0.1 * family.max_step)
    assert params["params"]["log_std"].shape == (family.action_size,)
    # Discrete families have no log_std parameter (their parameters are unchanged).
    bandit = RL2(
        point_config.replace(task="bandit/independent-2arm"), make("bandit/independent-2arm")
    )
    assert "log_std" not in bandit.init().params["params"]


def test_continuous_previous_action_enters_raw_in_units_of_the_action_box():
    from learn2rl.nets.recurrent import trial_features
    from learn2rl.types import TrialObs

    obs = TrialObs(
        obs=jnp.array([0.2, -0.3]),
        prev_action=jnp.array([0.05, -0.4]),
        prev_reward=jnp.float32(-0.5),
        prev_done=jnp.float32(0.0),
        step=jnp.int32(3),
    )
    features = trial_features(obs, 2, 10, continuous=True, action_scale=0.1)
    np.testing.assert_allclose(features, [0.2, -0.3, 0.5, -4.0, -0.5, 0.0, 0.3], rtol=1e-6)


@pytest.mark.slow
def test_gaussian_log_prob_and_entropy_match_numpy():
    from learn2rl.learners.rl2 import DiagonalGaussian

    rng = np.random.default_rng(0)
    mean = rng.normal(size=(5, 3)).astype(np.float32)
    log_std = rng.normal(scale=0.5, size=(5, 3)).astype(np.float32)
    action = rng.normal(size=(5, 3)).astype(np.float32)
    std = np.exp(log_std.astype(np.float64))
    expected = np.sum(
        -((action - mean) ** 2) / (2 * std**2) - np.log(std) - 0.5 * np.log(2 * np.pi), axis=-1
    )
    got = jax.vmap(DiagonalGaussian.log_prob)((mean, log_std), action)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    entropy = jax.vmap(DiagonalGaussian.entropy)((mean, log_std))
    np.testing.assert_allclose(
        entropy, np.sum(0.5 * np.log(2 * np.pi * np.e * std**2), axis=-1), rtol=1e-5, atol=1e-5
    )
    # Sampling draws from that density: the mean negative log-density of many samples is the
    # entropy.
    keys = jax.random.split(jax.random.PRNGKey(0), 20000)
    policy = (jnp.asarray(mean[0]), jnp.asarray(log_std[0]))
    samples = jax.vmap(DiagonalGaussian.sample, in_axes=(0, None))(keys, policy)
    assert samples.shape == (20000, 3) and samples.dtype == jnp.float32
    np.testing.assert_allclose(samples.mean(axis=0), mean[0], atol=0.05)
    np.testing.assert_allclose(samples.std(axis=0), std[0], rtol=0.03)
    neg_log_density = -jax.vmap(DiagonalGaussian.log_prob, in_axes=(None, 0))(policy, samples)
    np.testing.assert_allclose(neg_log_density.mean(), entropy[0], atol=0.05)


@pytest.mark.slow
def test_greedy_continuous_agent_acts_with_the_mean(point_config):
    family = make(point_config.task)
    learner = RL2(point_config, family)
    state, _ = learner.train_chunk(learner.init(), 2)
    obs, _ = learner.trial.reset(jax.random.PRNGKey(0), family.default_params)
    hidden = learner.network.initial_state()
    _, (mean, _), _ = learner.network.apply(state.params, hidden, obs)
    greedy = learner.agent(state.params, greedy=True)
    action, _ = greedy.act(jax.random.PRNGKey(1), greedy.init(None, None), obs)
    np.testing.assert_array_equal(action, mean)
    assert action.shape == (family.action_size,) and action.dtype == jnp.float32
    sampled, _ = learner.agent(state.params).act(jax.random.PRNGKey(1), hidden, obs)
    assert sampled.shape == (family.action_size,) and not np.array_equal(sampled, mean)


@pytest.mark.parametrize("algorithm,cell", [("a2c", "gru"), ("ppo", "lstm")])
@pytest.mark.long
def test_continuous_config_is_deterministic(point_config, algorithm, cell):
    config = point_config.replace(algorithm=algorithm, cell=cell, ppo_minibatches=2)
    runs = []
    for _ in range(2):
        learner = RL2(config, make(config.task))
        state, metrics = learner.train_chunk(learner.init(), 2)
        runs.append((jax.device_get(state.params), jax.device_get(metrics)))
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1]), strict=True):
        assert np.all(np.isfinite(a))
        np.testing.assert_array_equal(a, b)


@pytest.mark.long
def test_continuous_a2c_gradient_matches_collect_then_differentiate(point_config):
    check_a2c_gradient(point_config, atol=1e-5)


@pytest.mark.long
def test_rl2_learns_point_navigation_without_nans():
    """Short RL^2 training on held-out point-navigation goals (about 20 s on two idle cores).

    The untrained network random-walks near the start (about -58 per episode); standing still
    scores about -38. After 400 updates the policy heads for the goal it infers from the rewards
    (episode 1 about -7.7, episode 2 about -2.9 when written; longer training reaches -3.7, -1.2).
    """
    config = Config(
        task="control/point-goal",
        num_episodes=2,
        hidden_size=64,
        num_tasks=32,
        num_updates=400,
        updates_per_chunk=400,
        gamma=0.9,
        gae_lambda=0.95,
        learning_rate=4e-3,
        final_learning_rate=2e-3,
        entropy_coef=0.0,
    )
    family = make(config.task)
    learner = RL2(config, family)
    initial = learner.init()
    state, metrics = learner.train_chunk(initial, config.num_updates)
    for leaf in jax.tree.leaves((state.params, metrics)):
        assert np.all(np.isfinite(np.asarray(leaf)))
    tasks = family.tasks(100, "test")
    key = jax.random.PRNGKey(1234)
    before = evaluate(learner.agent(initial.params), family, tasks, 2, key)
    after = evaluate(learner.agent(state.params), family, tasks, 2, key)
    assert after.actions.shape[-1] == family.action_size
    per_episode = [(after.rewards * after.valid * (after.episodes == e)).sum(1) for e in (0, 1)]
    assert after.total_rewards.mean() > before.total_rewards.mean() + 40.0
    # Better than any policy blind to the goal could do (standing still: about -38 per episode).
    assert per_episode[1].mean() > -25.0


@pytest.mark.long
def test_previous_obs_feeds_the_last_observation_and_starts_from_zeros():
    """``previous_obs=True``: the state carries the last observation; it changes the output."""
    config = Config(
        task="mdp/tabular-10s5a", num_episodes=2, hidden_size=8, num_tasks=2, previous_obs=True
    )
    learner = RL2(config, make(config.task))
    state = learner.init()
    core, last = learner.network.initial_state()
    assert core.shape == (8,) and np.array_equal(last, np.zeros(10, np.float32))
    obs, _ = learner.trial.reset(jax.random.PRNGKey(0), learner.family.task(0))
    (core, last), logits, value = learner.network.apply(state.params, (core, last), obs)
    assert np.array_equal(last, np.asarray(obs.obs))  # the state now holds this observation
    other = jax.nn.one_hot(3, 10)  # as if the previous step had been in state 3
    _, other_logits, _ = learner.network.apply(state.params, (jnp.zeros(8), other), obs)
    assert not np.allclose(logits, other_logits)
    # Training and acting run with the pair as the recurrent state.
    state, metrics = learner.train_chunk(state, 2)
    assert np.isfinite(np.asarray(metrics["trial_return"])).all()
    result = evaluate(
        learner.agent(state.params),
        learner.family,
        learner.family.tasks(4),
        2,
        jax.random.PRNGKey(1),
    )
    assert result.rewards.shape == (4, 20)


def test_discount_schedule_moves_linearly_to_final_gamma(tiny_config):
    learner = RL2(
        tiny_config.replace(gamma=0.5, final_gamma=0.9, num_updates=8),
        make("bandit/independent-2arm"),
    )
    assert [float(learner.gamma(u)) for u in (0, 4, 8, 100)] == pytest.approx([0.5, 0.7, 0.9, 0.9])
    assert float(RL2(tiny_config, make(tiny_config.task)).gamma(5)) == pytest.approx(
        tiny_config.gamma
    )
    with pytest.raises(Learn2RLError, match="final_gamma must lie in"):
        tiny_config.replace(final_gamma=1.5)
