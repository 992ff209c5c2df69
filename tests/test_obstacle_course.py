"""POET-style obstacle courses (poet/flat, poet/course): shapes, jit, vmap, scripted runners on
stumps and gaps, monotone difficulty, deterministic courses, option errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.tasks import make
from learn2rl.tasks import obstacle_course as oc
from learn2rl.tasks.obstacle_course import CourseParams, ObstacleCourse, build_course

FAMILY = ObstacleCourse()
KEY = jax.random.PRNGKey(0)
RESET, STEP = jax.jit(FAMILY.reset_env), jax.jit(FAMILY.step_env)

# Scripted policies are data, so one compiled rollout serves them all: (drive, jumps allowed).
IDLE, RUN, JUMPER = (0.0, 0.0), (1.0, 0.0), (1.0, 1.0)
PIT_SAMPLE = 0  # the look-ahead sample 0.5 m ahead: jump at a pit's lip
WALL_SAMPLE = 3  # the one 2 m ahead: a full jump at full speed peaks 2 m after take-off


def _policy(obs, policy):
    lidar = obs[4:]
    obstacle = (lidar[PIT_SAMPLE] < -1.0) | (lidar[WALL_SAMPLE] > oc.STEP_TOLERANCE)
    return jnp.stack([policy[0], policy[1] * obstacle.astype(jnp.float32)])


def _rollout(params, policy):
    """One episode (frozen once it ends): the final state and the return."""
    obs, state = FAMILY.reset_env(KEY, params)

    def body(carry, _):
        obs, state, done, total = carry
        new_obs, new_state, reward, terminated, _ = FAMILY.step_env(
            KEY, state, _policy(obs, policy), params
        )
        keep = lambda old, new: jnp.where(done, old, new)  # noqa: E731
        carry = (
            keep(obs, new_obs),
            jax.tree.map(keep, state, new_state),
            done | terminated,
            total + jnp.where(done, 0.0, reward),
        )
        return carry, None

    init = (obs, state, jnp.asarray(False), jnp.float32(0.0))
    (_, state, _, total), _ = jax.lax.scan(body, init, None, FAMILY.episode_length)
    return state, total


_ROLLOUTS = jax.jit(jax.vmap(_rollout))


def _run(encodings: list[CourseParams], policies: list[tuple[float, float]]):
    params = jax.tree.map(lambda *x: jnp.stack(x), *encodings)
    state, total = _ROLLOUTS(params, jnp.asarray(policies, jnp.float32))
    return state, np.asarray(total)


def _episode(params, actions, reset, step):
    obs, state = reset(KEY, params)
    out = [(obs, state, jnp.float32(0.0), jnp.asarray(False))]
    for action in actions:
        obs, state, reward, terminated, _ = step(KEY, state, jnp.asarray(action), params)
        out.append((obs, state, reward, terminated))
    return out


def test_shapes_dtypes_and_spaces():
    params = FAMILY.encode(roughness=0.5, stump_height=1.0, gap_width=2.0, seed=3)
    assert params.stump_height.dtype == jnp.float32 and params.seed.dtype == jnp.int32
    obs, state = RESET(KEY, params)
    assert obs.shape == (FAMILY.observation_size,) == (16,) and obs.dtype == jnp.float32
    assert state.ground.shape == state.pit.shape == (oc.NUM_CELLS,)
    assert state.pit.dtype == jnp.bool_ and state.ground.dtype == jnp.float32
    obs, state, reward, terminated, info = STEP(KEY, state, jnp.ones(2), params)
    assert obs.shape == (16,) and obs.dtype == jnp.float32
    assert reward.shape == () and reward.dtype == jnp.float32
    assert terminated.shape == () and terminated.dtype == jnp.bool_ and info == {}
    assert FAMILY.action_space().shape == (2,) and FAMILY.observation_space().shape == (16,)
    assert FAMILY.continuous and FAMILY.episode_length == 400
    # The runner starts on the ground in the flat start zone and the full jump leaves it.
    assert float(state.y) > 0 and not bool(state.on_ground) and float(state.vx) > 0


@pytest.mark.slow  # eager JAX compiles every primitive once: seconds on a cold cache
def test_jit_and_no_jit_give_identical_steps():
    params = FAMILY.encode(roughness=0.5, stump_height=0.6, seed=11)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.3, 1.2, size=(120, 2)).astype(np.float32)  # mostly right, jumps
    eager = _episode(params, actions, FAMILY.reset_env, FAMILY.step_env)
    jitted = _episode(params, actions, RESET, STEP)
    assert float(eager[-1][1].x) > 10  # the episode went past obstacles
    # The same steps: contacts, cells and flags exactly; positions, velocities and heights to
    # float32 rounding (XLA may fuse the arithmetic differently under jit).
    for (o1, s1, r1, d1), (o2, s2, r2, d2) in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(o1, o2, rtol=1e-6, atol=1e-6)
        for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2), strict=True):
            if jnp.issubdtype(a.dtype, jnp.floating):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
            else:
                np.testing.assert_array_equal(a, b)
        assert float(r1) == pytest.approx(float(r2), abs=1e-5) and bool(d1) == bool(d2)


@pytest.mark.slow
def test_vmap_over_tasks_matches_single_tasks():
    family = make("poet/course")
    tasks = family.tasks(6, "test")
    obs, states = jax.jit(jax.vmap(family.reset_env, in_axes=(None, 0)))(KEY, tasks)
    actions = jnp.tile(jnp.array([1.0, 0.5]), (6, 1))
    step = jax.jit(jax.vmap(family.step_env, in_axes=(None, 0, 0, 0)))
    obs, states, rewards, terminated, _ = step(KEY, states, actions, tasks)
    assert obs.shape == (6, 16) and rewards.shape == (6,) and states.ground.shape == (6, 240)
    for i in range(6):
        task = jax.tree.map(lambda x, i=i: x[i], tasks)
        _, state = RESET(KEY, task)
        want_obs, _, want_reward, _, _ = STEP(KEY, state, actions[i], task)
        np.testing.assert_allclose(obs[i], want_obs, rtol=1e-6, atol=1e-6)
        assert float(rewards[i]) == pytest.approx(float(want_reward), abs=1e-5)
    # Different tasks are different courses.
    assert len({np.asarray(g).tobytes() for g in states.ground}) == 6


def _stump_course(seed: int = 0) -> CourseParams:
    return FAMILY.encode(stump_height=1.0, seed=seed)


@pytest.mark.slow
def test_scripted_runners_on_flat_stumps_and_gaps():
    flat, stumps, gaps = FAMILY.encode(), _stump_course(), FAMILY.encode(gap_width=2.0, seed=0)
    # The test courses do hold the obstacles.
    assert float(build_course(stumps)[0].max()) == pytest.approx(1.0)
    assert bool(build_course(gaps)[1].any()) and not bool(build_course(stumps)[1].any())
    cases = [
        (flat, RUN),
        (flat, IDLE),
        (stumps, RUN),
        (stumps, JUMPER),
        (gaps, RUN),
        (gaps, JUMPER),
    ]
    state, total = _run(*zip(*cases, strict=True))
    solved = np.asarray(ObstacleCourse.solved(state))
    progress = np.asarray(ObstacleCourse.progress(state))
    # Flat: running right reaches the end (progress 200 + bonus 100 - control cost 0.025 per
    # step, about 304 steps); doing nothing stays at the start.
    assert solved[0] and progress[0] == 1.0 and total[0] >= oc.SOLVED_SCORE
    steps = int(state.time[0])
    assert 290 < steps < 320
    assert total[0] == pytest.approx(300 - 0.025 * steps, abs=0.01)
    assert not solved[1] and progress[1] == 0.0 and total[1] == 0.0 and int(state.time[1]) == 400
    # Stumps 1 m high: without jumping the runner stands at the first stump until time runs out.
    first_stump = np.argmax(np.asarray(build_course(stumps)[0]) > 0.5) * oc.CELL_WIDTH
    assert not solved[2] and not state.fell[2] and int(state.time[2]) == 400
    assert float(state.x[2]) == pytest.approx(first_stump, abs=0.01)
    assert total[2] < oc.SOLVED_SCORE
    assert solved[3] and total[3] >= oc.SOLVED_SCORE  # the timed jumps clear every stump
    # A 2 m gap: the runner that does not jump falls in (-100) and the episode ends there.
    first_pit = np.argmax(np.asarray(build_course(gaps)[1])) * oc.CELL_WIDTH
    assert bool(state.fell[4]) and not solved[4] and int(state.time[4]) < 400
    assert first_pit < float(state.x[4]) < first_pit + 2.0
    assert total[4] < 0
    assert solved[5] and not state.fell[5] and total[5] >= oc.SOLVED_SCORE


@pytest.mark.slow
def test_difficulty_is_monotone_in_expectation():
    seeds = range(12)
    heights, widths, roughness = (
        (0.0, 0.6, 1.2, 1.8, 2.4),
        (0.0, 1.0, 2.0, 3.0, 4.0, 5.0),
        (
            0.0,
            0.4,
            0.8,
            1.6,
        ),
    )
    encodings = [FAMILY.encode(stump_height=h, seed=s) for h in heights for s in seeds]
    encodings += [FAMILY.encode(gap_width=w, seed=s) for w in widths for s in seeds]
    encodings += [FAMILY.encode(roughness=r, seed=s) for r in roughness for s in seeds]
    state, _ = _run(encodings, [JUMPER] * len(encodings))
    progress = np.asarray(ObstacleCourse.progress(state)).reshape(-1, len(seeds)).mean(axis=1)
    split = np.cumsum([len(heights), len(widths)])
    for name, means in zip(("stump", "gap", "roughness"), np.split(progress, split), strict=True):
        assert np.all(np.diff(means) <= 1e-6), (name, means)
        assert means[0] == 1.0 and means[-1] < 0.5, (name, means)


@pytest.mark.slow
def test_same_encoding_gives_the_same_course_and_seeds_differ():
    params = FAMILY.encode(roughness=0.7, stump_height=0.8, gap_width=2.5, seed=5)
    ground, pit = build_course(params)
    again, pit_again = jax.jit(build_course)(FAMILY.encode(0.7, 0.8, 2.5, seed=5))
    np.testing.assert_array_equal(ground, again)
    np.testing.assert_array_equal(pit, pit_again)
    other, other_pit = build_course(params.replace(seed=jnp.int32(6)))
    assert not np.array_equal(ground, other) and not np.array_equal(pit, other_pit)
    # The start zone is flat and free; every cell is either ground, stump or pit.
    start = int(oc.START_ZONE / oc.CELL_WIDTH)
    assert np.all(np.asarray(ground[:start]) == 0) and not np.any(np.asarray(pit[:start]))
    # poet/flat: flat whatever the seed; the task with an index is always the same task.
    flat = make("poet/flat")
    assert np.all(np.asarray(build_course(flat.task(3))[0]) == 0)
    course = make("poet/course")
    for a, b in zip(jax.tree.leaves(course.task(7)), jax.tree.leaves(course.task(7)), strict=True):
        np.testing.assert_array_equal(a, b)
    assert float(course.task(7).stump_height) != float(course.task(8).stump_height)


@pytest.mark.slow
def test_knobs_as_options_and_the_prior():
    fixed = make("poet/course[stump_height=0.5,gap_width=(1.0, 2.0),seed=3]")
    tasks = fixed.tasks(32, "test")
    np.testing.assert_array_equal(tasks.stump_height, 0.5)
    np.testing.assert_array_equal(tasks.seed, 3)
    gaps = np.asarray(tasks.gap_width)
    assert np.all((gaps >= 1.0) & (gaps <= 2.0)) and gaps.std() > 0.1
    assert np.all(np.asarray(tasks.roughness) <= 1.0) and np.asarray(tasks.roughness).std() > 0.1
    flat = make("poet/flat").tasks(8, "test")
    for name in oc.KNOBS:
        np.testing.assert_array_equal(getattr(flat, name), 0.0)
    assert len(set(np.asarray(flat.seed).tolist())) == 8
    assert make("poet/flat[episode_length=50]").episode_length == 50


def test_progress_and_solved_read_the_state():
    params = FAMILY.encode()
    _, state = RESET(KEY, params)
    assert float(ObstacleCourse.progress(state)) == 0.0 and not bool(ObstacleCourse.solved(state))
    halfway = state.replace(x=jnp.float32((oc.START_X + oc.COURSE_LENGTH) / 2))
    assert float(ObstacleCourse.progress(halfway)) == pytest.approx(0.5)
    # The last step into the finish is paid its progress and the bonus, and ends the episode.
    near = state.replace(x=jnp.float32(oc.COURSE_LENGTH - 0.05), vx=jnp.float32(oc.MAX_SPEED))
    _, done, reward, terminated, _ = STEP(KEY, near, jnp.array([1.0, 0.0]), params)
    assert bool(terminated) and bool(ObstacleCourse.solved(done))
    assert float(ObstacleCourse.progress(done)) == 1.0
    progress_pay = oc.PROGRESS_REWARD * 0.05 / (oc.COURSE_LENGTH - oc.START_X)
    assert float(reward) == pytest.approx(progress_pay + oc.FINISH_BONUS - 0.025, abs=1e-4)


@pytest.mark.parametrize(
    "task_id, message",
    [
        ("poet/course[stump_height=-0.5]", r"stump_height must lie in \[0, 3\]"),
        ("poet/course[gap_width=9]", r"gap_width must lie in \[0, 5\]"),
        ("poet/course[roughness=(1.0, 0.5)]", "roughness must lie in"),
        ("poet/course[roughness=nan]", "roughness must be a number or a"),
        ("poet/course[stump_height=(0, 1, 2)]", "stump_height must be a number or a"),
        ("poet/course[seed=-1]", "seed must be an integer"),
        ("poet/course[seed=1.5]", "seed must be an integer"),
        ("poet/flat[episode_length=0]", "episode_length"),
        ("poet/flat[colour=red]", "unexpected keyword argument 'colour'"),
    ],
)
def test_bad_options_are_one_line_errors(task_id, message):
    with pytest.raises(Learn2RLError, match=message) as error:
        make(task_id)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"gap_width": -1.0}, "gap_width must lie in"),
        ({"stump_height": (0.0, 1.0)}, "stump_height must be a number"),
        ({"roughness": float("inf")}, "roughness must lie in"),
        ({"seed": True}, "seed must be an integer"),
    ],
)
def test_bad_encodings_are_one_line_errors(kwargs, message):
    with pytest.raises(Learn2RLError, match=message) as error:
        ObstacleCourse.encode(**kwargs)
    assert "\n" not in str(error.value)
