"""MAML, Reptile and MAESN: update rules against hand-written maths, the second-order meta-gradient
against finite differences, and the learners end to end at toy size."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import evaluate
from learn2rl.learners import maesn, maml, reptile
from learn2rl.learners import policy_gradient as pg
from learn2rl.rollout import rollout_episodes
from learn2rl.tasks import make

# A tiny MAML problem: 6-step point navigation, a 1 x 8 policy, 4 episodes per step, 3 tasks.
TINY = dict(
    hidden_sizes=(8,),
    num_tasks=3,
    episodes_per_step=4,
    num_updates=4,
    updates_per_chunk=2,
    ppo_epochs=2,
)


@pytest.fixture(scope="module")
def tiny_family():
    return make("control/point-goal", episode_length=6)


# --- update rules on a quadratic -----------------------------------------------------------------
A = np.array([[2.0, 0.3], [0.3, 1.0]])
B = np.array([[1.0, -0.2], [-0.2, 3.0]])
a, b = np.array([1.0, -2.0]), np.array([0.5, 0.5])
ALPHA = 0.1


def inner(theta):
    d = theta - a
    return 0.5 * d @ (A @ d)


def outer(theta):
    d = theta - b
    return 0.5 * d @ (B @ d)


@pytest.mark.parametrize("first_order", [False, True])
def test_maml_meta_gradient_on_a_quadratic_matches_the_hand_written_update(first_order):
    theta = np.array([0.2, 0.7])
    got = jax.grad(lambda t: outer(pg.gradient_step(inner, t, ALPHA, first_order)))(theta)
    adapted = theta - ALPHA * A @ (theta - a)
    outer_grad = B @ (adapted - b)
    # d adapted / d theta = I - alpha A (second order); the identity for first-order MAML.
    want = outer_grad if first_order else (np.eye(2) - ALPHA * A) @ outer_grad
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # The two differ here, so the test tells them apart.
    assert not np.allclose((np.eye(2) - ALPHA * A) @ outer_grad, outer_grad, rtol=1e-3)


def test_reptile_direction_on_a_quadratic_matches_the_hand_written_update():
    theta = np.array([0.2, 0.7])
    targets = [a, b]
    hessians = [A, B]

    def adapt(target, hessian, steps):
        phi = jnp.asarray(theta)
        for _ in range(steps):
            phi = pg.gradient_step(
                lambda p: 0.5 * (p - target) @ (hessian @ (p - target)), phi, ALPHA
            )
        return phi

    phis = jnp.stack([adapt(t, h, 3) for t, h in zip(targets, hessians, strict=True)])
    got = pg.reptile_direction(theta, phis)
    # Three gradient steps on a quadratic: phi_3 = target + (I - alpha H)^3 (theta - target).
    want = theta - np.mean(
        [
            t + np.linalg.matrix_power(np.eye(2) - ALPHA * h, 3) @ (theta - t)
            for t, h in zip(targets, hessians, strict=True)
        ],
        axis=0,
    )
    np.testing.assert_allclose(got, want, rtol=1e-5)


# --- the second-order meta-gradient of the real learner against finite differences -------------
def _meta_batch(learner, seed=0):
    """Episodes and references for one meta-update, as ``maml.ppo_meta_update`` builds them."""
    c, meta, model = learner.config, learner.meta, learner.model
    tasks, indices = model.sample_tasks(jax.random.PRNGKey(seed), jnp.arange(c.num_tasks))
    params = learner.init().params
    start = jax.vmap(model.task_params, in_axes=(None, 0))(params, indices)
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), c.num_tasks)
    pre, post, _ = meta.collect(start, keys, tasks)
    pre_ref, post_ref = jax.vmap(meta.reference_log_probs)(start, pre, post)
    post_adv = meta.batch_advantages(post)
    return params, (indices, pre, post, pre_ref, post_ref, post_adv)


def _to64(tree):
    """Floating leaves as float64 (inside ``jax.enable_x64``), for finite-difference checks."""
    return jax.tree.map(
        lambda x: jnp.asarray(x, jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree
    )


@pytest.mark.parametrize("cls,config_cls", [(maml.MAML, maml.Config), (maesn.MAESN, maesn.Config)])
@pytest.mark.long
def test_second_order_meta_gradient_matches_finite_differences(tiny_family, cls, config_cls):
    extra = {"num_train_tasks": 5} if config_cls is maesn.Config else {}
    # A large inner step makes the second-order term big enough to tell from first order.
    # tanh, not ReLU: a finite difference across a ReLU kink of the inner gradient is meaningless.
    config = config_cls(**TINY, inner_step_size=2.0, activation="tanh", **extra)
    learner = cls(config, tiny_family)
    params, batch = _meta_batch(learner)
    with jax.enable_x64(True):
        params, batch = _to64(params), _to64(batch)
        flat, unravel = ravel_pytree(params)
        # The PPO clip has kinks; use a huge clip so the objective is smooth for the check.
        smooth = cls(config.replace(ppo_clip=1e6), tiny_family)
        loss = lambda v: smooth.outer_loss(unravel(v), *batch)  # noqa: E731
        grad = jax.grad(loss)(flat)
        rng = np.random.default_rng(0)
        for _ in range(3):
            direction = jnp.asarray(rng.normal(size=flat.shape))
            eps = 1e-5
            numeric = (loss(flat + eps * direction) - loss(flat - eps * direction)) / (2 * eps)
            np.testing.assert_allclose(grad @ direction, numeric, rtol=1e-5, atol=1e-9)
        # First-order MAML gives a different gradient on the same batch.
        first_order = cls(config.replace(ppo_clip=1e6, first_order=True), tiny_family)
        first = jax.grad(lambda v: first_order.outer_loss(unravel(v), *batch))(flat)
        assert float(jnp.linalg.norm(first - grad)) > 1e-3 * float(jnp.linalg.norm(grad))


# --- policy-gradient pieces ---------------------------------------------------------------------
@pytest.mark.slow
def test_linear_baseline_fits_a_function_of_its_features_exactly(tiny_family):
    policy = pg.GaussianPolicy(tiny_family, (8,))
    episodes = policy.rollout(
        policy.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1), tiny_family.task(3), 5
    )
    features = pg.linear_baseline_features(episodes.obs)
    weights = jnp.arange(features.shape[-1], dtype=jnp.float32) / 10.0
    target = features @ weights
    fitted = pg.fit_linear_baseline(episodes, target)
    np.testing.assert_allclose(fitted * episodes.mask, target * episodes.mask, atol=1e-3)


@pytest.mark.slow
def test_reward_to_go_and_normalized_advantages(tiny_family):
    policy = pg.GaussianPolicy(tiny_family, (8,))
    episodes = policy.rollout(
        policy.init(jax.random.PRNGKey(0)), jax.random.PRNGKey(1), tiny_family.task(0), 3
    )
    rewards = np.asarray(episodes.reward)
    want = np.zeros_like(rewards)
    for e in range(rewards.shape[0]):
        total = 0.0
        for t in reversed(range(rewards.shape[1])):
            total = rewards[e, t] + 0.9 * total
            want[e, t] = total
    np.testing.assert_allclose(pg.reward_to_go(episodes, 0.9), want, rtol=1e-5)
    adv = pg.advantages(episodes, 0.9, "linear", normalize=True)
    assert abs(float(jnp.sum(adv * episodes.mask))) < 1e-3
    assert abs(float(jnp.sum(adv**2) / jnp.sum(episodes.mask)) - 1.0) < 1e-3


def test_rollout_masks_steps_after_termination():
    family = make("control/point-goal", goal_tolerance=0.5, episode_length=8)  # reached at once
    act = lambda key, context, obs: jnp.zeros(2)  # noqa: E731
    episodes = rollout_episodes(family, act, jax.random.PRNGKey(0), family.task(0), 2)
    # The origin is within 0.5 of every goal in [-0.5, 0.5]^2 only if |goal| < 0.5 per axis: yes.
    np.testing.assert_array_equal(episodes.mask[:, 0], 1.0)
    np.testing.assert_array_equal(episodes.mask[:, 1:], 0.0)
    np.testing.assert_array_equal(episodes.reward[:, 1:], 0.0)


# --- the learners at toy size -------------------------------------------------------------------
LEARNERS = [
    (maml.MAML, maml.Config, {}),
    (maml.MAML, maml.Config, {"first_order": True}),
    (maml.MAML, maml.Config, {"inner_steps": 2}),
    (reptile.Reptile, reptile.Config, {"inner_steps": 2}),
    (maesn.MAESN, maesn.Config, {"num_train_tasks": 5}),
]


@pytest.mark.parametrize("cls,config_cls,extra", LEARNERS)
@pytest.mark.long
def test_learner_trains_deterministically_and_adapts_through_evaluate(
    tiny_family, cls, config_cls, extra
):
    tiny = {k: v for k, v in TINY.items() if k in {f for f in config_cls.__dataclass_fields__}}
    config = config_cls(**tiny, **extra)
    runs = []
    for _ in range(2):
        learner = cls(config, tiny_family)
        state = learner.init()
        state, metrics = learner.train_chunk(state, 2)
        runs.append((ravel_pytree(state.params)[0], metrics))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert all(np.all(np.isfinite(np.asarray(v))) for v in runs[0][1].values())
    assert int(state.update) == 2
    initial = ravel_pytree(learner.init().params)[0]
    assert not np.allclose(initial, runs[0][0])
    # Meta-test through the one evaluation function: 3 batches of 4 episodes, 2 adaptation steps.
    agent = learner.agent(state.params)
    result = evaluate(agent, tiny_family, tiny_family.tasks(3, "test"), 12, jax.random.PRNGKey(0))
    assert result.rewards.shape == (3, 12 * tiny_family.episode_length)
    np.testing.assert_array_equal(result.episodes[0, :: tiny_family.episode_length], np.arange(12))
    assert result.actions.shape[-1] == 2
    assert np.isfinite(result.total_rewards).all()


@pytest.mark.long
def test_adaptation_step_changes_the_policy_and_uses_the_halved_step(tiny_family):
    learner = maml.MAML(maml.Config(**TINY), tiny_family)
    params = learner.init().params
    agent = learner.agent(params)
    state = agent.init(jax.random.PRNGKey(0))
    episodes = learner.meta.rollout(params, jax.random.PRNGKey(1), tiny_family.task(0))
    first = agent.adapt(jax.random.PRNGKey(2), state, episodes)
    second = agent.adapt(jax.random.PRNGKey(2), (params, jnp.int32(1), state[2]), episodes)
    d1 = ravel_pytree(first[0])[0] - ravel_pytree(params)[0]
    d2 = ravel_pytree(second[0])[0] - ravel_pytree(params)[0]
    assert float(jnp.linalg.norm(d1)) > 0
    np.testing.assert_allclose(d2, 0.5 * d1, rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def test_previous_test_baseline_subtracts_the_fit_to_the_last_batch(tiny_family):
    """rllab's protocol: no baseline at the first step, then the fit to the batch before."""
    config = maml.Config(**TINY, test_baseline="previous", test_episodes_per_step=3)
    learner = maml.MAML(config, tiny_family)
    params = learner.init().params
    agent = learner.agent(params)
    assert agent.episodes_per_adapt == 3
    state = agent.init(jax.random.PRNGKey(0))
    keys = jax.random.split(jax.random.PRNGKey(1), 2)
    batch = [learner.meta.rollout(params, k, tiny_family.task(0)) for k in keys]
    first = agent.adapt(jax.random.PRNGKey(2), state, batch[0])
    log_prob = learner.model.log_prob
    no_baseline = pg.advantages(batch[0], config.gamma, "none")
    want = pg.inner_update(log_prob, params, batch[0], no_baseline, config.inner_step_size, True)
    np.testing.assert_allclose(ravel_pytree(first[0])[0], ravel_pytree(want)[0], rtol=1e-5)
    coef = pg.linear_baseline_coef(batch[0], pg.reward_to_go(batch[0], config.gamma))
    np.testing.assert_allclose(first[2], coef, rtol=1e-5)
    # The second step subtracts that fit's predictions on the new batch, not a fresh fit.
    second = agent.adapt(jax.random.PRNGKey(2), (params, jnp.int32(0), coef), batch[1])
    stale = pg.advantages(batch[1], config.gamma, values=pg.linear_baseline_predict(coef, batch[1]))
    want = pg.inner_update(log_prob, params, batch[1], stale, config.inner_step_size, True)
    np.testing.assert_allclose(ravel_pytree(second[0])[0], ravel_pytree(want)[0], rtol=1e-5)
    refit = maml.MAML(config.replace(test_baseline="refit"), tiny_family).agent(params)
    other = refit.adapt(jax.random.PRNGKey(2), state, batch[1])
    assert not np.allclose(ravel_pytree(other[0])[0], ravel_pytree(second[0])[0])


def _merge(x):
    """``[tasks, episodes, ...]`` -> ``[tasks * episodes, ...]``."""
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


@pytest.mark.slow
def test_cross_task_baseline_is_fitted_to_the_other_tasks_on_every_device(tiny_family):
    config = maml.Config(**{**TINY, "num_tasks": 4}, baseline="cross-task")
    meta = maml.MAML(config, tiny_family).meta
    policy = pg.GaussianPolicy(tiny_family, (8,))
    params = policy.init(jax.random.PRNGKey(0))
    tasks = tiny_family.tasks(4, "train")
    keys = jax.random.split(jax.random.PRNGKey(1), 4)
    episodes = jax.vmap(lambda k, t: policy.rollout(params, k, t, 3))(keys, tasks)
    got = meta.batch_advantages(episodes)
    for k in range(4):
        rest = np.array([j for j in range(4) if j != k])
        others = jax.tree.map(lambda x, rest=rest: _merge(x[rest]), episodes)
        coef = pg.linear_baseline_coef(others, pg.reward_to_go(others, config.gamma))
        mine = jax.tree.map(lambda x, k=k: x[k], episodes)
        values = pg.linear_baseline_predict(coef, mine)
        want = pg.advantages(mine, config.gamma, values=values)
        np.testing.assert_allclose(got[k], want, rtol=2e-4, atol=2e-4)
        assert not np.allclose(got[k], meta.advantages(mine), atol=1e-3)  # not its own fit
    # Two devices with two tasks each: the fit sums over the device axis too.
    halves = jax.tree.map(lambda x: x.reshape(2, 2, *x.shape[1:]), episodes)
    split = jax.vmap(lambda e: meta.batch_advantages(e, "tasks"), axis_name="tasks")(halves)
    np.testing.assert_allclose(split.reshape(got.shape), got, rtol=1e-4, atol=1e-4)


def test_gradient_agent_trials_must_be_whole_batches(tiny_family):
    learner = maml.MAML(maml.Config(**TINY), tiny_family)
    agent = learner.agent(learner.init().params)
    with pytest.raises(Learn2RLError, match="multiple"):
        evaluate(agent, tiny_family, tiny_family.tasks(2, "test"), 6, jax.random.PRNGKey(0))


def test_maesn_test_trials_start_from_the_latent_prior(tiny_family):
    learner = maesn.MAESN(maesn.Config(**TINY, num_train_tasks=5), tiny_family)
    params = learner.init().params
    start = learner.model.test_params(params)
    np.testing.assert_array_equal(start["mean"], 0.0)
    np.testing.assert_array_equal(start["log_std"], 0.0)
    # The KL regularizer is zero at the prior and positive away from it.
    indices = jnp.arange(3)
    assert float(learner.model.regularizer(params, indices)) == 0.0
    moved = {**params, "latent_mean": params["latent_mean"] + 1.0}
    assert float(learner.model.regularizer(moved, indices)) > 0.0


@pytest.mark.parametrize(
    "config_cls,field,value,message",
    [
        (maml.Config, "num_tasks", 0, "positive integer"),
        (maml.Config, "inner_step_size", -0.1, "positive number"),
        (maml.Config, "gamma", 1.5, r"\[0, 1\]"),
        (maml.Config, "hidden_sizes", (100, 0), "hidden_sizes"),
        (maml.Config, "baseline", "value", "baseline"),
        (maml.Config, "outer", "sgd", "outer"),
        (maml.Config, "test_baseline", "stale", "test_baseline"),
        (maml.Config, "baseline", "shared", "baseline"),
        (maml.Config, "test_episodes_per_step", 0, "positive integer"),
        (maml.Config, "max_kl", 0.0, "positive number"),
        (reptile.Config, "inner_steps", 0, "positive integer"),
        (maesn.Config, "kl_weight", -1.0, ">= 0"),
        (maesn.Config, "num_tasks", 500, "num_train_tasks"),
    ],
)
def test_bad_configs_are_rejected(config_cls, field, value, message):
    with pytest.raises(Learn2RLError, match=message):
        config_cls(**{field: value})


def test_cross_task_baseline_needs_other_tasks():
    with pytest.raises(Learn2RLError, match="num_tasks >= 2"):
        maml.Config(num_tasks=1, baseline="cross-task")


def test_gradient_learners_refuse_discrete_families():
    with pytest.raises(Learn2RLError, match="continuous"):
        maml.MAML(maml.Config(task="bandit/independent-2arm"), make("bandit/independent-2arm"))


def test_gradient_learners_compose_the_shared_meta_batch_instead_of_subclassing(tiny_family):
    classes = (maml.MAML, reptile.Reptile, maesn.MAESN)
    for cls in classes:
        assert not any(issubclass(cls, other) for other in classes if other is not cls)
    assert "ppo_epochs" not in reptile.Config.__dataclass_fields__
    learner = reptile.Reptile(
        reptile.Config(**{k: v for k, v in TINY.items() if k != "ppo_epochs"})
    )
    assert learner.family.family_id == "control/point-goal"  # built from config.task
    assert learner.meta.first_order and learner.episodes_per_trial == 4 * 3
    assert maml.MAML(maml.Config(**TINY), tiny_family).episodes_per_trial == 4 * 2
    # Environment steps of one meta-update: every task's episodes, full length.
    assert maml.MAML(maml.Config(**TINY), tiny_family).steps_per_update == 3 * 8 * 6


def test_config_round_trips_through_json_types():
    config = maml.Config(hidden_sizes=(32, 16), first_order=True)
    assert maml.Config.from_dict(config.to_dict()) == config
    with pytest.raises(Learn2RLError, match="unknown"):
        maml.Config.from_dict({"nope": 1})


# --- TRPO (Finn et al.'s outer loop) ------------------------------------------------------------
def test_conjugate_gradient_solves_a_positive_definite_system_given_as_a_pytree():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(5, 5))
    a = m @ m.T + 0.5 * np.eye(5)
    b = rng.normal(size=5)

    def matvec(tree):
        flat = jnp.concatenate([tree["u"], tree["v"]])
        out = jnp.asarray(a, jnp.float32) @ flat
        return {"u": out[:2], "v": out[2:]}

    x, dot = maml.conjugate_gradient(matvec, {"u": jnp.asarray(b[:2]), "v": jnp.asarray(b[2:])}, 5)
    np.testing.assert_allclose(np.concatenate([x["u"], x["v"]]), np.linalg.solve(a, b), rtol=1e-3)
    assert (
        float(dot({"u": jnp.ones(2), "v": jnp.ones(3)}, {"u": jnp.ones(2), "v": 2 * jnp.ones(3)}))
        == 8
    )


@pytest.mark.long
def test_trpo_step_is_the_natural_gradient_step_inside_the_kl_bound(tiny_family):
    """Against dense linear algebra: the step is parallel to (F + damping I)^-1 g (g the gradient
    of the surrogate through the inner step, F the Hessian of the mean KL between the sampling
    and the new post-update policies, both from jax.hessian on the flattened parameters), its
    length puts the quadratic model of the KL at max_kl times a power of the backtracking ratio,
    and the measured KL is within max_kl while the surrogate improves."""
    config = maml.Config(
        **TINY, outer="trpo", activation="tanh", cg_iterations=60, cg_damping=1e-2, max_kl=0.01
    )
    learner = maml.MAML(config, tiny_family)
    with jax.enable_x64(True):
        params, batch = _meta_batch(learner)
        params, batch = _to64(params), _to64(batch)
        data = maml.trpo_batch(learner.meta, params, *batch)
        new_params, info = maml.trpo_step(learner.meta, params, data)
        flat, unravel = ravel_pytree(params)
        objectives = lambda v: maml.trpo_objectives(learner.meta, unravel(v), data)  # noqa: E731
        g = jax.grad(lambda v: objectives(v)[0])(flat)
        fisher = jax.hessian(lambda v: objectives(v)[1])(flat) + 1e-2 * jnp.eye(flat.size)
        want = np.linalg.solve(np.asarray(fisher), np.asarray(g))
        step = np.asarray(ravel_pytree(new_params)[0] - flat)
        assert bool(info["accepted"])
        cosine = step @ want / (np.linalg.norm(step) * np.linalg.norm(want))
        assert cosine > 0.999
        quadratic_kl = 0.5 * step @ np.asarray(fisher) @ step
        np.testing.assert_allclose(
            quadratic_kl, 0.01 * 0.8 ** (2 * float(info["backtracks"])), rtol=1e-3
        )
        surrogate0, kl0 = objectives(flat)
        surrogate1, kl1 = objectives(ravel_pytree(new_params)[0])
        assert float(kl0) < 1e-12 and 0 < float(kl1) <= 0.01
        assert float(surrogate1) > float(surrogate0)


@pytest.mark.long
def test_maml_with_the_trpo_outer_loop_trains_and_keeps_each_step_inside_the_kl_bound(tiny_family):
    config = maml.Config(**TINY, outer="trpo", max_kl=0.02)
    learner = maml.MAML(config, tiny_family)
    state = learner.init()
    state, metrics = learner.train_chunk(state, 3)
    assert int(state.update) == 3
    assert np.all(np.asarray(metrics["kl"]) <= 0.02)
    assert np.all(np.asarray(metrics["accepted"]) == 1.0)
    assert not np.allclose(ravel_pytree(learner.init().params)[0], ravel_pytree(state.params)[0])
