"""Evolved Policy Gradients (learners/epg.py): evosax OpenES as the learner configures it on a
quadratic (and the sign of its fitness), the loss network's shapes under jit and vmap, the policy
gradient through both of its branches, the PPO weight schedule, config errors, resume through the
runner, and (slow) that the inner loop learns the point-direction task."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import checkpoint, runner
from learn2rl.errors import Learn2RLError
from learn2rl.learners.epg import EPG, Config, EPGCore, Steps, open_es, ppo_weight
from learn2rl.logging import read_metrics
from learn2rl.tasks import make

TINY = dict(
    population_size=4,
    tasks_per_member=1,
    steps_per_epoch=20,
    epochs=2,
    buffer_size=40,
    minibatch_size=10,
    policy_hidden_sizes=(8,),
    conv_channels=(4, 4),
    context_size=4,
    head_size=4,
    fitness_episodes=1,
    validation_tasks=2,
)
# Four updates in two chunks of two: what the runner test trains (and resumes); the loss is
# validated at update 3 (every 3) and after the last update.
CONFIG = Config(num_updates=4, updates_per_chunk=2, validation_every=3, **TINY)


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


# --- the outer loop: evosax OpenES ------------------------------------------------------------
def _quadratic_run(sign: float, generations: int = 150):
    """The learner's ES on ``return(x) = -|x - 3|^2`` (a maximum at 3), told ``sign * return``:
    the learner tells minus the return (evosax minimises). Returns the distance to the optimum
    at the start and at the end."""
    config = Config(
        population_size=16,
        num_updates=generations,
        es_sigma=0.1,
        es_learning_rate=0.1,
        es_final_learning_rate=0.02,
        es_beta1=0.9,
        weight_decay=0.0,
    )
    template = {"w": jnp.zeros((5,), jnp.float32)}
    strategy, params = open_es(config, template)
    state = strategy.init(jax.random.PRNGKey(0), template, params)

    @jax.jit
    def generation(state, key):
        k_ask, k_tell = jax.random.split(key)
        population, state = strategy.ask(k_ask, state, params)
        returns = -jnp.sum((population["w"] - 3.0) ** 2, axis=1)
        state, _ = strategy.tell(k_tell, population, sign * returns, state, params)
        return state, None

    keys = jax.random.split(jax.random.PRNGKey(1), generations)
    state, _ = jax.lax.scan(generation, state, keys)
    final = strategy.get_mean(state)["w"]
    return float(jnp.linalg.norm(template["w"] - 3.0)), float(jnp.linalg.norm(final - 3.0))


@pytest.mark.slow
def test_open_es_as_configured_drives_a_quadratic_to_its_minimum():
    start, end = _quadratic_run(sign=-1.0)
    assert end < 0.1 * start, (start, end)


@pytest.mark.slow
def test_telling_plus_the_return_instead_of_minus_makes_it_worse():
    start, end = _quadratic_run(sign=+1.0, generations=40)
    assert end > start + 1.0, (start, end)


@pytest.mark.slow
def test_weight_decay_pulls_a_flat_objective_to_zero():
    config = Config(population_size=8, num_updates=100, es_sigma=0.1, weight_decay=0.01)
    template = {"w": jnp.full((3,), 2.0, jnp.float32)}
    strategy, params = open_es(config, template)
    state = strategy.init(jax.random.PRNGKey(0), template, params)
    for i in range(60):
        population, state = strategy.ask(jax.random.PRNGKey(i), state, params)
        state, _ = strategy.tell(jax.random.PRNGKey(i), population, jnp.zeros(8), state, params)
    assert float(jnp.max(jnp.abs(strategy.get_mean(state)["w"]))) < 2.0 - 0.2


# --- the loss network ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def core():
    return EPGCore(Config(**TINY), make("control/point-dir"))


def _buffer(core, seed=0):
    rng = np.random.default_rng(seed)
    n = core.config.buffer_size
    return Steps(
        obs=jnp.asarray(rng.normal(size=(n, core.obs_size)), jnp.float32),
        action=jnp.asarray(rng.normal(size=(n, core.action_size)), jnp.float32),
        reward=jnp.asarray(rng.normal(size=n), jnp.float32),
        done=jnp.asarray(rng.random(n) < 0.05, jnp.float32),
        time=jnp.linspace(0, 1, n, dtype=jnp.float32),
    )


@pytest.mark.long
def test_the_loss_is_a_scalar_under_jit_and_vmaps_over_a_population_of_losses(core):
    buffer = _buffer(core)
    loss_params = core.init_loss(jax.random.PRNGKey(0))
    policy = core.init_inner(jax.random.PRNGKey(1)).agent["policy"]
    rows = jnp.arange(30, 40)
    value = core.learned_loss(loss_params, policy, buffer, rows)
    assert value.shape == () and np.isfinite(float(value))
    jitted = jax.jit(core.learned_loss)(loss_params, policy, buffer, rows)
    np.testing.assert_allclose(jitted, value, rtol=1e-5)
    population = jax.vmap(core.init_loss)(jax.random.split(jax.random.PRNGKey(2), 3))
    values = jax.vmap(core.learned_loss, in_axes=(0, None, None, None))(
        population, policy, buffer, rows
    )
    assert values.shape == (3,) and len(np.unique(np.asarray(values))) == 3
    # Per-sample head: one loss per minibatch row, the context one vector for the buffer.
    inputs = jnp.zeros((core.config.buffer_size, core.input_size))
    per_sample = core.loss_net.apply(loss_params, inputs, inputs[:7])
    assert per_sample.shape == (7,)
    context = core.loss_net.apply(loss_params, inputs, method="context")
    assert context.shape == (core.config.context_size,)


@pytest.mark.slow
def test_the_policy_gradient_flows_through_the_context_and_the_head(core):
    buffer = _buffer(core)
    loss_params = core.init_loss(jax.random.PRNGKey(3))
    policy = core.init_inner(jax.random.PRNGKey(4)).agent["policy"]
    rows = jnp.arange(30, 40)
    features = core.features(buffer)

    def loss(policy, branch):
        mean, log_std = core.policy.apply(policy, buffer.obs)
        inputs = jnp.concatenate([features, mean, log_std], -1)
        if branch == "context":  # the head's policy outputs held fixed
            samples = jax.lax.stop_gradient(inputs[rows])
            return jnp.mean(core.loss_net.apply(loss_params, inputs, samples))
        context_inputs = jax.lax.stop_gradient(inputs)  # the buffer's policy outputs held fixed
        return jnp.mean(core.loss_net.apply(loss_params, context_inputs, inputs[rows]))

    full = jax.grad(core.learned_loss, argnums=1)(loss_params, policy, buffer, rows)
    through_context = jax.grad(loss)(policy, "context")
    through_head = jax.grad(loss)(policy, "head")
    for grads in (full, through_context, through_head):
        norm = float(jnp.sqrt(sum(jnp.sum(g**2) for g in jax.tree_util.tree_leaves(grads))))
        assert norm > 1e-6
        # The mean's hidden layer and the log-std both receive gradient.
        assert float(jnp.abs(grads["params"]["log_std"]).sum()) > 0
    summed = jax.tree_util.tree_map(jnp.add, through_context, through_head)
    leaves = zip(jax.tree_util.tree_leaves(full), jax.tree_util.tree_leaves(summed), strict=True)
    for a, b in leaves:
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def test_an_epoch_update_moves_the_policy_on_the_learned_loss_alone(core):
    inner = core.init_inner(jax.random.PRNGKey(0))
    epoch = jax.tree_util.tree_map(lambda x: x[-core.config.steps_per_epoch :], _buffer(core))
    loss_params = core.init_loss(jax.random.PRNGKey(5))
    updated = jax.jit(core.epoch_update)(loss_params, inner, epoch, jax.random.PRNGKey(1), 0.0)
    # The buffer is a FIFO: the epoch's steps are its newest rows.
    np.testing.assert_array_equal(updated.buffer.reward[-20:], epoch.reward)
    np.testing.assert_array_equal(updated.buffer.reward[:-20], 0.0)
    moved = jax.tree_util.tree_map(
        lambda a, b: float(jnp.abs(a - b).max()), updated.agent["policy"], inner.agent["policy"]
    )
    assert max(jax.tree_util.tree_leaves(moved)) > 0
    # The value network only learns from the PPO term: with alpha = 0 it stays put.
    assert_trees_equal(updated.agent["value"], inner.agent["value"])


def test_the_symmetric_loss_scores_a_mirrored_buffer_and_policy_alike(core):
    sym = EPGCore(Config(**TINY, loss_symmetry=True), make("control/point-dir"))
    buffer = _buffer(core, seed=3)
    loss_params = sym.init_loss(jax.random.PRNGKey(6))
    rng = np.random.default_rng(1)
    n = core.config.buffer_size
    mean = jnp.asarray(rng.normal(size=(n, 2)), jnp.float32)
    log_std = jnp.asarray(rng.normal(size=(n, 2)), jnp.float32)
    rows = jnp.arange(30, 40)
    base = float(sym.loss_value(loss_params, buffer, mean, log_std, rows))
    plain = []
    for obs_map, action_map in make("control/point-dir").symmetries():
        mirrored = buffer.replace(obs=buffer.obs @ obs_map.T, action=buffer.action @ action_map.T)
        args = (mirrored, mean @ action_map.T, log_std @ np.abs(action_map).T, rows)
        np.testing.assert_allclose(sym.loss_value(loss_params, *args), base, rtol=1e-5)
        plain.append(float(core.loss_value(loss_params, *args)))
    # The plain loss tells mirror images apart, and the symmetric one is the mean of its values.
    assert np.ptp(plain) > 1e-4
    np.testing.assert_allclose(np.mean(plain), base, rtol=1e-5)


# --- the PPO weight and the config ------------------------------------------------------------
def test_the_ppo_weight_falls_from_one_to_zero_over_the_first_fraction():
    values = [float(ppo_weight(u, 80, 0.125)) for u in (0, 5, 10, 11, 79)]
    np.testing.assert_allclose(values, [1.0, 0.5, 0.0, 0.0, 0.0], atol=1e-6)
    assert float(ppo_weight(0, 80, 0.0)) == 0.0
    assert float(ppo_weight(40, 80, 1.0)) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: Config(population_size=5), "config.population_size must be even"),
        (lambda: Config(population_size=0), "config.population_size must be a positive integer"),
        (lambda: Config(minibatch_size=7), "config.minibatch_size must divide steps_per_epoch"),
        (lambda: Config(buffer_size=10), "config.buffer_size must be >= steps_per_epoch"),
        (lambda: Config(buffer_size=40, steps_per_epoch=20, minibatch_size=10,
                        conv_kernels=(30, 20)), "config.buffer_size (40) is too short"),
        (lambda: Config(conv_strides=(5,)), "config.conv_kernels and conv_strides must have"),
        (lambda: Config(ppo_fraction=1.5), "config.ppo_fraction must lie in [0, 1]"),
        (lambda: Config(es_sigma=0.0), "config.es_sigma must be a positive number"),
        (lambda: Config(weight_decay=-1.0), "config.weight_decay must be >= 0"),
        (lambda: Config(time_input=1), "config.time_input must be true or false"),
        (lambda: Config(validation_every=-1), "config.validation_every must be an integer >= 0"),
        (lambda: Config(validation_tasks=0), "config.validation_tasks must be a positive integer"),
        (lambda: Config(policy_hidden_sizes=()), "config.policy_hidden_sizes must be positive"),
        (lambda: Config.from_dict({"sigma": 0.1}), "unknown epg config field(s): sigma"),
        (lambda: EPG(Config(task="bandit/independent-2arm")), "config.task must be a continuous"),
        (lambda: Config(loss_symmetry="yes"), "config.loss_symmetry must be true or false"),
        (lambda: EPG(Config(task="control/cheetah-dir", loss_symmetry=True)),
         "control/cheetah-dir declares none"),
    ],
)  # fmt: skip
def test_bad_settings_give_a_one_line_error_naming_the_field(build, message):
    with pytest.raises(Learn2RLError) as err:
        build()
    assert message in str(err.value) and "\n" not in str(err.value)


# --- the learner through the runner -------------------------------------------------------------
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


@pytest.mark.long
def test_a_run_cut_after_its_first_chunk_resumes_to_the_uninterrupted_run(
    tmp_path, one_learner_per_config
):
    learner, straight = runner.train("epg", CONFIG, tmp_path / "straight", progress=False)
    assert int(straight.update) == 4
    assert checkpoint.updates(tmp_path / "straight" / runner.CHECKPOINT_DIR) == [0, 2, 4]
    rows = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    assert [row["update"] for row in rows] == [1, 2, 3, 4]
    # ppo_fraction 1/8 of 4 updates: alpha is 1 at the first update only.
    assert [row["ppo_weight"] for row in rows] == [1.0, 0.0, 0.0, 0.0]
    assert all(np.isfinite(row["fitness"]) for row in rows)
    assert rows[-1]["env_steps"] == 4 * learner.steps_per_update == 4 * 4 * (40 + 20)
    cut = tmp_path / "cut"
    runner.train("epg", CONFIG, cut, progress=False, stop_at=2)
    assert checkpoint.load_meta(cut / runner.CHECKPOINT_DIR)["update"] == 2
    runner.train("epg", CONFIG, cut, resume=True, progress=False)
    _, resumed, _ = runner.load_learner(cut / runner.CHECKPOINT_DIR)
    assert_trees_equal(jax.device_get(straight), resumed)
    assert read_metrics(cut / "metrics.jsonl") == rows
    # The evolved loss moved away from its initialisation.
    fresh = learner.init()
    moved = jax.tree_util.tree_map(
        lambda a, b: float(jnp.abs(a - b).max()), resumed.loss_params, fresh.loss_params
    )
    assert max(jax.tree_util.tree_leaves(moved)) > 0
    # Validation: the initial loss is scored at init, the ES mean at updates 3 and 4 (the last);
    # the run's result is the best of them, and rescoring it gives its recorded score.
    initial = float(fresh.best_score)
    assert [row["validation"] for row in rows[:2]] == [initial, initial]
    assert rows[2]["validation"] != initial
    best = [max(initial, *(row["validation"] for row in rows[: i + 1])) for i in range(4)]
    assert [row["validation_best"] for row in rows] == best
    rescored = learner.validation_score(resumed.params["loss"], resumed.key)
    np.testing.assert_allclose(float(rescored), best[-1], rtol=1e-5)


@pytest.mark.long
def test_without_validation_the_result_is_the_last_es_mean():
    learner = EPG(dataclasses.replace(CONFIG, validation_every=0))
    state, metrics = learner.train_chunk(learner.init(), 2)
    assert "validation" not in metrics
    assert_trees_equal(state.params["loss"], state.loss_params)


@pytest.mark.long
def test_the_population_split_over_two_devices_gives_the_one_device_numbers():
    if len(jax.devices()) < 2:
        pytest.skip("needs two devices (one per CPU core)")
    one, two = EPG(CONFIG, devices=jax.devices()[:1]), EPG(CONFIG, devices=jax.devices()[:2])
    assert len(two.devices) == 2  # 4 members: 2 lifetimes per device
    (a, metrics_a), (b, metrics_b) = one.train_chunk(one.init(), 2), two.train_chunk(two.init(), 2)
    # Each lifetime is computed as on one device and the fitnesses are gathered in order, so the
    # evolved loss is the same bit for bit; the logged mean fitness may differ in its last bit
    # (the two programs may sum the members in another order).
    assert_trees_equal(jax.device_get(a), jax.device_get(b))
    np.testing.assert_allclose(metrics_a["fitness"], metrics_b["fitness"], rtol=1e-6)


# --- slow: learning ---------------------------------------------------------------------------
@pytest.mark.long
def test_the_ppo_inner_loop_learns_point_directions_and_a_random_loss_does_not():
    learner = EPG(Config())  # the default lifetime: PPO reaches 0.8-0.9 of the best return
    tasks = learner.family.tasks(8, "test")
    best = float(jnp.mean(jax.vmap(learner.family.best_return)(tasks)))
    ppo = learner.train_policies(learner.random_loss(0), tasks, jax.random.PRNGKey(0), 1.0)
    rand = learner.train_policies(learner.random_loss(0), tasks, jax.random.PRNGKey(0), 0.0)
    assert float(ppo["final_return"].mean()) > 0.5 * best
    assert float(rand["final_return"].mean()) < 0.25 * best
    # The trained policies come back; acting with their means scores them deterministically.
    mean_returns = learner.policy_returns(ppo["policy"], tasks, jax.random.PRNGKey(1), 2)
    assert mean_returns.shape == (8,) and float(mean_returns.mean()) > 0.5 * best
    random_returns = learner.policy_returns(rand["policy"], tasks, jax.random.PRNGKey(1), 2)
    assert float(random_returns.mean()) < 0.25 * best
