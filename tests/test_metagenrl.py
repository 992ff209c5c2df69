"""MetaGenRL (learners/objectives/metagenrl.py) and its objective L_alpha (nets/objective.py): the
meta-gradient against finite differences, no meta-gradient into the critics, an objective that
ignores action order and size and masked steps, the DDPG limit bit for bit, the policy's gradient
only through the policy action, a population of two environment shapes, loading objectives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import runner
from learn2rl.errors import Learn2RLError
from learn2rl.learners.objectives.losses import learned_loss, sequence_values
from learn2rl.learners.objectives.metagenrl import (
    Config,
    MetaGenRL,
    init_objective,
    load_objective,
    masked_mean,
)
from learn2rl.learners.offpolicy import td3
from learn2rl.learners.offpolicy.replay import Transition
from learn2rl.logging import read_metrics
from tests.conftest import TINY_METAGENRL, relative_distance

# The per-agent settings of the shared tiny population.
TINY = {k: v for k, v in TINY_METAGENRL.items() if k not in ("envs", "num_agents", "num_updates",
                                                              "updates_per_chunk")}  # fmt: skip
# One environment, two agents; a policy step at every step, a meta step at every second one, the
# learned objective from the start, no gradient clipping (the finite-difference check), and an
# inner step large enough that the meta-loss depends clearly on alpha.
SINGLE = Config(
    envs=("Pendulum-v1",),
    num_agents=2,
    policy_delay=1,
    objective_delay=2,
    anneal_steps=0,
    max_grad_norm=1e30,
    inner_step_size=0.005,  # x about 23 valid steps: the inner step sums over them
    **TINY,
)
# Two environments of different shapes (obs 3 / act 1 and obs 2 / act 2), three agents.
POPULATION = Config(**{**TINY_METAGENRL, "envs": ("Pendulum-v1", "control/point-goal"),
                       "num_agents": 3})  # fmt: skip
LENGTHS = (4, 4, 2, 1, 3, 4, 1, 4)  # valid steps of the 8 sub-trajectories of a meta batch


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def trees_equal(a, b) -> bool:
    leaves = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    return all(np.array_equal(x, y) for x, y in leaves)


def prefix_mask(lengths, length) -> np.ndarray:
    return np.array([[1.0] * n + [0.0] * (length - n) for n in lengths], np.float32)


def meta_batch(lengths=LENGTHS, length=4, seed=0, dtype=np.float32):
    """Pendulum-shaped sub-trajectories ``[B, T]`` (obs 3, action 1) as the replay gives them:
    zero past each window's valid prefix, a terminal step ending one of them. numpy arrays:
    eager JAX operations would each compile, jitted functions take these as they are."""
    rng = np.random.default_rng(seed)
    shape = (len(lengths), length)
    mask = prefix_mask(lengths, length)
    terminated = np.zeros(shape)
    terminated[2, 1] = 1.0  # the episode of window 2 ends in a terminal state at its last step
    batch = Transition(
        obs=rng.normal(size=shape + (3,)),
        action=rng.uniform(-1, 1, size=shape + (1,)),
        reward=rng.normal(size=shape),
        next_obs=rng.normal(size=shape + (3,)),
        terminated=terminated,
        episode_end=terminated,
    )
    batch = jax.tree_util.tree_map(
        lambda x: (x * mask.reshape(mask.shape + (1,) * (x.ndim - 2))).astype(dtype), batch
    )
    return batch, mask.astype(dtype)


def first(batch, mask, n=4):
    return jax.tree_util.tree_map(lambda x: x[:n], batch), mask[:n]


def as_float64(tree):
    """A pytree of float arrays as numpy float64."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), tree)


@pytest.fixture(scope="module")
def single():
    return MetaGenRL(SINGLE)


@pytest.fixture(scope="module")
def agent(single):
    return jax.jit(single.cores[0].init)(jax.random.PRNGKey(0))


@pytest.fixture(scope="module")
def alpha(single):
    return jax.jit(init_objective, static_argnums=0)(single.net, jax.random.PRNGKey(1))


# --- the meta-gradient -------------------------------------------------------------------------


@pytest.mark.slow  # the second-order step compiles for about 10 s
@pytest.mark.long
def test_the_meta_gradient_equals_central_finite_differences(single, agent, alpha):
    """In float64: the directional derivative of ``-mean Q1(s, pi_phi'(s))``, ``phi' = phi -
    beta grad_phi sum_t L_alpha`` (the sum over the first half of the batch's valid steps, as
    the official code), along a random direction of alpha."""
    learner, core = single, single.cores[0]
    half, beta = SINGLE.batch_size, SINGLE.inner_step_size
    policy, critics, alpha64 = as_float64((agent.policy, agent.critics, alpha))
    batch, mask = meta_batch(dtype=np.float64)
    leaves, treedef = jax.tree_util.tree_flatten(alpha64)
    rng = np.random.default_rng(2)
    direction = [rng.normal(size=x.shape) for x in leaves]
    norm = np.sqrt(sum(np.sum(d * d) for d in direction))
    direction = [d / norm for d in direction]
    eps = 1e-5
    shifted = lambda s: jax.tree_util.tree_unflatten(  # noqa: E731
        treedef, [x + s * eps * d for x, d in zip(leaves, direction, strict=True)]
    )

    def meta_loss(a, policy, critics, batch, mask):
        """The meta-loss written out, and ``mean Q1(s, pi_phi(s))`` before the step."""
        inner, inner_mask = first(batch, mask, half)
        grads = jax.grad(
            lambda phi: (
                jnp.sum(inner_mask)  # mean x count: the sum over the valid steps
                * learned_loss(learner.net, a, core, phi, critics, inner, inner_mask)
            )
        )(policy)
        updated = jax.tree_util.tree_map(lambda p, g: p - beta * g, policy, grads)
        q_new = core.q1(critics, batch.obs, core.act(updated, batch.obs))
        q_old = core.q1(critics, batch.obs, core.act(policy, batch.obs))
        return -masked_mean(q_new, mask), masked_mean(q_old, mask)

    def meta_gradient(a, policy, critics, batch, mask):
        return learner.meta_gradient(
            core, a, agent.replace(policy=policy, critics=critics), batch, mask
        )

    with jax.enable_x64(True):
        loss_fn = jax.jit(meta_loss)
        grads, gain = jax.jit(meta_gradient)(alpha64, policy, critics, batch, mask)
        (loss_plus, _), (loss_minus, _), (loss, old_value) = (
            loss_fn(a, policy, critics, batch, mask) for a in (shifted(1.0), shifted(-1.0), alpha64)
        )
    grads = jax.tree_util.tree_leaves(grads)
    assert all(g.dtype == np.float64 for g in grads)
    numeric = (float(loss_plus) - float(loss_minus)) / (2 * eps)
    analytic = sum(float(np.sum(np.asarray(g) * d)) for g, d in zip(grads, direction, strict=True))
    assert abs(numeric) > 1e-4  # the objective's step depends on alpha
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)
    # value_gain: the objective's step's gain in mean Q1 over the whole batch.
    np.testing.assert_allclose(float(gain), -float(loss) - float(old_value), rtol=1e-9)


@pytest.fixture(scope="module")
def filled(single):
    """The single-environment population after 30 random steps (nothing learned yet)."""
    core = single.cores[0]

    @jax.jit
    def fill():
        state = single.init()

        def one(agents, key):
            agents, _ = jax.vmap(core.collect)(agents, jax.random.split(key, 2))
            return agents, None

        agents, _ = jax.lax.scan(one, state.groups[0], jax.random.split(jax.random.PRNGKey(5), 30))
        return state.replace(groups=(agents,), steps=jnp.int32(30))

    return fill()


@pytest.mark.slow  # the second-order step compiles for about 10 s
@pytest.mark.long
def test_the_critics_get_no_gradient_from_the_meta_loss(single, filled):
    """One learning step from the same state and keys, with a meta step (steps 30, a multiple
    of objective_delay 2) and without one (steps 31): the same critics and policies, another
    objective."""
    state = filled
    learn = jax.jit(single._learn)
    keys = [jax.random.split(jax.random.PRNGKey(9), 2)]
    meta, meta_metrics = learn(state.replace(steps=jnp.int32(30)), keys)
    plain, plain_metrics = learn(state.replace(steps=jnp.int32(31)), keys)
    assert np.isfinite(meta_metrics["value_gain"]) and np.isnan(plain_metrics["value_gain"])
    assert not trees_equal(meta.objective, state.objective)
    assert_trees_equal(plain.objective, state.objective)
    (before,), (with_meta,), (without,) = state.groups, meta.groups, plain.groups
    assert not trees_equal(with_meta.critics, before.critics)  # the critic step ran
    assert not trees_equal(with_meta.policy, before.policy)  # and the policy step
    assert_trees_equal(with_meta.critics, without.critics)
    assert_trees_equal(with_meta.target_critics, without.target_critics)
    assert_trees_equal(with_meta.critic_opt, without.critic_opt)
    assert_trees_equal(with_meta.policy, without.policy)


# --- the objective L_alpha ---------------------------------------------------------------------


def objective_inputs(rng, action_size, lengths=(5, 3, 1), length=5):
    """Inputs of L_alpha (numpy float32) for sub-trajectories of ``lengths`` valid steps."""
    shape = (len(lengths), length)
    mask = prefix_mask(lengths, length)
    inputs = dict(
        buffer_action=rng.uniform(-1, 1, shape + (action_size,)),
        policy_action=rng.uniform(-1, 1, shape + (action_size,)),
        reward=rng.normal(size=shape),
        terminated=np.eye(*shape)[:, ::-1] * mask,  # window 0 ends in a terminal state
        values=rng.normal(size=(shape[0], length + 1)),
        mask=mask,
    )
    return {name: x.astype(np.float32) for name, x in inputs.items()}


@pytest.fixture(scope="module")
def objective(single, alpha):
    apply = jax.jit(single.net.apply)
    return lambda inputs: np.asarray(apply(alpha, **inputs))


@pytest.mark.parametrize("action_size", [1, 2, 6])
@pytest.mark.slow
def test_the_objective_ignores_the_order_of_action_dimensions_and_their_number(
    objective, action_size
):
    inputs = objective_inputs(np.random.default_rng(action_size), action_size)
    out = objective(inputs)
    assert out.shape == (3, 5) and np.all(np.isfinite(out))
    order = np.random.default_rng(0).permutation(action_size)[::-1].copy()
    permuted = {
        **inputs,
        "buffer_action": inputs["buffer_action"][..., order],
        "policy_action": inputs["policy_action"][..., order],
    }
    np.testing.assert_allclose(objective(permuted), out, rtol=1e-6, atol=1e-6)
    # The output does depend on the actions (so a permutation could have shown).
    moved = {**inputs, "policy_action": -inputs["policy_action"]}
    assert np.abs(objective(moved) - out)[inputs["mask"] > 0].min() > 1e-6


def test_masked_steps_change_nothing_and_score_zero(objective):
    rng = np.random.default_rng(3)
    inputs = objective_inputs(rng, 2)
    mask = inputs["mask"]
    out = objective(inputs)
    assert np.all(out[mask == 0] == 0.0)
    junk = {}
    for name, x in inputs.items():
        if name == "mask":
            continue
        # values[:, j] is used for j <= L (index L holds the bootstrap of the last valid step)
        valid = mask if name != "values" else np.concatenate([np.ones((3, 1)), mask], axis=1)
        invalid = valid.reshape(valid.shape + (1,) * (x.ndim - 2)) == 0
        junk[name] = np.where(invalid, 50.0 * rng.normal(size=x.shape) + 7.0, x).astype(np.float32)
    junk["mask"] = inputs["mask"]
    assert not np.array_equal(junk["reward"], inputs["reward"])
    assert not np.array_equal(junk["values"], inputs["values"])
    changed = objective(junk)
    np.testing.assert_allclose(changed[mask > 0], out[mask > 0], rtol=1e-6, atol=1e-6)
    assert np.all(changed[mask == 0] == 0.0)
    # A valid step's policy action reaches the outputs of that step and of earlier ones (the
    # LSTM runs backwards), never later ones or other sub-trajectories.
    step2 = inputs["policy_action"].copy()
    step2[0, 2] += 0.5
    moved = objective({**inputs, "policy_action": step2})
    assert np.all(np.abs(moved[0, :3] - out[0, :3]) > 1e-7)
    np.testing.assert_array_equal(moved[0, 3:], out[0, 3:])
    np.testing.assert_array_equal(moved[1:], out[1:])


@pytest.mark.slow
def test_the_policy_gradient_flows_only_through_the_policy_action(single, agent, alpha):
    """grad_phi of learned_loss equals the gradient with the value inputs fixed beforehand."""
    core, net = single.cores[0], single.net

    @jax.jit
    def gradients(policy, critics, batch, mask):
        def objective(p, values):
            per_step = net.apply(
                alpha,
                batch.action,
                core.act(p, batch.obs),
                batch.reward,
                batch.terminated,
                values,
                mask,
            )
            return masked_mean(per_step, mask)

        def live_values(p):
            """V(s_t) = Q1(s_t, pi_p(s_t)) at the valid steps, with its gradient."""
            fixed = sequence_values(core, policy, critics, batch, mask)
            live = core.q1(critics, batch.obs, core.act(p, batch.obs))
            live = jnp.concatenate([live, fixed[:, -1:]], axis=1)
            index = jnp.arange(live.shape[1])[None, :]
            return jnp.where(index >= jnp.sum(mask, 1, keepdims=True), fixed, live)

        values = sequence_values(core, policy, critics, batch, mask)  # an input, not a function
        return (
            jax.grad(lambda p: learned_loss(net, alpha, core, p, critics, batch, mask))(policy),
            jax.grad(objective)(policy, values),
            jax.grad(lambda p: objective(p, live_values(p)))(policy),
            live_values(policy) - values,
        )

    got, expected, live, difference = gradients(agent.policy, agent.critics, *meta_batch())
    assert relative_distance(got, expected) < 1e-4  # float32 rounding of two compilations
    # Values that carried gradient (the same values) would give another gradient, so the
    # check can fail.
    assert np.all(np.asarray(difference) == 0.0)
    assert relative_distance(live, got) > 1e-2


class MinusQ1:
    """A stand-in objective ``L(s_t) = -Q1(s_t, pi(s_t))``: the DDPG loss per step."""

    def __init__(self, core, critics, obs):
        self.core, self.critics, self.obs = core, critics, obs

    def apply(self, alpha, buffer_action, policy_action, reward, terminated, values, mask):
        return -self.core.q1(self.critics, self.obs, policy_action) * mask


@pytest.mark.slow
def test_the_ddpg_limit_reproduces_the_ddpg_policy_update_bit_for_bit(single, agent, alpha):
    core = single.cores[0]
    batch, mask = first(*meta_batch())

    def policy_update(learner):
        @jax.jit
        def update(agent, progress):
            return core.policy_step(
                agent,
                lambda p: learner.policy_loss(core, alpha, agent, p, batch, mask, progress),
            )[0]

        return update

    ddpg = jax.jit(
        lambda agent: core.policy_step(
            agent, lambda p: core.ddpg_loss(p, agent.critics, batch, mask)
        )[0]
    )(agent)
    learned = policy_update(single)
    # progress 0: the population's loss before the objective takes over.
    assert_trees_equal(learned(agent, 0.0), ddpg)
    assert not trees_equal(learned(agent, 1.0).policy, ddpg.policy)
    # L_alpha := -Q1(s, pi(s)) at progress 1: the learned-objective path is DDPG's update.
    stand_in = MetaGenRL(SINGLE)
    stand_in.net = MinusQ1(core, agent.critics, batch.obs)
    # (equal to rounding: the same sums, compiled in another order)
    by_stand_in = policy_update(stand_in)(agent, 1.0)
    for part in ("policy", "policy_opt", "target_policy"):
        assert relative_distance(getattr(by_stand_in, part), getattr(ddpg, part)) < 1e-6


# --- a population of two environment shapes, and loading what it learned ------------------------


@pytest.fixture(scope="module")
def population_run(tmp_path_factory):
    """Two updates (one chunk through ``train_chunk``) of POPULATION: run directory and state."""
    out = tmp_path_factory.mktemp("metagenrl")
    learner, state = runner.train("metagenrl", POPULATION, out, progress=False)
    return out, learner, jax.device_get(state)


@pytest.mark.long
def test_a_population_of_two_environment_shapes_trains(population_run):
    out, learner, state = population_run
    assert learner.group_sizes == [2, 1]
    assert [g.obs.shape for g in state.groups] == [(2, 3), (1, 2)]
    assert int(state.update) == 2
    rows = read_metrics(out / "metrics.jsonl")
    assert [row["update"] for row in rows] == [1, 2]
    for row in rows:
        for name in [
            "value_gain",
            "eval_return",
            "eval_return/Pendulum-v1",
            "eval_return/control/point-goal",
            "critic_loss",
            "policy_loss",
        ]:
            assert np.isfinite(row[name]), name
    assert not trees_equal(state.objective, learner.init().objective)  # meta steps ran


@pytest.mark.long
def test_load_objective_restores_the_objective_of_a_metagenrl_run(population_run):
    out, learner, state = population_run
    net, alpha = load_objective(str(out))
    assert net == learner.net and net.units == 4
    assert_trees_equal(alpha, state.objective)
    assert_trees_equal(load_objective(str(out / runner.CHECKPOINT_DIR))[1], state.objective)


@pytest.mark.slow  # three eager inits of the default objective
@pytest.mark.long
def test_a_random_objective_is_a_function_of_its_seed():
    (net, a), (_, b), (_, c) = (load_objective(f"random:{s}") for s in (3, 3, 4))
    assert net == Config().objective_net()  # the default architecture
    assert_trees_equal(a, b)
    assert not trees_equal(a, c)


def test_load_objective_refuses_other_runs_in_one_line(tmp_path):
    td3_run = tmp_path / "td3"
    td3_config = td3.Config(hidden_sizes=(8,), buffer_size=500, num_updates=1)
    runner.train("td3", td3_config, td3_run, progress=False, stop_at=0)  # its update-0 checkpoint
    for spec, message in [
        (str(td3_run), "the checkpoint is of learner 'td3', not metagenrl"),
        (str(tmp_path / "nothing"), "no MetaGenRL checkpoint"),
        ("random:x", "random:<non-negative integer>"),
    ]:
        with pytest.raises(Learn2RLError) as err:
            load_objective(spec)
        assert message in str(err.value) and "\n" not in str(err.value)
    # The user meets it when building a learner on that objective.
    config = td3.Config(policy_objective="learned", objective=str(td3_run), sequence_length=4)
    with pytest.raises(Learn2RLError, match="not metagenrl"):
        td3.OffPolicy(config)


@pytest.mark.long
def test_td3_trains_a_fresh_policy_with_the_meta_trained_objective(population_run):
    out, _, state = population_run
    config = td3.Config(
        policy_objective="learned",
        objective=str(out),
        num_updates=1,
        updates_per_chunk=1,
        **{k: v for k, v in TINY.items() if not k.startswith("objective_")},
    )
    learner = td3.OffPolicy(config)
    start = learner.init()
    assert_trees_equal(start.objective, state.objective)
    end, metrics = learner.train_chunk(start, 1)
    metrics = jax.device_get(metrics)
    assert all(np.all(np.isfinite(v)) for v in metrics.values())
    assert not trees_equal(end.agent.policy, start.agent.policy)
    assert_trees_equal(end.objective, state.objective)  # frozen


# --- configs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build,field",
    [
        (
            lambda: Config(envs=("Pendulum-v1", "control/point-goal"), num_agents=1),
            "config.num_agents",
        ),
        (lambda: Config(sequence_length=1), "config.sequence_length"),
        (lambda: Config(envs=()), "config.envs"),
        (lambda: Config(objective_delay=0), "config.objective_delay"),
        (lambda: Config(inner_step_size=0.0), "config.inner_step_size"),
        (
            lambda: MetaGenRL(Config(envs=("Pendulum-v9",), num_agents=1)),
            "unknown environment 'Pendulum-v9'",
        ),
    ],
)
def test_bad_settings_give_a_one_line_error_naming_the_field(build, field):
    with pytest.raises(Learn2RLError) as err:
        build()
    assert field in str(err.value) and "\n" not in str(err.value)


def test_the_adam_inner_step_is_an_adam_step_from_the_agents_own_moments(agent):
    """``inner_optimizer="adam"``: phi - phi' = lr sqrt(1 - b2^t) / (1 - b1^t) m' / sqrt(v' + eps)
    with m', v' the agent's Adam moments after this gradient (t = its step count + 1)."""
    learner = MetaGenRL(SINGLE.replace(inner_optimizer="adam", inner_step_size=0.01))
    rng = np.random.default_rng(4)
    leaves, treedef = jax.tree_util.tree_flatten(agent.policy)
    grads = jax.tree_util.tree_unflatten(treedef, [rng.normal(size=x.shape) for x in leaves])
    mu = jax.tree_util.tree_unflatten(treedef, [rng.normal(size=x.shape) for x in leaves])
    nu = jax.tree_util.tree_unflatten(treedef, [rng.random(size=x.shape) for x in leaves])
    clip_state, (adam, *rest) = agent.policy_opt
    opt = (clip_state, (adam._replace(count=jnp.int32(6), mu=mu, nu=nu), *rest))
    step = learner.inner_step(agent.replace(policy_opt=opt), grads)
    scale = 0.01 * np.sqrt(1 - 0.999**7) / (1 - 0.9**7)
    for got, g, m, v in zip(
        jax.tree_util.tree_leaves(step),
        *(jax.tree_util.tree_leaves(t) for t in (grads, mu, nu)),
        strict=True,
    ):
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
        np.testing.assert_allclose(np.asarray(got), scale * m / np.sqrt(v + 1e-8), rtol=1e-5)
    sgd = MetaGenRL(SINGLE.replace(inner_step_size=0.01)).inner_step(agent, grads)
    assert not np.allclose(jax.tree_util.tree_leaves(sgd)[0], jax.tree_util.tree_leaves(step)[0])


@pytest.mark.long
def test_policy_resets_are_staggered_over_the_population_and_keep_the_critics():
    """``policy_reset_steps=6`` with 3 agents: agent i gets a fresh policy, target policy and
    optimizer state when ``steps - update_after + 2 i`` is a positive multiple of 6."""
    learner = MetaGenRL(POPULATION.replace(policy_reset_steps=6, update_after=10))
    state = learner.init()
    reset = jax.jit(learner._reset_policies)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    ids = [[0, 2], [1]]  # round-robin: group 0 (Pendulum-v1) holds agents 0 and 2
    fresh = {}
    for steps in range(8, 24):
        groups = reset(list(state.groups), jnp.int32(steps), keys)
        for g, (new, old) in enumerate(zip(groups, state.groups, strict=True)):
            assert_trees_equal(new.critics, old.critics)
            assert_trees_equal(new.buffer, old.buffer)
            for j, agent in enumerate(ids[g]):
                pick = lambda tree, j=j: jax.tree_util.tree_map(lambda x: x[j], tree)  # noqa: E731
                if not trees_equal(pick(new.policy), pick(old.policy)):
                    assert trees_equal(pick(new.policy), pick(new.target_policy))
                    fresh.setdefault(steps, []).append(agent)
    assert fresh == {12: [2], 14: [1], 16: [0], 18: [2], 20: [1], 22: [0]}


@pytest.mark.long
def test_the_population_split_over_two_devices_gives_the_one_device_numbers():
    if len(jax.devices()) < 2:
        pytest.skip("needs two devices (one per CPU core)")
    config = Config(**{**TINY_METAGENRL, "envs": ("Pendulum-v1", "control/point-goal"),
                       "num_agents": 4})  # fmt: skip
    one = MetaGenRL(config, devices=jax.devices()[:1])
    two = MetaGenRL(config, devices=jax.devices()[:2])
    assert len(two.devices) == 2  # one agent of each environment per device
    (a, metrics_a), (b, metrics_b) = one.train_chunk(one.init(), 1), two.train_chunk(two.init(), 1)
    # Each agent is computed as on one device (in a vmap of one agent instead of two); the
    # population means (meta-gradient, metrics) add their terms in another order. One update:
    # over more, Adam's steps on the objective's near-zero gradients amplify any rounding
    # (a 1e-7 relative change of the initial objective is 2e-4 apart after two updates here).
    a, b = jax.device_get(a), jax.device_get(b)
    assert relative_distance(a.objective, b.objective) < 1e-5
    assert relative_distance(a.groups, b.groups) < 1e-5
    for name in metrics_a:
        np.testing.assert_allclose(metrics_a[name], metrics_b[name], rtol=1e-4, atol=1e-6)
