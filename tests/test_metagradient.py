"""Meta-gradient RL (learners/metagradient.py): the lambda-return against a Python loop, the
meta-gradient against finite differences of the meta-objective (float64), its sign on a
delayed-reward chain, meta_learning_rate=0 against the fixed-eta agent bit for bit, resume
through the runner, config errors, and (slow) the command line and learning on Catch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import checkpoint, runner
from learn2rl.errors import Learn2RLError
from learn2rl.learners.metagradient import (
    Config,
    MetaGradient,
    MetaGradientCore,
    Rollout,
    eta_values,
    lambda_returns,
)
from learn2rl.logging import read_metrics
from learn2rl.types import TrialObs

TINY = dict(num_envs=4, rollout_length=8, hidden_sizes=(16,), embedding_size=4)
# Four updates in two chunks of two: what the runner test trains (and resumes).
CONFIG = Config(num_updates=4, updates_per_chunk=2, **TINY)


def logit(p):
    p = np.asarray(p, np.float64)
    return np.log(p) - np.log1p(-p)


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


# --- a delayed-reward chain, written out in numpy ---------------------------------------------
def chain_rollout(rng, num_envs, length, chain=6, cash=0.2, dtype=np.float32) -> Rollout:
    """Rollouts of a uniformly random policy on a chain of ``chain`` states (one-hot
    observations). Action 0 moves right; leaving the last state pays 1 and ends the episode.
    Action 1 cashes out: ``cash`` now, and the episode ends. Ended episodes restart at state 0."""
    position = rng.integers(0, chain, num_envs)
    obs, actions, rewards, terminated, next_obs = [], [], [], [], []
    eye = np.eye(chain, dtype=dtype)
    for _ in range(length):
        action = rng.integers(0, 2, num_envs)
        done = (action == 1) | (position == chain - 1)
        reward = np.where(action == 1, cash, np.where(position == chain - 1, 1.0, 0.0))
        following = np.where(done, 0, position + 1)
        obs.append(eye[position])
        actions.append(action)
        rewards.append(reward)
        terminated.append(done)
        # A terminal transition's next observation is never bootstrapped from (discount 0).
        next_obs.append(np.where(done[:, None], 0.0, eye[np.minimum(position + 1, chain - 1)]))
        position = following
    return Rollout(
        obs=jnp.asarray(np.stack(obs), dtype),
        actions=jnp.asarray(np.stack(actions), jnp.int32),
        rewards=jnp.asarray(np.stack(rewards), dtype),
        terminated=jnp.asarray(np.stack(terminated), dtype),
        truncated=jnp.zeros((length, num_envs), dtype),
        next_obs=jnp.asarray(np.stack(next_obs), dtype),
    )


def test_lambda_returns_match_a_python_loop_with_terminations_and_truncations():
    rng = np.random.default_rng(0)
    length, gamma, lam = 7, 0.9, 0.7
    r = rng.normal(size=length)
    v_next = rng.normal(size=length)
    terminated = np.array([0, 0, 1, 0, 0, 0, 0], float)
    truncated = np.array([0, 0, 0, 0, 1, 0, 0], float)
    expected = np.zeros(length)
    for t in reversed(range(length)):
        if terminated[t]:
            expected[t] = r[t]
        elif truncated[t] or t == length - 1:
            expected[t] = r[t] + gamma * v_next[t]
        else:
            expected[t] = r[t] + gamma * ((1 - lam) * v_next[t] + lam * expected[t + 1])
    got = lambda_returns(
        jnp.asarray(r, jnp.float32),
        gamma * (1.0 - jnp.asarray(terminated, jnp.float32)),
        jnp.asarray(v_next, jnp.float32),
        1.0 - jnp.maximum(jnp.asarray(terminated), jnp.asarray(truncated)).astype(jnp.float32),
        lam,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


# --- the meta-gradient ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "optimizer,learning_rate,outer_critic",
    [("adam", 0.01, False), ("sgd", 0.5, False), ("adam", 0.01, True)],
)
@pytest.mark.long
def test_the_meta_gradient_equals_finite_differences_of_the_meta_objective(
    optimizer, learning_rate, outer_critic
):
    config = Config(
        hidden_sizes=(8,),
        embedding_size=4,
        optimizer=optimizer,
        learning_rate=learning_rate,
        outer_critic=outer_critic,
    )
    with jax.enable_x64(True):
        core = MetaGradientCore(config, observation_size=6, num_actions=2)
        rng = np.random.default_rng(1)
        first, rollout, next_rollout = (
            chain_rollout(rng, 4, 6, dtype=np.float64) for _ in range(3)
        )
        network = jax.tree_util.tree_map(
            lambda x: x.astype(jnp.float64), core.init_network(jax.random.PRNGKey(0))
        )
        eta = jnp.asarray(logit([0.8, 0.6]))
        cond = eta_values(eta)  # the network's eta input stays fixed: the paper's meta-gradient
        # flows through the return only.
        # One step first, so the optimiser's state (Adam's moments, step count) is not fresh.
        network, opt_state, _ = jax.jit(core.inner_step)(
            network, core.optimizer.init(network), eta, cond, first
        )
        _, grad = jax.jit(core.meta_gradient)(network, opt_state, eta, rollout, next_rollout, cond)

        # The meta-objective's advantage is a constant (stop-gradient): hold it at its value
        # after the unperturbed inner step, and difference the surrogate through the step.
        @jax.jit
        def objective(e, advantage=None):
            updated, _, _ = core.inner_step(network, opt_state, e, cond, rollout)
            if advantage is None:
                return core.meta_advantage(updated, cond, next_rollout)
            return core.policy_surrogate(updated, cond, next_rollout, advantage)

        advantage = objective(eta)
        eps = 1e-6
        numeric = []
        for i in range(2):
            step = jnp.zeros(2, jnp.float64).at[i].set(eps)
            plus, minus = objective(eta + step, advantage), objective(eta - step, advantage)
            assert plus.dtype == jnp.float64
            numeric.append((plus - minus) / (2 * eps))
        grad, numeric = np.asarray(grad), np.asarray(numeric)
    assert np.all(np.abs(grad) > 1e-6), grad  # a gradient that is there to be matched
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize(
    "initial_gamma,reference_gamma,sign",
    [(0.5, 0.995, -1.0), (0.99, 0.5, 1.0)],
    ids=["gamma-too-small-goes-up", "control:myopic-reference-pulls-gamma-down"],
)
@pytest.mark.long
def test_on_a_delayed_reward_chain_the_meta_gradient_raises_a_too_small_gamma(
    initial_gamma, reference_gamma, sign
):
    # Cashing out pays 0.2 now; walking the 6-state chain pays 1 after 6 steps. Under gamma 0.5
    # walking is worth 0.5^5 = 0.03 < 0.2, under the reference gamma' = 0.995 it is worth 0.98:
    # the inner update with gamma 0.5 teaches the wrong choice, so the meta-objective asks for a
    # larger gamma: a negative gradient of the meta-loss in the gamma logit. The control swaps
    # the roles (a far-sighted agent judged by a myopic reference) and must flip the sign.
    config = Config(
        hidden_sizes=(16,),
        embedding_size=4,
        initial_gamma=initial_gamma,
        reference_gamma=reference_gamma,
        learning_rate=0.01,
    )
    core = MetaGradientCore(config, observation_size=6, num_actions=2)
    eta = core.initial_eta_logits()
    meta = jax.jit(
        lambda network, rollout, next_rollout: core.meta_gradient(
            network, core.optimizer.init(network), eta, rollout, next_rollout
        )[1]
    )
    grads = []
    for seed in range(6):  # six networks, each with its own batch of 64 x 20 random-policy steps
        rng = np.random.default_rng(100 + seed)
        network = core.init_network(jax.random.PRNGKey(seed))
        grads.append(meta(network, chain_rollout(rng, 64, 20), chain_rollout(rng, 64, 20)))
    grads = np.asarray(grads)
    assert np.all(sign * grads[:, 0] > 0), grads[:, 0]


# --- the learner ------------------------------------------------------------------------------
@pytest.mark.long
def test_meta_learning_rate_zero_is_the_fixed_eta_agent_bit_for_bit():
    config = Config(num_updates=3, updates_per_chunk=3, **TINY)
    states, metrics = [], []
    for changes in (dict(meta_learning_rate=0.0), dict(meta_gradient=False)):
        learner = MetaGradient(config.replace(**changes))
        state, rows = learner.train_chunk(learner.init(), 3)
        states.append(jax.device_get(state))
        metrics.append(jax.device_get(rows))
    meta, fixed = states
    assert int(meta.update) == 3
    # The meta-gradient ran (and was nonzero), but a step of 0 left eta where it was.
    assert np.all(np.abs(metrics[0]["meta_grad_gamma_logit"]) > 0)
    assert np.all(metrics[1]["meta_grad_gamma_logit"] == 0)
    np.testing.assert_array_equal(meta.eta_logits, fixed.eta_logits)
    # Everything but the meta-optimiser's own statistics is identical.
    assert_trees_equal(meta.replace(meta_opt_state=None), fixed.replace(meta_opt_state=None))
    for name in ("episode_return", "entropy", "policy_loss", "value_loss", "meta_loss", "gamma"):
        np.testing.assert_array_equal(metrics[0][name], metrics[1][name])


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
    learner, straight = runner.train("metagradient", CONFIG, tmp_path / "straight", progress=False)
    assert int(straight.update) == 4
    assert checkpoint.updates(tmp_path / "straight" / runner.CHECKPOINT_DIR) == [0, 2, 4]
    rows = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    assert [row["update"] for row in rows] == [1, 2, 3, 4]
    for row in rows:
        for name in ("episode_return", "gamma", "lambda", "meta_grad_gamma_logit", "entropy"):
            assert np.isfinite(row[name])
        assert 0 < row["lambda"] < 1 and 0 < row["gamma"] < 1
    assert rows[-1]["env_steps"] == 4 * learner.steps_per_update == 4 * 4 * 8
    assert rows[-1]["gamma"] != CONFIG.initial_gamma  # eta moved
    cut = tmp_path / "cut"
    runner.train("metagradient", CONFIG, cut, progress=False, stop_at=2)
    assert checkpoint.load_meta(cut / runner.CHECKPOINT_DIR)["update"] == 2
    runner.train("metagradient", CONFIG, cut, resume=True, progress=False)
    _, resumed, _ = runner.load_learner(cut / runner.CHECKPOINT_DIR)
    assert_trees_equal(jax.device_get(straight), resumed)
    assert read_metrics(cut / "metrics.jsonl") == rows
    # The trained policy evaluates on fresh Catch episodes (returns are -1 or +1).
    returns = np.asarray(learner.episode_returns(resumed.params, 4, jax.random.PRNGKey(0)))
    assert returns.shape == (4,) and np.all(np.abs(returns) == 1.0)
    # ... and acts as an Agent on a trial observation (the greedy one: the likeliest action).
    obs = jnp.asarray(resumed.obs[0]).reshape(10, 5)
    trial_obs = TrialObs(obs, jnp.int32(0), jnp.float32(0), jnp.bool_(False), jnp.int32(0))
    agent = learner.agent(resumed.params, greedy=True)
    action, _ = agent.act(jax.random.PRNGKey(0), agent.init(None, None), trial_obs)
    logits, *_ = learner.core.net.apply(
        resumed.network, resumed.obs[0], eta_values(resumed.eta_logits)
    )
    assert int(action) == int(jnp.argmax(logits))


@pytest.mark.parametrize(
    "build,message",
    [
        (lambda: Config(env="Pendulum-v1"), "config.env must be a discrete-action gymnax"),
        (lambda: Config(env="Catch"), "config.env must be a discrete-action gymnax"),
        (lambda: Config(initial_gamma=1.0), "config.initial_gamma must lie strictly inside"),
        (lambda: Config(initial_gamma=0.0), "config.initial_gamma must lie strictly inside"),
        (lambda: Config(initial_lambda=1.2), "config.initial_lambda must lie strictly inside"),
        (lambda: Config(reference_gamma=1.5), "config.reference_gamma must lie in [0, 1]"),
        (lambda: Config(num_envs=0), "config.num_envs must be a positive integer"),
        (lambda: Config(rollout_length=-3), "config.rollout_length must be a positive integer"),
        (lambda: Config(hidden_sizes=()), "config.hidden_sizes must be positive integers"),
        (lambda: Config(learning_rate=0.0), "config.learning_rate must be a positive number"),
        (lambda: Config(meta_learning_rate=-1e-3), "config.meta_learning_rate must be >= 0"),
        (lambda: Config(optimizer="lion"), "config.optimizer must be one of"),
        (lambda: Config.from_dict({"gama": 0.9}), "unknown metagradient config field(s): gama"),
        (lambda: Config(chain_arm=2), "config.chain_arm applies to DiscountingChain-bsuite only"),
        (
            lambda: Config(env="DiscountingChain-bsuite", chain_arm=5),
            "config.chain_arm must be an arm 0-4",
        ),
    ],
)
def test_bad_settings_give_a_one_line_error_naming_the_field(build, message):
    with pytest.raises(Learn2RLError) as err:
        build()
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_the_outer_critic_is_a_head_of_its_own_that_the_meta_objective_uses():
    rng = np.random.default_rng(0)
    rollout = chain_rollout(rng, 4, 6)
    cores = {
        flag: MetaGradientCore(Config(outer_critic=flag, **TINY), 6, 2) for flag in (False, True)
    }
    plain, outer = cores[False], cores[True]
    network = outer.init_network(jax.random.PRNGKey(0))
    assert "outer_value" in network["params"]
    assert "outer_value" not in plain.init_network(jax.random.PRNGKey(0))["params"]
    cond = eta_values(plain.initial_eta_logits())
    _, values, outer_values = outer.net.apply(network, rollout.obs, cond)
    assert not np.allclose(values, outer_values)
    # J''s baseline is the outer head: its advantage is the reference return minus that head.
    _, _, g = outer._returns(network, cond, rollout, 0.995, 1.0, True, outer=True)
    np.testing.assert_allclose(
        outer.meta_advantage(network, cond, rollout), g - outer_values, rtol=1e-6
    )
    _, metrics = outer.inner_loss(network, plain.initial_eta_logits(), cond, rollout)
    assert float(metrics["outer_value_loss"]) > 0


def test_chain_arm_chooses_which_discounting_chain_arm_pays_more():
    def episode_returns(arm):
        env = MetaGradient(Config(env="DiscountingChain-bsuite", chain_arm=arm, **TINY)).env

        @jax.jit
        def episode(first_action):
            _, state = env.reset(jax.random.PRNGKey(0))

            def step(state, t):
                action = jnp.where(t == 0, first_action, 0)
                _, state, reward, *_ = env.step(jax.random.PRNGKey(1), state, action)
                return state, reward

            return jax.lax.scan(step, state, jnp.arange(env.max_episode_steps))[1].sum()

        return [round(float(episode(jnp.int32(a))), 3) for a in range(5)]

    assert episode_returns(2) == [1.0, 1.0, 1.1, 1.0, 1.0]
    assert episode_returns(None) == [1.1, 1.0, 1.0, 1.0, 1.0]  # gymnax's default: the 1-step arm


# --- slow: the command line, and learning ---------------------------------------------------------
@pytest.mark.long
def test_the_cli_trains_the_learner(tmp_path):
    from learn2rl.cli import main

    run = tmp_path / "run"
    settings = ["num_updates=2", "updates_per_chunk=2", "num_envs=4", "rollout_length=8"]
    settings += ["hidden_sizes=16", "env=DiscountingChain-bsuite"]
    args = ["train", "--learner", "metagradient", "--out", str(run), "--no-progress"]
    assert main([*args, *[x for s in settings for x in ("--set", s)]]) == 0
    rows = read_metrics(run / "metrics.jsonl")
    assert [row["update"] for row in rows] == [1, 2]


@pytest.mark.long
def test_it_learns_catch():
    config = Config(num_updates=150, updates_per_chunk=50)
    learner = MetaGradient(config)
    state = learner.init()
    for _ in range(3):
        state, metrics = learner.train_chunk(state, 50)
    returns = learner.episode_returns(state.params, 200, jax.random.PRNGKey(1))
    assert float(jnp.mean(returns)) > 0.6  # a random policy catches about 1 ball in 5
