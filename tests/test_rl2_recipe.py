"""Duan et al. 2016's training recipe as RL^2 options: the normalised ReLU GRU, a separate value
network, normalised value targets, Huber value loss, PPO's KL stop and AdamW."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import runner
from learn2rl.errors import Learn2RLError
from learn2rl.learners.rl2 import RL2, Config, Moments, observed_mean_rewards
from learn2rl.nets.recurrent import NormGRUCell
from learn2rl.tasks import make

# A tiny tabular-MDP learner: 2 episodes of 10 steps per trial, GRU-8, 8 trials per update.
MDP = Config(task="mdp/tabular-10s5a", num_episodes=2, hidden_size=8, num_tasks=8)
RECIPE = dict(
    cell="ln-gru",
    value_network="separate",
    normalize_returns=True,
    value_loss="huber",
    algorithm="ppo",
    ppo_epochs=2,
    ppo_minibatches=2,
    ppo_target_kl=0.01,
    weight_decay=0.01,
)


@pytest.mark.parametrize(
    "field,value",
    [
        ("value_network", "tied"),
        ("value_loss", "l1"),
        ("ppo_target_kl", 0.0),
        ("weight_decay", -0.1),
        ("cell", "gn-gru"),
    ],
)
def test_recipe_options_out_of_range_name_the_field(field, value):
    with pytest.raises(Learn2RLError, match=field):
        Config(**{field: value})


@pytest.mark.parametrize("norm", ["layer", "weight"])
@pytest.mark.long
def test_norm_gru_keeps_its_state_nonnegative_and_leans_towards_keeping_it(norm):
    cell = NormGRUCell(16, norm=norm)
    x = jax.random.normal(jax.random.PRNGKey(0), (50, 7))
    params = cell.init(jax.random.PRNGKey(1), jnp.zeros(16), x[0])

    def step(h, x):
        h = cell.apply(params, h, x)
        return h, h

    _, states = jax.lax.scan(step, jnp.zeros(16), x)
    # A convex mix of the old state and a ReLU candidate: never negative from a zero start.
    assert float(states.min()) >= 0.0 and float(states.max()) > 0.0
    # Without the keep bias the same weights overwrite more of the state.
    unbiased = NormGRUCell(16, norm=norm, keep_bias=0.0)
    h = jnp.abs(jax.random.normal(jax.random.PRNGKey(2), (16,)))
    kept = jnp.abs(cell.apply(params, h, x[0]) - h).mean()
    overwritten = jnp.abs(unbiased.apply(params, h, x[0]) - h).mean()
    assert float(kept) < float(overwritten)


def test_weight_norm_cell_has_per_unit_scales_and_layer_norm_cell_has_four_norms():
    x, h = jnp.ones(5), jnp.zeros(8)
    weight = NormGRUCell(8, norm="weight").init(jax.random.PRNGKey(0), h, x)["params"]
    assert weight["input"]["Dense_0/kernel/scale"].shape == (24,)
    layer = NormGRUCell(8, norm="layer").init(jax.random.PRNGKey(0), h, x)["params"]
    assert sorted(k for k in layer if k.endswith("_norm")) == [
        "hidden_candidate_norm",
        "hidden_gates_norm",
        "input_candidate_norm",
        "input_gates_norm",
    ]


@pytest.mark.long
def test_separate_value_network_shares_no_gradient_with_the_policy():
    learner = RL2(MDP.replace(value_network="separate"), make(MDP.task))
    params = learner.init().params
    obs, _ = learner.trial.reset(jax.random.PRNGKey(0), learner.family.default_params)
    state = learner.network.initial_state()

    def outputs(p):
        _, logits, value = learner.network.apply(p, state, obs)
        return logits, value

    value_grads = jax.grad(lambda p: outputs(p)[1])(params)["params"]
    policy_grads = jax.grad(lambda p: outputs(p)[0].sum())(params)["params"]
    assert all(not np.any(g) for g in jax.tree.leaves(value_grads["core"]))
    assert all(not np.any(g) for g in jax.tree.leaves(policy_grads["value_core"]))
    assert any(np.any(g) for g in jax.tree.leaves(value_grads["value_core"]))


def test_moments_merge_equals_the_moments_of_all_values_seen():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(4, 6)).astype(np.float32) for _ in range(3)]
    masks = [rng.random((4, 6)) < 0.8 for _ in range(3)]
    merge = jax.vmap(
        lambda m, v, w: m.merge(v, w, "tasks"), in_axes=(None, 0, 0), axis_name="tasks"
    )
    moments = Moments.empty()
    for values, mask in zip(batches, masks, strict=True):
        # Two "devices" holding two trials each.
        merged = merge(moments, values.reshape(2, 2, 6), mask.reshape(2, 2, 6).astype(np.float32))
        moments = jax.tree.map(lambda x: x[0], merged)
    seen = np.concatenate([v[m] for v, m in zip(batches, masks, strict=True)])
    assert float(moments.count) == seen.size
    np.testing.assert_allclose(float(moments.mean), seen.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(moments.var), seen.var(), rtol=1e-4)


@pytest.mark.slow
def test_normalised_value_head_maps_back_to_returns_for_the_advantages():
    learner = RL2(MDP, make(MDP.task))
    params = learner.init().params
    t = learner.rollout(params, jax.random.PRNGKey(0), learner.family.default_params)
    moments = Moments(mean=jnp.float32(5.0), var=jnp.float32(4.0), count=jnp.float32(10.0))
    shifted = t.replace(value=(t.value - 5.0) / 2.0)
    np.testing.assert_allclose(
        learner.advantages(shifted, returns=moments), learner.advantages(t), rtol=1e-5, atol=1e-5
    )


@pytest.mark.long
def test_kl_stop_takes_one_step_when_the_bound_is_tiny_and_all_when_it_is_huge():
    base = MDP.replace(algorithm="ppo", ppo_epochs=2, ppo_minibatches=2, learning_rate=1e-2)
    steps, params = {}, {}
    for name, kl in [("tiny", 1e-9), ("huge", 1e9), ("none", None)]:
        learner = RL2(base.replace(ppo_target_kl=kl), make(base.task))
        state, metrics = learner.train_chunk(learner.init(), 1)
        steps[name], params[name] = float(metrics["sgd_steps"][0]), state.params
    # The KL is measured before each step: the first step (KL 0) always runs.
    assert steps == {"tiny": 0.25, "huge": 1.0, "none": 1.0}
    for a, b in zip(jax.tree.leaves(params["huge"]), jax.tree.leaves(params["none"]), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.long
def test_weight_decay_touches_weight_matrices_only():
    config = MDP.replace(cell="ln-gru", weight_decay=0.5)
    learner = RL2(config, make(config.task))
    params = learner.init().params
    zero = jax.tree.map(jnp.zeros_like, params)
    updates, _ = learner.optimizer.update(zero, learner.optimizer.init(params), params)
    flat = jax.tree_util.tree_flatten_with_path(updates)[0]
    for path, update in flat:
        name = jax.tree_util.keystr(path)
        assert np.any(update) == name.endswith("['kernel']"), name


@pytest.mark.long
def test_recipe_trains_and_resumes_bit_identically(tmp_path):
    config = MDP.replace(num_updates=4, updates_per_chunk=2, **RECIPE)
    _, full = runner.train("rl2", config, tmp_path / "full", progress=False)
    _, cut = runner.train("rl2", config, tmp_path / "cut", progress=False, stop_at=1)
    _, resumed = runner.train("rl2", config, tmp_path / "cut", resume=True, progress=False)
    assert float(full.returns.count) == 4 * 8 * 20
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_state_heads_read_the_current_states_row():
    config = MDP.replace(state_heads=True)
    learner = RL2(config, make(config.task))
    params = learner.init().params
    obs, _ = learner.trial.reset(jax.random.PRNGKey(0), learner.family.default_params)
    state = learner.network.initial_state()
    head = params["params"]["policy_head"]
    value_head = params["params"]["value_head"]
    for s in (0, 3, 9):
        obs_s = obs.replace(obs=jax.nn.one_hot(s, 10))
        hidden, logits, value = learner.network.apply(params, state, obs_s)
        table = (hidden @ head["kernel"] + head["bias"]).reshape(10, 5)
        np.testing.assert_allclose(logits, table[s], rtol=1e-5, atol=1e-6)
        values = hidden @ value_head["kernel"] + value_head["bias"]
        np.testing.assert_allclose(value, values[s], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_blind_core_hides_the_state_from_the_memory_only():
    config = MDP.replace(state_heads=True)
    learner = RL2(config, make(config.task))
    params = learner.init().params
    blind = learner.network.clone(blind_core=True)
    obs, _ = learner.trial.reset(jax.random.PRNGKey(0), learner.family.default_params)
    state = learner.network.initial_state()
    shown = obs.replace(obs=jax.nn.one_hot(3, 10))
    # The core's next state is the one it would reach had the state been all zeros ...
    zeros = obs.replace(obs=jnp.zeros(10))
    core_blind, logits_blind, _ = blind.apply(params, state, shown)
    core_zeros, _, _ = learner.network.apply(params, state, zeros)
    np.testing.assert_allclose(core_blind, core_zeros, rtol=1e-6)
    core_shown, _, _ = learner.network.apply(params, state, shown)
    assert not np.allclose(core_blind, core_shown)
    # ... while the heads still read the current state's row.
    head = params["params"]["policy_head"]
    hidden = learner.network.apply(params, core_blind, method="_output")
    table = (hidden @ head["kernel"] + head["bias"]).reshape(10, 5)
    np.testing.assert_allclose(logits_blind, table[3], rtol=1e-5, atol=1e-6)


@pytest.mark.long
def test_observed_mean_rewards_match_a_python_loop():
    config = MDP.replace(num_episodes=5, reward_decoder_coef=1.0)
    learner = RL2(config, make(config.task))
    t = learner.rollout(learner.init().params, jax.random.PRNGKey(3), learner.family.default_params)
    assert t.decoded.shape == (50, 5)
    target, mask = observed_mean_rewards(t, 5)
    states = np.argmax(np.asarray(t.obs.obs), axis=-1)
    sums, counts = np.zeros((10, 5)), np.zeros((10, 5))
    for step in range(50):
        s = states[step]
        seen = counts[s] > 0
        np.testing.assert_array_equal(np.asarray(mask[step]) > 0, seen)
        np.testing.assert_allclose(
            np.asarray(target[step])[seen], sums[s][seen] / counts[s][seen], rtol=1e-5
        )
        counts[s, t.action[step]] += 1
        sums[s, t.action[step]] += float(t.reward[step])
    assert counts.sum() == 50 and mask.sum() > 0


@pytest.mark.long
def test_a_bandit_is_one_state_for_the_reward_decoder():
    config = Config(task="bandit/independent-5arm", num_episodes=12, hidden_size=8, num_tasks=8,
                    reward_decoder_coef=1.0)  # fmt: skip
    learner = RL2(config, make(config.task))
    t = learner.rollout(learner.init().params, jax.random.PRNGKey(4), learner.family.default_params)
    assert t.decoded.shape == (12, 5)
    target, mask = observed_mean_rewards(t, 5)
    sums, counts = np.zeros(5), np.zeros(5)
    for step in range(12):
        np.testing.assert_array_equal(np.asarray(mask[step]) > 0, counts > 0)
        seen = counts > 0
        np.testing.assert_allclose(np.asarray(target[step])[seen], sums[seen] / counts[seen])
        counts[t.action[step]] += 1
        sums[t.action[step]] += float(t.reward[step])


@pytest.mark.slow
def test_the_expected_reward_target_is_the_tasks_mean_reward_of_the_current_state():
    config = MDP.replace(num_episodes=3, reward_decoder_coef=1.0, reward_decoder_target="expected")
    learner = RL2(config, make(config.task))
    task = learner.family.sample_params(jax.random.PRNGKey(5))
    t = learner.rollout(learner.init().params, jax.random.PRNGKey(3), task)
    states = np.argmax(np.asarray(t.obs.obs), axis=-1)
    valid = np.asarray(t.valid)
    assert valid.sum() == 30 and len(set(states[valid].tolist())) > 1
    np.testing.assert_array_equal(
        np.asarray(t.expected)[valid], np.asarray(task.mean_rewards)[states[valid]]
    )
    # Every action of every valid step counts, tried or not.
    loss, metrics = learner._decoder_loss(t, {})
    error = 0.5 * np.sum((np.asarray(t.decoded) - np.asarray(t.expected))[valid] ** 2)
    np.testing.assert_allclose(float(metrics["decoder_loss"]), error / (30 * 5), rtol=1e-5)
    np.testing.assert_allclose(float(loss), float(metrics["decoder_loss"]), rtol=1e-6)


@pytest.mark.long
def test_reward_decoder_trains_and_reports_its_loss_and_refuses_continuous_actions():
    config = MDP.replace(reward_decoder_coef=1.0, learning_rate=1e-2)
    learner = RL2(config, make(config.task))
    _, metrics = learner.train_chunk(learner.init(), 2)
    assert np.all(np.isfinite(metrics["decoder_loss"])) and float(metrics["decoder_loss"][0]) > 0
    with pytest.raises(Learn2RLError, match="reward_decoder_coef"):
        RL2(config.replace(task="control/point-goal"))
    with pytest.raises(Learn2RLError, match="reward_decoder_target=expected"):
        RL2(config.replace(task="maze/5x5", reward_decoder_target="expected"))


def test_index_head_scores_every_action_with_one_shared_rule_and_ties_the_decoder():
    config = Config(task="bandit/independent-5arm", num_episodes=6, hidden_size=8, num_tasks=8,
                    index_head=3, reward_decoder_coef=1.0)  # fmt: skip
    learner = RL2(config, make(config.task))
    params = learner.init().params
    p = params["params"]
    assert "policy_head" not in p and "decoder" not in p
    obs, _ = learner.trial.reset(jax.random.PRNGKey(0), learner.family.default_params)
    state, logits, _ = learner.network.apply(params, learner.network.initial_state(), obs)
    features = (state @ p["action_features"]["kernel"] + p["action_features"]["bias"]).reshape(5, 3)
    shared = state @ p["shared_features"]["kernel"]
    expected = np.tanh(features + shared) @ p["index_out"]["kernel"][:, 0]
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    # Swapping two actions' own features swaps their logits and nothing else: one rule for all.
    order = np.array([1, 0, 2, 3, 4])
    kernel = np.asarray(p["action_features"]["kernel"]).reshape(8, 5, 3)
    swapped = kernel[:, order].reshape(8, 15)
    bias = np.asarray(p["action_features"]["bias"]).reshape(5, 3)[order].reshape(15)
    changed = jax.tree.map(lambda x: x, params)
    changed["params"]["action_features"] = {"kernel": swapped, "bias": bias}
    _, swapped_logits, _ = learner.network.apply(changed, learner.network.initial_state(), obs)
    np.testing.assert_allclose(swapped_logits, np.asarray(logits)[order], rtol=1e-6)
    # On a bandit the decoder's estimate of each arm is its first feature.
    decoded = learner.network.apply(params, state, obs, method="decode")
    np.testing.assert_allclose(decoded, features[:, 0], rtol=1e-5, atol=1e-6)


def test_index_head_settings_are_one_line_errors():
    with pytest.raises(Learn2RLError, match="index_head"):
        Config(index_head=-1)
    with pytest.raises(Learn2RLError, match="index_head and config.state_heads"):
        MDP.replace(index_head=4, state_heads=True)
    with pytest.raises(Learn2RLError, match="index_head needs a family with discrete actions"):
        RL2(Config(task="control/point-goal", index_head=4))
