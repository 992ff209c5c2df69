"""Locomotion families (tasks/control/locomotion.py), both backends, against plain C MuJoCo.

The C backend (``backend="c"``, MuJoCo's C engine through ``mujoco.rollout`` on the host) and the
MJX backend must give the same transitions: each is checked against an independent reference
(``tests/reference/locomotion_reference.py``), and the two against each other on every family.
MJX compiles are slow (10-50 s a family), so the C-vs-MJX comparisons are ``slow``.

Reference tolerances. The C backend runs the reference's float64 physics and rounds the state to
float32 between environment steps: it agrees to ``atol = 1e-4``. C against MJX is transition by
transition too (both start every environment step from the same state: over many steps two
simulations of a contact-rich robot drift apart in any case, float32 against float64). Per
transition the runners agree to about 1e-5 and the quadrupeds, whose feet make and break contact,
to about 1e-2 on the worst velocity (median 1e-5): tolerances are ``atol = 1e-3`` (runners) and
``5e-2`` (quadrupeds) on observations and rewards, with ``rtol = 1e-3``.
"""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.tasks import list_tasks, make
from learn2rl.tasks.control import locomotion as loco
from learn2rl.trial import Trial
from tests.reference import locomotion_reference as ref

pytest.importorskip("mujoco.mjx")

IDS = [
    "control/cheetah-vel",
    "control/cheetah-dir",
    "control/ant-dir",
    "control/cheetah-dynamics",
    "control/gym-halfcheetah-vel",
    "control/gym-halfcheetah-dir",
    "control/gym-ant-dir",
]
NUM_TASKS = 2


class Compiled:
    """A family, two of its tasks, and its step compiled once under vmap over the tasks."""

    def __init__(self, task_id, **overrides):
        self.family = make(task_id, **overrides)
        self.params = self.family.tasks(NUM_TASKS, "test")
        self.step = jax.jit(jax.vmap(self.family.step_env))
        keys = jax.random.split(jax.random.PRNGKey(7), NUM_TASKS)
        self.obs, self.state = jax.vmap(self.family.reset_env)(keys, self.params)


@pytest.fixture(scope="module")
def ant_c():
    return Compiled("control/ant-dir", backend="c")


def reference_model(family, params, i):
    def scale(name):
        return np.asarray(getattr(params, name)[i], np.float64)

    return ref.task_model(
        family.model_path,
        scale("mass_scale"),
        scale("friction_scale"),
        scale("damping_scale"),
        elliptic_cones=family.elliptic_cones,
    )


def run_against_reference(c: Compiled, num_steps: int, atol: float):
    family, params = c.family, c.params
    models = [reference_model(family, params, i) for i in range(NUM_TASKS)]
    rng = np.random.default_rng(0)
    state = c.state
    for _ in range(num_steps):
        # Out-of-range actions too: both sides clip to the ctrlrange [-1, 1].
        actions = rng.uniform(-1.5, 1.5, (NUM_TASKS, family.action_size)).astype(np.float32)
        keys = jax.random.split(jax.random.PRNGKey(1), NUM_TASKS)
        obs, new_state, reward, terminated, _ = c.step(keys, state, jnp.asarray(actions), params)
        for i in range(NUM_TASKS):
            want_obs, want_reward, want_term, _, _ = ref.step(
                models[i],
                np.asarray(state.qpos[i], np.float64),
                np.asarray(state.qvel[i], np.float64),
                actions[i],
                objective=family.objective,
                target=float(params.target[i]),
                frame_skip=family.frame_skip,
                observe_from=family.observe_from,
                ctrl_cost=family.ctrl_cost,
                survive_bonus=family.survive_bonus,
                height_band=family.height_band,
            )
            np.testing.assert_allclose(np.asarray(obs[i]), want_obs, rtol=1e-3, atol=atol)
            np.testing.assert_allclose(float(reward[i]), want_reward, rtol=1e-3, atol=atol)
            assert bool(terminated[i]) == want_term
        assert obs.dtype == jnp.float32 and obs.shape == (NUM_TASKS, family.observation_size)
        state = new_state
    return state


# --- (1) reference: C MuJoCo, transition by transition --------------------------------------
@pytest.mark.parametrize("task_id", IDS)
@pytest.mark.slow
def test_c_backend_matches_the_reference(task_id):
    c = Compiled(task_id, backend="c")
    assert c.family.backend == "c" and c.family.mjx_model is None
    if any(c.family.randomizes.values()):
        # the two tasks really have different physics, and both differ from the nominal model
        assert not np.allclose(c.params.mass_scale[0], c.params.mass_scale[1])
        assert not np.allclose(c.params.friction_scale[0], 1.0)
    run_against_reference(c, num_steps=8, atol=1e-4)


def test_auto_backend_is_c_on_the_cpu_and_bad_names_are_rejected():
    assert jax.default_backend() == "cpu"
    assert make("control/cheetah-dir").backend == "c"
    assert make("control/cheetah-dir[backend=mjx]").backend == "mjx"
    assert make("control/cheetah-dir", backend="mjx") != make("control/cheetah-dir")
    with pytest.raises(Learn2RLError, match="backend must be one of auto, c, mjx"):
        make("control/cheetah-dir", backend="warp")


@pytest.mark.parametrize("task_id", IDS)
@pytest.mark.long
def test_c_and_mjx_backends_give_the_same_transitions(task_id):
    """The contract between the backends: from the same states, with the same actions, the same
    observations, rewards and terminations (float32 against float64 physics: the tolerances of
    the reference tests), step after step."""
    c_family = make(task_id, backend="c")
    mjx_family = make(task_id, backend="mjx")
    params = c_family.tasks(NUM_TASKS, "test")
    keys = jax.random.split(jax.random.PRNGKey(3), NUM_TASKS)
    _, state = jax.vmap(c_family.reset_env)(keys, params)
    steps = [jax.jit(jax.vmap(f.step_env)) for f in (c_family, mjx_family)]
    atol = 5e-2 if c_family.free_root else 1e-3
    rng = np.random.default_rng(5)
    for _ in range(4):
        actions = jnp.asarray(rng.uniform(-1, 1, (NUM_TASKS, c_family.action_size)), jnp.float32)
        (o1, s1, r1, d1, _), (o2, _, r2, d2, _) = (f(keys, state, actions, params) for f in steps)
        np.testing.assert_allclose(np.asarray(o1), np.asarray(o2), rtol=1e-3, atol=atol)
        np.testing.assert_allclose(np.asarray(r1), np.asarray(r2), rtol=1e-3, atol=atol)
        np.testing.assert_array_equal(np.asarray(d1), np.asarray(d2))
        state = s1


@pytest.mark.long
def test_c_backend_steps_every_row_of_nested_vmaps_in_one_host_call():
    family = make("control/cheetah-dynamics", backend="c")
    params = family.tasks(3, "test")
    keys = jax.random.split(jax.random.PRNGKey(0), (3, 4))
    _, states = jax.vmap(jax.vmap(family.reset_env, in_axes=(0, None)))(keys, params)
    actions = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (3, 4, 6)), jnp.float32)
    step = jax.jit(jax.vmap(jax.vmap(family.step_env, in_axes=(0, 0, 0, None))))
    engine = family._engine
    calls, rows = engine.calls, engine.rows
    obs, new_states, *_ = step(keys, states, actions, params)
    assert (engine.calls - calls, engine.rows - rows) == (1, 12)
    # every row is its own transition: row (i, j) equals the unbatched step of that row
    for i, j in [(0, 0), (2, 3), (1, 2)]:
        task = jax.tree.map(lambda x, i=i: x[i], params)
        state = jax.tree.map(lambda x, i=i, j=j: x[i, j], states)
        want = jax.jit(family.step_env)(keys[i, j], state, actions[i, j], task)[0]
        np.testing.assert_allclose(np.asarray(obs[i, j]), np.asarray(want), atol=1e-6)


def test_rewards_of_each_objective_follow_the_formulas():
    velocity, action = jnp.float32(1.25), jnp.array([0.5, -1.0, 0.0, 0.0, 0.0, 0.0])
    cost = 0.05 * 1.25
    vel = make("control/cheetah-vel")
    goal = vel.sample_params(jax.random.PRNGKey(0)).replace(target=jnp.float32(0.75))
    assert float(vel.reward(velocity, action, goal)) == pytest.approx(-0.5 - cost)
    direction = make("control/cheetah-dir")
    back = direction.sample_params(jax.random.PRNGKey(0)).replace(target=jnp.float32(-1.0))
    assert float(direction.reward(velocity, action, back)) == pytest.approx(-1.25 - cost)
    forward = make("control/cheetah-dynamics")
    task = forward.sample_params(jax.random.PRNGKey(0))
    assert float(forward.reward(velocity, action, task)) == pytest.approx(1.25 - cost)


# --- (2) jit and no-jit -----------------------------------------------------------------------
@pytest.mark.slow
def test_jit_and_nojit_steps_agree(monkeypatch):
    """The family's own code (clip, physics scales, reward, observation, termination, reset) gives
    the same numbers with and without jit. MJX itself is stubbed here: one eager MJX step takes
    tens of seconds, and its jitted physics is checked against C MuJoCo above."""
    family = make("control/cheetah-dynamics", episode_length=3, backend="mjx")

    def stub_physics(qpos, qvel, action, params):
        model = family.physics(params)  # the per-task scales, as the real step applies them
        push = jnp.sum(model.body_mass) + jnp.sum(model.geom_friction) + jnp.sum(model.dof_damping)
        qvel = qvel * 0.9 + 0.01 * push + jnp.pad(action, (3, 0))
        return qpos + family.dt * qvel, qvel

    monkeypatch.setattr(family, "simulate", stub_physics)
    trial = Trial(family, num_episodes=2)
    params = family.tasks(2, "test")
    keys = jax.random.split(jax.random.PRNGKey(4), 2)
    actions = jnp.asarray(np.random.default_rng(1).uniform(-1.5, 1.5, (7, 2, 6)), jnp.float32)

    def run(step):
        _, state = jax.vmap(trial.reset)(keys, params)
        out = []
        for t in range(7):
            obs, state, reward, done, _ = step(keys, state, actions[t], params)
            out.append((np.asarray(obs.obs), np.asarray(reward), np.asarray(done)))
        return out

    jitted = run(jax.jit(jax.vmap(trial.step)))
    with jax.disable_jit():
        eager = run(jax.vmap(trial.step))
    for (o1, r1, d1), (o2, r2, d2) in zip(jitted, eager, strict=True):
        np.testing.assert_allclose(o1, o2, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(r1, r2, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(d1, d2)
    assert not np.allclose(jitted[0][1][0], jitted[0][1][1])  # the two tasks' physics differ


# --- (3) registered ids, vmap over tasks, trials ------------------------------------------------
def test_registered_ids_and_sizes():
    for task_id in IDS:
        assert task_id in list_tasks()
    cheetah, quad = make("control/cheetah-vel"), make("control/ant-dir")
    assert (cheetah.action_size, cheetah.observation_size) == (6, 17)
    assert (quad.action_size, quad.observation_size) == (8, 27)
    # gymnasium's models, loaded from the installed package: its observation sizes without
    # contact forces (HalfCheetah-v5: 17; Ant-v5 without cfrc_ext: 27)
    gym_cheetah, gym_ant = make("control/gym-halfcheetah-dir"), make("control/gym-ant-dir")
    assert gym_cheetah.model_path.parts[-4:] == ("envs", "mujoco", "assets", "half_cheetah.xml")
    assert (gym_cheetah.action_size, gym_cheetah.observation_size) == (6, 17)
    assert (gym_ant.action_size, gym_ant.observation_size) == (8, 27)
    assert gym_ant.ctrl_cost == 0.005 and gym_ant.height_band == (0.2, 1.0)
    assert cheetah.episode_length == 200 and cheetah.dt == pytest.approx(0.05)
    assert make("control/cheetah-dir", episode_length=7).episode_length == 7


@pytest.mark.long
def test_priors():
    keys = jax.random.split(jax.random.PRNGKey(0), 2000)
    goals = np.asarray(jax.vmap(make("control/cheetah-vel").sample_params)(keys).target)
    assert goals.min() >= 0 and goals.max() <= 2 and abs(goals.mean() - 1) < 0.05
    for task_id in ["control/cheetah-dir", "control/ant-dir"]:
        d = np.asarray(jax.vmap(make(task_id).sample_params)(keys).target)
        assert set(np.unique(d)) == {-1.0, 1.0} and abs((d > 0).mean() - 0.5) < 0.05
    dyn = jax.vmap(make("control/cheetah-dynamics").sample_params)(keys)
    for name in ["mass_scale", "friction_scale", "damping_scale"]:
        s = np.asarray(getattr(dyn, name))
        assert s.min() >= 0.5 and s.max() <= 1.5 and abs(s.mean() - 1) < 0.02
    # Task i is the same task every time.
    family = make("control/cheetah-vel")
    np.testing.assert_array_equal(family.tasks(3).target, family.tasks(3).target)


@pytest.mark.slow
def test_reset_noise_is_small_uniform_and_keyed(ant_c):
    family = ant_c.family
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    _, states = jax.vmap(family.reset_env, in_axes=(0, None))(keys, family.task(0))
    offset = np.asarray(states.qpos) - np.asarray(family.mj_model.qpos0)
    quat = np.asarray(states.qpos[:, 3:7])
    np.testing.assert_allclose(np.linalg.norm(quat, axis=1), 1.0, atol=1e-6)
    assert np.abs(offset[:, :3]).max() <= 0.1 and np.abs(offset[:, 7:]).max() <= 0.1
    assert np.abs(np.asarray(states.qvel)).max() <= 0.1 and np.std(offset[:, 7:]) > 0.03
    _, again = family.reset_env(keys[0], family.task(0))
    np.testing.assert_array_equal(again.qpos, states.qpos[0])


def test_ant_terminates_when_the_torso_falls(ant_c):
    ant = ant_c
    # Task 0 lies on its back on the floor (torso centre at 0.20 m); task 1 is thrown up to 1.5 m.
    qpos = ant.state.qpos.at[0, 2:7].set(jnp.array([0.2, 0.0, 1.0, 0.0, 0.0]))
    qpos = qpos.at[1, 2].set(1.5)
    state = ant.state.replace(qpos=qpos, qvel=jnp.zeros_like(ant.state.qvel))
    _, new_state, _, terminated, _ = ant.step(
        jax.random.split(jax.random.PRNGKey(0), NUM_TASKS),
        state,
        jnp.zeros((NUM_TASKS, ant.family.action_size)),
        ant.params,
    )
    assert float(new_state.qpos[0, 2]) < 0.25 and float(new_state.qpos[1, 2]) > 1.0
    assert np.all(np.asarray(terminated))


@pytest.mark.slow
def test_trial_under_vmap_over_tasks_resets_after_the_horizon():
    family = make("control/cheetah-vel", episode_length=3)
    trial = Trial(family, num_episodes=2)
    params = family.tasks(3, "test")
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    obs, state = jax.vmap(trial.reset)(keys, params)
    step = jax.jit(jax.vmap(trial.step))
    dones, rewards = [], []
    for t in range(trial.max_steps + 1):
        action = jnp.full((3, family.action_size), 0.3 * (-1) ** t)
        obs, state, reward, episode_done, trial_done = step(keys, state, action, params)
        dones.append(np.asarray(episode_done))
        rewards.append(np.asarray(reward))
    np.testing.assert_array_equal(np.stack(dones)[:, 0], [0, 0, 1, 0, 0, 1, 0])
    assert np.all(np.stack(rewards)[-1] == 0) and np.all(np.isfinite(np.stack(rewards)))
    assert obs.obs.shape == (3, 17) and obs.prev_action.dtype == jnp.float32
    assert bool(np.all(np.asarray(state.trial_done)))


@pytest.mark.slow
def test_import_learn2rl_does_not_import_mujoco():
    code = "import sys, learn2rl.tasks; print('mujoco' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- (4) bad parameters -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"mass_scale": (-1.0, 1.0)}, "mass_scale must be positive"),
        ({"friction_scale": (0.0, 1.0)}, "friction_scale must be positive"),
        ({"damping_scale": (1.5, 0.5)}, "damping_scale must be finite with low <= high"),
        ({"mass_scale": "ab"}, "mass_scale must be a \\(low, high\\) pair"),
        ({"mass_scale": (1.0, "x")}, "mass_scale must be a \\(low, high\\) pair"),
        ({"friction_scale": 1.0}, "friction_scale must be a \\(low, high\\) pair"),
        ({"episode_length": 0}, "episode_length must be a positive integer"),
        ({"frame_skip": 2.5}, "frame_skip must be a positive integer"),
        ({"ctrl_cost": -0.1}, "ctrl_cost must be a finite non-negative number"),
        ({"reset_noise": float("nan")}, "reset_noise must be a finite non-negative"),
        ({"backend": "gpu"}, "backend must be one of auto, c, mjx"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, match):
    with pytest.raises(Learn2RLError, match=match):
        make("control/cheetah-dir", **kwargs)
    with pytest.raises(Learn2RLError, match=match):
        loco.AntDirection(**kwargs)


def test_bad_goal_range_is_rejected():
    with pytest.raises(Learn2RLError, match="goal_velocity must be finite with low <= high"):
        make("control/cheetah-vel", goal_velocity=(2.0, 0.0))
    with pytest.raises(Learn2RLError, match="survive_bonus"):
        make("control/ant-dir", survive_bonus=-1)
