"""Gymnasium environments stepped on the host (tasks/host.py): against gymnasium stepped directly,
action scaling, time limits, one host call per vmapped step, evaluation copies, stale states,
and the off-policy learners training on them."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from learn2rl.errors import Learn2RLError  # noqa: E402
from learn2rl.tasks.adapters import list_envs, make_env  # noqa: E402
from learn2rl.tasks.host import GymnasiumEnv, HostEnvState, host_seed  # noqa: E402
from tests.conftest import TINY_METAGENRL  # noqa: E402

PENDULUM = "gymnasium:Pendulum-v1"


def direct(seed: int, actions, env_id: str = "Pendulum-v1"):
    """Gymnasium itself: (first obs, [(obs, reward, terminated, truncated)...]) of ``actions``
    given in the environment's own units."""
    env = gymnasium.make(env_id)
    first, _ = env.reset(seed=int(seed))
    steps = [env.step(np.asarray(a, np.float64))[:4] for a in actions]
    env.close()
    return first, steps


def units(env, unit_actions):
    """Normalised actions in env units, as ``scale_action`` computes them (float32)."""
    return np.asarray(jax.vmap(env.scale_action)(jnp.asarray(unit_actions)))


def run_steps(env, key, state, unit_actions):
    """``env.step`` over ``unit_actions`` (no resets) in one jitted scan."""

    def body(state, inputs):
        k, action = inputs
        obs, state, reward, terminated, truncated = env.step(k, state, action)
        return state, (obs, reward, terminated, truncated)

    keys = jax.random.split(key, len(unit_actions))
    return jax.jit(lambda s, a: jax.lax.scan(body, s, (keys, a)))(state, jnp.asarray(unit_actions))


# --- construction -------------------------------------------------------------------------------


def test_make_env_builds_a_host_env_from_the_gymnasium_spec():
    env = make_env(PENDULUM)
    assert isinstance(env, GymnasiumEnv) and env.name == PENDULUM
    assert (env.observation_size, env.action_size, env.max_episode_steps) == (3, 1, 200)
    np.testing.assert_array_equal(env.action_low, [-2.0])
    np.testing.assert_array_equal(env.action_high, [2.0])
    assert PENDULUM not in list_envs()
    other = make_env(PENDULUM)
    assert other != env and env == env  # each owns its simulators
    assert "host-stepped" in repr(env)


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("gymnasium:CartPole-v1", "Box observation and action spaces"),
        ("gymnasium:NoSuchEnv-v0", "unknown gymnasium environment"),
        ("gymnasium:", "names no gymnasium id"),
    ],
)
def test_bad_gymnasium_names_get_one_line_errors(name, match):
    with pytest.raises(Learn2RLError, match=match) as info:
        make_env(name)
    assert "\n" not in str(info.value)


# --- stepping -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_steps_match_gymnasium_and_scale_actions_onto_the_box():
    env = make_env(PENDULUM)
    key = jax.random.PRNGKey(3)
    obs, state = env.reset(key)
    rng = np.random.default_rng(0)
    # +1 -> torque 2, -1 -> -2, 1.5 is clipped to 2, then random actions
    unit = np.concatenate([[[1.0], [-1.0], [1.5]], rng.uniform(-1, 1, (40, 1))]).astype(np.float32)
    first, expected = direct(int(host_seed(key)), units(env, unit))
    np.testing.assert_array_equal(units(env, unit[:3])[:, 0], [2.0, -2.0, 2.0])
    np.testing.assert_allclose(obs, first, rtol=1e-6)
    _, (next_obs, reward, terminated, truncated) = run_steps(
        env, jax.random.PRNGKey(1), state, unit
    )
    np.testing.assert_allclose(next_obs, [s[0] for s in expected], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reward, [s[1] for s in expected], rtol=1e-5, atol=1e-6)
    # a different torque on the first step would change the first reward
    _, wrong = direct(int(host_seed(key)), [[1.0]])
    assert abs(float(reward[0]) - wrong[0][1]) > 1e-4
    assert not np.any(terminated) and not np.any(truncated)


@pytest.mark.slow
def test_truncates_at_the_time_limit_then_steps_as_a_no_op():
    env = make_env(PENDULUM)
    _, state = env.reset(jax.random.PRNGKey(0))
    unit = np.full((205, 1), 0.3, np.float32)
    state, (obs, reward, terminated, truncated) = run_steps(env, jax.random.PRNGKey(1), state, unit)
    assert not np.any(terminated)
    np.testing.assert_array_equal(np.flatnonzero(truncated), np.arange(199, 205))
    assert np.all(reward[:200] < 0) and np.all(reward[200:] == 0)
    np.testing.assert_array_equal(obs[200:], np.broadcast_to(obs[199], (5, 3)))
    assert int(state.steps) == 200


@pytest.mark.slow
def test_vmapped_agents_make_one_host_call_per_step_and_stay_independent():
    env = make_env(PENDULUM)
    agents, steps = 3, 30
    keys = jax.random.split(jax.random.PRNGKey(7), agents)
    obs, state = jax.vmap(env.reset)(keys)
    assert env.host_calls == 1 and env.pool_size == agents
    assert len({tuple(np.asarray(o)) for o in obs}) == agents  # different seeds, different obs
    unit = np.random.default_rng(1).uniform(-1, 1, (steps, agents, 1)).astype(np.float32)

    def body(carry, inputs):
        _, state = carry
        k, action = inputs
        out = jax.vmap(env.step_and_reset)(jax.random.split(k, agents), state, action)
        next_obs, state, reward, _, _, obs = out
        return (obs, state), (next_obs, reward)

    run = jax.jit(lambda c, a, k: jax.lax.scan(body, c, (jax.random.split(k, steps), a)))
    _, (next_obs, reward) = run((obs, state), jnp.asarray(unit), jax.random.PRNGKey(2))
    assert env.host_calls == 1 + steps
    for agent in range(agents):
        seed = int(host_seed(keys[agent]))
        _, expected = direct(seed, units(env, unit[:, agent]))
        np.testing.assert_allclose(reward[:, agent], [s[1] for s in expected], rtol=1e-5)
        np.testing.assert_allclose(next_obs[:, agent], [s[0] for s in expected], rtol=1e-5)


@pytest.mark.slow
def test_step_and_reset_resets_only_the_episodes_that_ended():
    env = make_env(PENDULUM)
    keys = jax.random.split(jax.random.PRNGKey(11), 2)
    obs, state = jax.vmap(env.reset)(keys)
    step = jax.jit(jax.vmap(env.step_and_reset))
    zero = jnp.zeros((2, 1))

    def body(carry, k):
        _, state, _, _, _, obs = step(jax.random.split(k, 2), carry[1], zero)
        return (obs, state), None

    scan = jax.jit(lambda c, keys: jax.lax.scan(body, c, keys)[0])
    obs, state = scan((obs, state), jax.random.split(jax.random.PRNGKey(12), 195))
    # row 1 starts a fresh episode (its reset is replayed on the host), row 0 is at step 195
    fresh_seed = 12345
    first, expected = direct(fresh_seed, np.zeros((10, 1)))
    state = HostEnvState(state.episode.at[1].set(fresh_seed), state.steps.at[1].set(0))
    obs = obs.at[1].set(first)
    ends, rewards = [], []
    for i, k in enumerate(jax.random.split(jax.random.PRNGKey(13), 10)):
        step_keys = jax.random.split(k, 2)
        next_obs, state, reward, terminated, truncated, obs = step(step_keys, state, zero)
        rewards.append(float(reward[1]))
        if truncated[0]:
            ends.append(i)
            restarted, _ = direct(int(host_seed(step_keys[0])), [])
            np.testing.assert_allclose(obs[0], restarted, rtol=1e-6)
            assert not np.allclose(next_obs[0], obs[0])
            assert int(state.steps[0]) == 0
        assert not truncated[1] and not np.any(terminated)
    assert ends == [4]  # row 0 reached 200 steps; row 1 was never reset again
    np.testing.assert_allclose(rewards, [s[1] for s in expected], rtol=1e-5)


@pytest.mark.slow
def test_for_evaluation_has_its_own_simulators():
    env = make_env(PENDULUM)
    evaluation = env.for_evaluation()
    assert evaluation is not env and env.for_evaluation() is evaluation
    assert evaluation.for_evaluation() is evaluation
    key = jax.random.PRNGKey(5)
    _, state = env.reset(key)
    unit = np.random.default_rng(2).uniform(-1, 1, (40, 1)).astype(np.float32)
    state, (_, first_half, _, _) = run_steps(env, jax.random.PRNGKey(6), state, unit[:20])
    # a whole evaluation episode (and its no-op steps) in the middle of the training episode
    _, eval_state = evaluation.reset(jax.random.PRNGKey(8))
    run_steps(evaluation, jax.random.PRNGKey(9), eval_state, np.ones((210, 1), np.float32))
    assert env.host_calls == 1 + 20 and evaluation.host_calls == 1 + 210
    _, (_, second_half, _, _) = run_steps(env, jax.random.PRNGKey(10), state, unit[20:])
    _, expected = direct(int(host_seed(key)), units(env, unit))
    rewards = np.concatenate([first_half, second_half])
    np.testing.assert_allclose(rewards, [s[1] for s in expected], rtol=1e-5)


def test_a_state_the_simulators_lost_restarts_as_a_truncated_fresh_episode():
    trained = make_env(PENDULUM)
    _, state = trained.reset(jax.random.PRNGKey(0))
    state, _ = run_steps(trained, jax.random.PRNGKey(1), state, np.zeros((5, 1), np.float32))
    resumed = make_env(PENDULUM)  # as in a new process: its simulators never saw `state`
    key = jax.random.PRNGKey(2)
    next_obs, state, reward, terminated, truncated, obs = resumed.step_and_reset(
        key, state, jnp.ones(1)
    )
    assert bool(truncated) and not bool(terminated) and float(reward) == 0.0
    first, expected = direct(int(host_seed(key)), [[2.0]])
    np.testing.assert_allclose(obs, first, rtol=1e-6)
    np.testing.assert_allclose(next_obs, first, rtol=1e-6)
    assert int(state.steps) == 0
    _, state, reward, _, truncated, _ = resumed.step_and_reset(key, state, jnp.ones(1))
    assert not bool(truncated) and int(state.steps) == 1
    np.testing.assert_allclose(reward, expected[0][1], rtol=1e-5)


# --- learners -----------------------------------------------------------------------------------

TINY_TD3 = dict(
    hidden_sizes=(8,),
    num_updates=2,
    updates_per_chunk=2,
    steps_per_update=110,
    random_steps=10,
    batch_size=4,
    buffer_size=300,
    eval_episodes=2,
)


@pytest.mark.long
def test_td3_trains_on_a_gymnasium_env():
    from learn2rl.learners.offpolicy.td3 import Config, OffPolicy

    learner = OffPolicy(Config(env=PENDULUM, **TINY_TD3))
    state = learner.init()
    state, metrics = learner.train_chunk(state, 2)
    metrics = jax.device_get(metrics)
    for value in metrics.values():
        assert np.all(np.isfinite(value))
    np.testing.assert_array_equal(metrics["episodes"], [0, 1])  # 220 steps, 200-step episodes
    assert np.all(metrics["eval_return"] < 0) and metrics["episode_return"][1] < 0
    assert learner.env.host_calls == 1 + 220  # init's reset, then one call per step
    evaluation = learner.core.eval_env
    assert evaluation.host_calls == 2 * (1 + 200) and evaluation.pool_size == 2


@pytest.mark.long
def test_metagenrl_trains_on_a_gymnasium_and_a_gymnax_env():
    from learn2rl.learners.objectives import metagenrl

    config = metagenrl.Config(
        **{**TINY_METAGENRL, "envs": (PENDULUM, "Pendulum-v1"), "num_agents": 3, "eval_episodes": 2}
    )
    learner = metagenrl.MetaGenRL(config)
    state = learner.init()
    state, metrics = learner.train_chunk(state, 1)
    metrics = jax.device_get(metrics)
    for value in metrics.values():
        assert np.all(np.isfinite(value))
    host = learner.envs[0]
    assert learner.group_sizes == [2, 1]
    assert host.host_calls == 1 + 20 and host.pool_size == 2
    # every agent x evaluation episode gets its own simulator, stepped in one call per step
    evaluation = learner.cores[0].eval_env
    assert evaluation.pool_size == 2 * 2 and evaluation.host_calls == 1 + 200
    # the two Pendulums are the same MDP: untrained policies score alike on both
    gymnasium_return = float(metrics[f"eval_return/{PENDULUM}"][0])
    gymnax_return = float(metrics["eval_return/Pendulum-v1"][0])
    assert -1700 < gymnasium_return < -500 and -1700 < gymnax_return < -500


@pytest.mark.slow
def test_td3_runs_on_mujoco_half_cheetah():
    pytest.importorskip("mujoco")
    pytest.importorskip("imageio")  # gymnasium's MuJoCo environments import it (paper-envs)
    from learn2rl.learners.offpolicy.td3 import Config, OffPolicy

    config = Config(
        env="gymnasium:HalfCheetah-v5",
        hidden_sizes=(8,),
        num_updates=1,
        updates_per_chunk=1,
        steps_per_update=30,
        random_steps=10,
        batch_size=4,
        buffer_size=100,
        eval_episodes=1,
    )
    learner = OffPolicy(config)
    assert (learner.env.observation_size, learner.env.action_size) == (17, 6)
    state, metrics = learner.train_chunk(learner.init(), 1)
    metrics = jax.device_get(metrics)
    assert np.isfinite(metrics["eval_return"][0]) and np.isfinite(metrics["critic_loss"][0])
    assert int(state.agent.steps) == 30 and learner.env.host_calls == 31
    assert learner.core.eval_env.host_calls == 1 + 1000
