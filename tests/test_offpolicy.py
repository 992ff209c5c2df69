"""TD3 and DDPG (learners/offpolicy): the critics' TD targets against a direct computation, the
Polyak step, exploration and episode ends in ``collect``, the policy delay, the sub-trajectory
losses (GAE, REINFORCE, bootstrap values), config checks, resume through the runner, the CLI."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import checkpoint, runner
from learn2rl.cli import main
from learn2rl.errors import Learn2RLError
from learn2rl.learners.objectives.losses import gae, reinforce_loss, sequence_values
from learn2rl.learners.offpolicy.core import AgentCore
from learn2rl.learners.offpolicy.replay import Transition
from learn2rl.learners.offpolicy.td3 import Config, DDPGConfig, OffPolicy
from learn2rl.logging import read_metrics
from learn2rl.tasks.adapters import make_env

TINY = dict(
    hidden_sizes=(8,),
    batch_size=4,
    steps_per_update=20,
    random_steps=10,
    update_after=10,
    buffer_size=500,
    eval_episodes=1,
)
# Four updates in two chunks of two: what the runner tests train (and resume).
CONFIG = Config(num_updates=4, updates_per_chunk=2, **TINY)
# Large target noise (so its clip binds) and a large tau (so a wrong Polyak formula shows).
TD3_SETTINGS = Config(target_noise=1.0, tau=0.3, **TINY).settings()
DDPG_SETTINGS = DDPGConfig(tau=0.3, **TINY).settings()


def perturbed(tree, key, scale=0.3):
    """``tree`` plus Gaussian noise: target networks that differ from the online ones."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    noisy = [x + scale * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, noisy)


def critic(critics, j):
    return jax.tree_util.tree_map(lambda p: p[j], critics)


def assert_trees_equal(a, b):
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def trees_equal(a, b) -> bool:
    leaves = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    return all(np.array_equal(x, y) for x, y in leaves)


@pytest.fixture(scope="module")
def pendulum():
    return make_env("Pendulum-v1")


@pytest.fixture(scope="module")
def td3_core(pendulum):
    return AgentCore(pendulum, TD3_SETTINGS)


@pytest.fixture(scope="module")
def agent(td3_core):
    """A fresh agent whose target networks differ from its online networks."""
    state = jax.jit(td3_core.init)(jax.random.PRNGKey(0))
    return state.replace(
        target_policy=perturbed(state.policy, jax.random.PRNGKey(1)),
        target_critics=perturbed(state.critics, jax.random.PRNGKey(2)),
    )


def hand_batch(terminated=None) -> tuple[Transition, jax.Array]:
    """A [4, 2] batch of Pendulum-shaped transitions (obs 3, action 1) and its mask."""
    rng = np.random.default_rng(0)
    shape = (4, 2)
    if terminated is None:
        terminated = np.array([[0, 0], [1, 0], [0, 0], [0, 1]], np.float32)
    batch = Transition(
        obs=rng.normal(size=shape + (3,)).astype(np.float32),
        action=rng.uniform(-1, 1, size=shape + (1,)).astype(np.float32),
        reward=rng.normal(size=shape).astype(np.float32),
        next_obs=rng.normal(size=shape + (3,)).astype(np.float32),
        terminated=np.asarray(terminated, np.float32),
        episode_end=np.asarray(terminated, np.float32),
    )
    mask = np.array([[1, 1], [1, 0], [1, 1], [1, 1]], np.float32)
    return jax.tree_util.tree_map(jnp.asarray, batch), jnp.asarray(mask)


# --- the critics' TD targets -------------------------------------------------------------------


def reference_target(core, state, batch, key, reduce=np.minimum, clip_noise=True, noise=True):
    """``r + gamma (1 - terminated) min_j Q'_j(s', clip(pi'(s') + clip(eps)))`` step by step."""
    s = core.settings
    next_action = np.asarray(core.act(state.target_policy, batch.next_obs))
    if noise and s.target_noise > 0:
        eps = s.target_noise * np.asarray(jax.random.normal(key, next_action.shape))
        if clip_noise:
            eps = np.clip(eps, -s.target_noise_clip, s.target_noise_clip)
        next_action = np.clip(next_action + eps, -1.0, 1.0)
    q_next = [
        np.asarray(core.q(critic(state.target_critics, j), batch.next_obs, next_action))
        for j in range(2 if s.twin else 1)
    ]
    next_value = reduce(*q_next) if s.twin else q_next[0]
    reward, terminated = np.asarray(batch.reward), np.asarray(batch.terminated)
    return reward + s.gamma * (1.0 - terminated) * next_value


def reference_loss(core, critics, batch, mask, target, used):
    """The TD loss of the first ``used`` critics against ``target`` (masked mean, summed)."""
    mask = np.asarray(mask)
    total = 0.0
    for j in range(used):
        q = np.asarray(core.q(critic(critics, j), batch.obs, batch.action))
        total += np.sum(np.square(q - target) * mask)
    return total / max(mask.sum(), 1.0)


@pytest.mark.slow
def test_the_td3_target_is_the_clipped_double_q_of_the_target_networks(td3_core, agent):
    core, key = td3_core, jax.random.PRNGKey(7)
    batch, mask = hand_batch()
    new, loss = jax.jit(core.critic_step)(agent, batch, mask, key)
    target = reference_target(core, agent, batch, key)
    np.testing.assert_allclose(
        loss, reference_loss(core, agent.critics, batch, mask, target, 2), rtol=1e-5
    )
    # The batch exercises every piece: another reduction, unclipped noise, no noise or the online
    # networks instead of the targets would each give another loss.
    for wrong in [
        reference_target(core, agent, batch, key, reduce=np.maximum),
        reference_target(core, agent, batch, key, clip_noise=False),
        reference_target(core, agent, batch, key, noise=False),
        reference_target(
            core,
            agent.replace(target_policy=agent.policy, target_critics=agent.critics),
            batch,
            key,
        ),
    ]:
        other = reference_loss(core, agent.critics, batch, mask, wrong, 2)
        assert abs(other - float(loss)) > 1e-3 * abs(float(loss))
    # Both critics learn.
    assert not trees_equal(critic(new.critics, 0), critic(agent.critics, 0))
    assert not trees_equal(critic(new.critics, 1), critic(agent.critics, 1))


def test_a_terminal_step_is_not_bootstrapped(td3_core, agent):
    core, key = td3_core, jax.random.PRNGKey(7)
    batch, mask = hand_batch(terminated=np.ones((4, 2), np.float32))
    _, loss = jax.jit(core.critic_step)(agent, batch, mask, key)
    reward = np.asarray(batch.reward)
    np.testing.assert_allclose(
        loss, reference_loss(core, agent.critics, batch, mask, reward, 2), rtol=1e-5
    )
    # A time limit (terminated 0) bootstraps: the same transitions give another loss.
    open_batch, _ = hand_batch(terminated=np.zeros((4, 2), np.float32))
    _, open_loss = jax.jit(core.critic_step)(agent, open_batch, mask, key)
    assert abs(float(open_loss) - float(loss)) > 1e-3 * abs(float(loss))


@pytest.mark.slow
def test_ddpg_bootstraps_from_critic_0_without_noise_and_never_trains_critic_1(pendulum, agent):
    core, key = AgentCore(pendulum, DDPG_SETTINGS), jax.random.PRNGKey(7)
    assert DDPG_SETTINGS.target_noise == 0.0 and not DDPG_SETTINGS.twin
    batch, mask = hand_batch()
    step = jax.jit(core.critic_step)
    new, loss = step(agent, batch, mask, key)
    target = reference_target(core, agent, batch, key)
    np.testing.assert_allclose(
        loss, reference_loss(core, agent.critics, batch, mask, target, 1), rtol=1e-5
    )
    # Critic 1 (online and target) does not enter the loss: its gradient is zero, so Adam leaves
    # it exactly where it was, and changing it changes nothing.
    assert_trees_equal(critic(new.critics, 1), critic(agent.critics, 1))
    assert not trees_equal(critic(new.critics, 0), critic(agent.critics, 0))
    shift = lambda c: jax.tree_util.tree_map(lambda p: p.at[1].add(5.0), c)  # noqa: E731
    moved = agent.replace(critics=shift(agent.critics), target_critics=shift(agent.target_critics))
    _, moved_loss = step(moved, batch, mask, key)
    assert float(moved_loss) == float(loss)
    # TD3's twin target would differ here.
    twin = reference_loss(
        core,
        agent.critics,
        batch,
        mask,
        reference_target(AgentCore(pendulum, TD3_SETTINGS), agent, batch, key),
        1,
    )
    assert abs(twin - float(loss)) > 1e-3 * abs(float(loss))


def test_policy_step_moves_the_targets_by_polyak_tau(td3_core, agent):
    core, tau = td3_core, TD3_SETTINGS.tau
    batch, mask = hand_batch()

    @jax.jit
    def step(state):
        return core.policy_step(state, lambda p: core.ddpg_loss(p, state.critics, batch, mask))

    new, _ = step(agent)
    assert not trees_equal(new.policy, agent.policy)
    assert_trees_equal(new.critics, agent.critics)
    soft = lambda t, p: (1.0 - tau) * np.asarray(t) + tau * np.asarray(p)  # noqa: E731
    for got, want in [
        (new.target_policy, jax.tree_util.tree_map(soft, agent.target_policy, new.policy)),
        (new.target_critics, jax.tree_util.tree_map(soft, agent.target_critics, agent.critics)),
    ]:
        for x, y in zip(
            jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want), strict=True
        ):
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)  # an ulp: XLA fuses a*x+b*y


# --- acting ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_episode(pendulum):
    """A fresh agent (random_steps 20) after 200 collects: one whole Pendulum episode."""
    core = AgentCore(pendulum, Config(**{**TINY, "random_steps": 20}).settings())

    @jax.jit
    def run(key):
        k_init, k_steps = jax.random.split(key)
        state = core.init(k_init)
        return jax.lax.scan(core.collect, state, jax.random.split(k_steps, 200))

    state, done = run(jax.random.PRNGKey(3))
    return core, state, np.asarray(done)


@pytest.mark.slow
def test_collect_acts_uniformly_at_random_then_by_the_noisy_policy(one_episode):
    core, state, _ = one_episode
    data = state.buffer.data
    action = np.asarray(data.action[:200, 0])
    greedy = np.asarray(core.act(state.policy, data.obs[:200]))[:, 0]  # collect keeps the policy
    uniform, noisy = action[:20], action[20:]
    assert np.all(np.abs(uniform) <= 1.0) and np.all(np.abs(noisy) <= 1.0)
    assert uniform.std() > 0.3 and np.abs(uniform - greedy[:20]).mean() > 0.2
    # Afterwards: pi(s) plus N(0, 0.1), clipped.
    assert np.abs(noisy - greedy[20:]).max() < 0.5
    assert 0.05 < np.abs(noisy - greedy[20:]).mean() < 0.15


def test_a_time_limit_ends_the_episode_without_terminating_it(one_episode):
    _, state, done = one_episode
    data = state.buffer.data
    assert int(state.episodes) == 1 and int(state.steps) == 200 and int(state.buffer.size) == 200
    assert done[199] and not done[:199].any()
    assert float(data.episode_end[199]) == 1.0 and not np.asarray(data.episode_end[:199]).any()
    assert not np.asarray(data.terminated[:200]).any()  # Pendulum only ends by its time limit
    # The environment was reset: a fresh episode, not the last next_obs.
    assert int(state.env_state.time) == 0
    assert not np.allclose(state.obs, data.next_obs[199])
    np.testing.assert_allclose(state.last_return, np.sum(data.reward[:200]), rtol=1e-5)
    assert float(state.episode_return) == 0.0


# --- the learner's step ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config,policy_steps",
    [
        (Config(**{**TINY, "random_steps": 3, "update_after": 3}), [4, 6, 8]),
        (DDPGConfig(**{**TINY, "random_steps": 3, "update_after": 3}), [3, 4, 5, 6, 7, 8]),
    ],
    ids=["td3", "ddpg"],
)
@pytest.mark.slow
def test_the_policy_learns_every_policy_delay_critic_steps(config, policy_steps):
    """Learning starts with the 3rd step (``update_after`` steps in the buffer)."""
    learner = OffPolicy(config)
    step = jax.jit(learner.step)
    state = learner.init()
    critic_changed, policy_changed, policy_loss_ran = [], [], []
    for i in range(8):
        new, (_, policy_loss) = step(state, jax.random.PRNGKey(i))
        steps = int(new.agent.steps)
        if not trees_equal(new.agent.critics, state.agent.critics):
            critic_changed.append(steps)
        if not trees_equal(new.agent.policy, state.agent.policy):
            policy_changed.append(steps)
        if not np.isnan(policy_loss):
            policy_loss_ran.append(steps)
        state = new
    assert critic_changed == [3, 4, 5, 6, 7, 8]
    assert policy_changed == policy_loss_ran == policy_steps


# --- sub-trajectory losses ---------------------------------------------------------------------


def gae_reference(reward, terminated, values, mask, gamma, lam):
    """GAE(lambda) by a Python loop, backwards over each sub-trajectory's valid steps."""
    advantages = np.zeros(reward.shape)
    for b in range(reward.shape[0]):
        running = 0.0
        for t in reversed(range(reward.shape[1])):
            if mask[b, t] == 0:
                running = 0.0
                continue
            delta = reward[b, t] + gamma * (1 - terminated[b, t]) * values[b, t + 1] - values[b, t]
            running = delta + gamma * lam * (1 - terminated[b, t]) * running
            advantages[b, t] = running
    return advantages


def test_gae_matches_a_python_loop_with_masks_and_terminations():
    rng = np.random.default_rng(1)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]])
    terminated = np.zeros((4, 5))
    terminated[1, 2] = 1.0  # the episode ends in a terminal state at the window's last step
    terminated[0, 1] = 1.0  # (and once mid-window: nothing after it may flow back)
    reward = rng.normal(size=(4, 5))
    values = rng.normal(size=(4, 6))
    reward_garbage = np.where(mask > 0, reward, 100.0)  # masked steps carry junk
    got = np.asarray(
        gae(
            *(jnp.asarray(x, jnp.float32) for x in (reward_garbage, terminated, values, mask)),
            0.9,
            0.8,
        )
    )
    want = gae_reference(reward, terminated, values, mask, 0.9, 0.8)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.all(got[mask == 0] == 0.0)


def sequence_batch(rng, batch, length, reward=None) -> Transition:
    """Pendulum-shaped sub-trajectories ``[batch, length]`` without episode ends (numpy)."""
    shape = (batch, length)
    fields = Transition(
        obs=rng.normal(size=shape + (3,)),
        action=rng.uniform(-1, 1, size=shape + (1,)),
        reward=rng.normal(size=shape) if reward is None else reward,
        next_obs=rng.normal(size=shape + (3,)),
        terminated=np.zeros(shape),
        episode_end=np.zeros(shape),
    )
    return jax.tree_util.tree_map(lambda x: np.asarray(x, np.float32), fields)


def test_sequence_values_hold_the_bootstrap_from_the_first_invalid_index(td3_core, agent):
    core = td3_core
    batch = sequence_batch(np.random.default_rng(2), 3, 4)
    lengths = [4, 2, 1]
    mask = np.array([[1.0] * n + [0.0] * (4 - n) for n in lengths], np.float32)

    @jax.jit
    def run(policy, critics, batch, mask):
        def value(obs):
            return core.q1(critics, obs, core.act(policy, obs))

        got = sequence_values(core, policy, critics, batch, mask)
        return got, value(batch.obs), value(batch.next_obs)

    values, on_obs, on_next_obs = map(np.asarray, run(agent.policy, agent.critics, batch, mask))
    assert values.shape == (3, 5)
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(values[b, :n], on_obs[b, :n], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(values[b, n:], on_next_obs[b, n - 1], rtol=1e-5, atol=1e-6)
    assert len(np.unique(values[2])) == 2  # V(s_0), then the bootstrap four times


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["positive", "negative"])
def test_a_positive_advantage_pulls_the_policy_towards_the_buffer_action(td3_core, agent, sign):
    core, mask = td3_core, np.ones((2, 3), np.float32)
    batch = sequence_batch(np.random.default_rng(3), 2, 3, reward=sign * 10.0 * np.ones((2, 3)))

    @jax.jit
    def run(policy, critics, batch):
        def distance(policy):
            return jnp.mean(jnp.square(batch.action - core.act(policy, batch.obs)))

        values = sequence_values(core, policy, critics, batch, mask)
        advantages = gae(batch.reward, batch.terminated, values, mask, 0.99, 0.97)
        grads = jax.grad(lambda p: reinforce_loss(core, p, critics, batch, mask, 0.99, 0.97))(
            policy
        )
        moved = jax.tree_util.tree_map(lambda p, g: p - 1e-3 * g, policy, grads)
        return advantages, distance(moved) - distance(policy)

    advantages, change = run(agent.policy, agent.critics, batch)
    assert np.all(np.sign(advantages) == sign)
    assert float(change) * sign < 0  # closer for a positive advantage, further for a negative one


# --- configs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build,field",
    [
        (lambda: Config(policy_objective="learned"), "config.objective"),
        (lambda: Config(policy_objective="reinforce", sequence_length=1), "config.sequence_length"),
        (lambda: Config(algorithm="sac"), "config.algorithm"),
        (lambda: Config(hidden_sizes=()), "config.hidden_sizes"),
        (lambda: Config(gamma=1.5), "config.gamma"),
        (lambda: Config(policy_delay=0), "config.policy_delay"),
        (lambda: Config(sequence_length=600, buffer_size=500), "config.sequence_length"),
        (lambda: OffPolicy(Config(env="Pendulum-v9")), "unknown environment 'Pendulum-v9'"),
    ],
)
def test_bad_settings_give_a_one_line_error_naming_the_field(build, field):
    with pytest.raises(Learn2RLError) as err:
        build()
    assert field in str(err.value) and "\n" not in str(err.value)


# --- the runner and the command line -----------------------------------------------------------

_LEARNERS = {}
_build = runner.build


def _shared_build(name, config):
    """Runs of the same config share one learner and so one compiled chunk."""
    if (name, config) not in _LEARNERS:
        _LEARNERS[name, config] = _build(name, config)
    return _LEARNERS[name, config]


@pytest.fixture(autouse=True)
def one_learner_per_config(monkeypatch):
    monkeypatch.setattr(runner, "build", _shared_build)


@pytest.mark.long
def test_a_run_cut_after_its_first_chunk_resumes_to_the_uninterrupted_run(tmp_path):
    _, straight = runner.train("td3", CONFIG, tmp_path / "straight", progress=False)
    assert int(straight.update) == 4
    assert checkpoint.updates(tmp_path / "straight" / runner.CHECKPOINT_DIR) == [0, 2, 4]
    rows = read_metrics(tmp_path / "straight" / "metrics.jsonl")
    assert [row["update"] for row in rows] == [1, 2, 3, 4]
    for row in rows:
        for name in ("eval_return", "critic_loss", "policy_loss", "episode_return", "episodes"):
            assert np.isfinite(row[name])
        assert row["critic_loss"] > 0 and row["eval_return"] < 0  # learning ran; Pendulum costs
    cut = tmp_path / "cut"
    runner.train("td3", CONFIG, cut, progress=False, stop_at=2)
    assert checkpoint.load_meta(cut / runner.CHECKPOINT_DIR)["update"] == 2
    runner.train("td3", CONFIG, cut, resume=True, progress=False)
    _, resumed, _ = runner.load_learner(cut / runner.CHECKPOINT_DIR)
    assert_trees_equal(jax.device_get(straight), resumed)
    assert read_metrics(cut / "metrics.jsonl") == rows


@pytest.mark.long
def test_the_cli_trains_td3_and_evaluate_explains_in_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    settings = ["num_updates=1", "hidden_sizes=8", "batch_size=4", "steps_per_update=20"]
    settings += ["random_steps=10", "update_after=10", "buffer_size=500", "eval_episodes=1"]
    args = ["train", "--learner", "td3", "--out", str(run), "--no-progress"]
    assert main([*args, *[x for s in settings for x in ("--set", s)]]) == 0
    assert [row["update"] for row in read_metrics(run / "metrics.jsonl")] == [1]
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run), "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: td3 learns no task family") and "\n" not in err
    assert "Traceback" not in err


@pytest.mark.long
def test_the_trained_policy_runs_as_an_agent_on_its_family():
    """``agent`` acts on the family behind a ``FamilyEnv`` through the one evaluation function."""
    from learn2rl.evaluation import evaluate
    from learn2rl.tasks import make

    learner = OffPolicy(Config(**{**TINY, "env": "control/point-goal"}))
    state = learner.init()
    family = make("control/point-goal")
    result = evaluate(
        learner.agent(state.params), family, family.tasks(2, "test"), 1, jax.random.PRNGKey(1)
    )
    assert np.all(np.isfinite(np.asarray(result.rewards)))
    assert np.asarray(result.valid).sum() > 0
