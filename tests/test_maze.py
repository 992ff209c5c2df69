"""Random mazes with a first-person view (tasks/maze.py): the RL^2 visual-navigation family."""

from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.analysis.episodes import episode_table
from learn2rl.baselines.maze import oracle_agent
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import evaluate
from learn2rl.tasks import list_tasks, make
from learn2rl.tasks.base import SPLITS
from learn2rl.tasks.maze import (
    Maze,
    MazeParams,
    action_distances,
    render_layout,
    shortest_path_length,
)
from learn2rl.trial import Trial
from tests.reference import maze_reference as ref
from tests.trial_scan import scan_trial

MAZE_IDS = [task_id for task_id in list_tasks() if task_id.startswith("maze/")]
TEST_HIGH = SPLITS["test"][1]


def small(size=3, **kwargs):
    """A family with small layout pools (cheap to build; tiny mazes have few distinct layouts)."""
    return Maze(size, num_train_layouts=12, num_test_layouts=12, **kwargs)


def snake_walls() -> np.ndarray:
    """A hand-made 3x3 maze, one corridor 0-1-2-5-8-7-6-3-4 (cells row-major):

    +---+---+---+
    |           |
    +---+---+   +
    |       |   |
    +   +---+   +
    |           |
    +---+---+---+
    """
    walls = np.ones((3, 3, 4), dtype=bool)
    for a, b in [(0, 1), (1, 2), (2, 5), (5, 8), (8, 7), (7, 6), (6, 3), (3, 4)]:
        (ra, ca), (rb, cb) = divmod(a, 3), divmod(b, 3)
        side = {(-1, 0): 0, (0, 1): 1, (1, 0): 2, (0, -1): 3}[(rb - ra, cb - ca)]
        walls[ra, ca, side] = False
        walls[rb, cb, (side + 2) % 4] = False
    return walls


def snake_task(start=0, heading=1, goal=2) -> MazeParams:
    return MazeParams(
        walls=jnp.asarray(snake_walls()),
        start=jnp.int32(start),
        start_heading=jnp.int32(heading),
        goal=jnp.int32(goal),
        layout=jnp.int32(-1),
    )


# --- step by step against the numpy reference ----------------------------------------------------
@pytest.mark.long
def test_trials_match_numpy_reference():
    cases = [
        (small(3, episode_length=25, view_depth=2), [0, 1, 2, 3, TEST_HIGH, TEST_HIGH + 7]),
        (Maze(5, episode_length=60, num_train_layouts=8, num_test_layouts=8), [0, 1]),
    ]
    seen = {"reached": 0, "bumped": 0, "truncated": 0, "goal_in_view": 0, "deep_view": 0}
    rng = np.random.default_rng(0)
    for family, indices in cases:
        num_episodes = 3
        trial = Trial(family, num_episodes)
        step = jax.jit(trial.step)
        for index in indices:
            params = family.task(index)
            num_steps = trial.max_steps + 2  # steps past the end of the trial must be no-ops
            actions = [int(a) for a in rng.choice(3, size=num_steps, p=[0.6, 0.2, 0.2])]
            expected = ref.maze_trial(
                np.asarray(params.walls),
                int(params.start),
                int(params.start_heading),
                int(params.goal),
                family.episode_length,
                num_episodes,
                family.view_depth,
                actions,
            )
            keys = jax.random.split(jax.random.PRNGKey(index), num_steps)
            obs, state = trial.reset(jax.random.PRNGKey(1), params)
            for t, want in enumerate(expected):
                np.testing.assert_array_equal(obs.obs, want["obs"])
                assert int(obs.step) == want["step"]
                assert int(obs.prev_action) == want["prev_action"]
                assert float(obs.prev_reward) == pytest.approx(want["prev_reward"], abs=1e-6)
                assert float(obs.prev_done) == want["prev_done"]
                obs, state, reward, episode_done, trial_done = step(
                    keys[t], state, actions[t], params
                )
                assert float(reward) == pytest.approx(want["reward"], abs=1e-6)
                assert bool(episode_done) == want["episode_done"]
                assert bool(trial_done) == want["trial_done"]
                assert int(state.env_state.cell) == want["cell"]
                assert int(state.env_state.heading) == want["heading"]
            assert not expected[-1]["active"]
            seen["reached"] += sum(row["reached"] for row in expected)
            seen["bumped"] += sum(row["bumped"] for row in expected)
            seen["truncated"] += sum(row["episode_done"] and not row["reached"] for row in expected)
            views = np.stack([row["obs"] for row in expected])
            seen["goal_in_view"] += int(views[:, 8::5].sum())
            seen["deep_view"] += int(views[:, 9].sum())  # second cell ahead visible
    # The sequences must cover goal hits, bumps, step limits and views of the goal and of depth 2.
    assert all(count > 0 for count in seen.values()), seen


def test_first_person_view_on_a_hand_made_maze():
    family = small(3)
    params = snake_task(start=0, heading=1, goal=2)
    obs, state = family.reset(jax.random.PRNGKey(0), params)
    # Own cell facing east: front open, right (south), back (west), left (north) closed. Cell 1:
    # visible, north and south closed, east open. Cell 2 (the goal): visible, north closed, south
    # open, east is the border. A third cell would lie outside the maze: not visible.
    want = [0, 1, 1, 1] + [1, 1, 1, 0, 0] + [1, 1, 0, 1, 1] + [0, 0, 0, 0, 0]
    np.testing.assert_array_equal(obs, want)
    np.testing.assert_array_equal(ref.view(snake_walls(), (0, 2), 0, 0, "east", 3), want)
    assert obs.dtype == jnp.float32 and obs.shape == (family.observation_size,) == (19,)
    # Turn right (facing the south wall; the open side is now on the left): nothing visible ahead.
    obs, state, reward, done, _ = family.step_env(jax.random.PRNGKey(0), state, 2, params)
    np.testing.assert_array_equal(obs, [1, 1, 1, 0] + [0] * 15)
    assert float(reward) == pytest.approx(-0.04) and not bool(done)
    # Forward into that wall: a bump, the agent stays.
    _, state, reward, _, _ = family.step_env(jax.random.PRNGKey(0), state, 0, params)
    assert float(reward) == pytest.approx(-0.041) and int(state.cell) == 0


@pytest.mark.long
def test_jit_and_nojit_trials_are_identical():
    family = small(3, episode_length=6)
    trial = Trial(family, 2)
    params = family.task(2)
    actions = jnp.asarray(np.random.default_rng(1).choice(3, trial.max_steps, p=[0.6, 0.2, 0.2]))
    fast, slow = scan_trial(trial, params, actions, extract=lambda s: s.cell * 4 + s.heading)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)


# --- registered ids -------------------------------------------------------------------------------
def test_paper_ids_are_registered():
    assert MAZE_IDS == ["maze/5x5", "maze/9x9"]
    for task_id, size in [("maze/5x5", 5), ("maze/9x9", 9)]:
        family = make(task_id)
        assert (family.size, family.episode_length, family.num_actions) == (size, 250, 3)
        assert (family.num_train_layouts, family.num_test_layouts) == (1000, 1000)
        assert family.layouts.shape == (2000, size, size, 4)


@pytest.mark.parametrize("task_id", MAZE_IDS)
@pytest.mark.slow
def test_registered_mazes_reset_and_step_under_vmap(task_id):
    family = make(task_id)
    tasks = family.tasks(64, "test")
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    obs, state = jax.jit(jax.vmap(family.reset))(keys, tasks)
    assert obs.shape == (64, 19) and obs.dtype == jnp.float32
    assert set(np.unique(np.asarray(obs))) <= {0.0, 1.0}
    np.testing.assert_array_equal(state.cell, tasks.start)
    np.testing.assert_array_equal(state.heading, tasks.start_heading)
    actions = jnp.arange(64) % 3
    obs, after, reward, terminated, truncated, _ = jax.jit(jax.vmap(family.step))(
        keys, state, actions, tasks
    )
    reward, terminated = np.asarray(reward), np.asarray(terminated)
    # Turns cost the time penalty; a forward move costs it too, plus 0.001 when blocked, and pays
    # +1 when it enters the goal (which ends the episode: gymnax's step puts the agent back on the
    # start, so a move that reached the goal is told apart by ``terminated``).
    moved = (np.asarray(after.cell) != np.asarray(state.cell)) | terminated
    turns = np.asarray(actions) > 0
    np.testing.assert_allclose(reward[turns], -0.04, atol=1e-7)
    np.testing.assert_allclose(reward[~turns & ~moved], -0.041, atol=1e-7)
    np.testing.assert_allclose(reward[moved], np.where(terminated, 0.96, -0.04)[moved], atol=1e-7)
    assert (~turns & ~moved).any() and (moved & ~terminated).any()
    assert not np.any(np.asarray(truncated))
    assert family.observation_space().shape == (19,) and family.action_space().n == 3


# --- layouts and tasks ----------------------------------------------------------------------------
def _is_perfect_maze(walls: np.ndarray) -> bool:
    """Border closed, both sides of every inner wall agree, connected, and no loops."""
    size = walls.shape[0]
    if not (walls[0, :, 0].all() and walls[:, -1, 1].all() and walls[-1, :, 2].all()):
        return False
    if not walls[:, 0, 3].all():
        return False
    if not (np.array_equal(walls[:, :-1, 1], walls[:, 1:, 3])):
        return False
    if not np.array_equal(walls[:-1, :, 2], walls[1:, :, 0]):
        return False
    passages = int((~walls[:, :-1, 1]).sum() + (~walls[:-1, :, 2]).sum())
    reached, queue = {(0, 0)}, deque([(0, 0)])
    while queue:
        r, c = queue.popleft()
        for side, (dr, dc) in enumerate([(-1, 0), (0, 1), (1, 0), (0, -1)]):
            if not walls[r, c, side] and (r + dr, c + dc) not in reached:
                reached.add((r + dr, c + dc))
                queue.append((r + dr, c + dc))
    return len(reached) == size * size and passages == size * size - 1


@pytest.mark.parametrize("task_id", MAZE_IDS)
def test_layout_pools_are_perfect_distinct_and_disjoint(task_id):
    family = make(task_id)
    keys = [layout.tobytes() for layout in family.layouts]
    train, test = set(keys[:1000]), set(keys[1000:])
    assert len(train) == 1000 and len(test) == 1000 and not train & test
    assert all(_is_perfect_maze(layout) for layout in family.layouts)
    # Same layouts whenever the family is built (fixed seed per size).
    np.testing.assert_array_equal(family.layouts[:3], make(task_id).layouts[:3])
    assert not family.layouts.flags.writeable


@pytest.mark.long
def test_tasks_are_deterministic_and_drawn_from_their_split():
    family = make("maze/5x5")
    test = family.tasks(500, "test")
    train = family.tasks(500, "train")
    assert np.all(np.asarray(test.layout) >= 1000) and np.all(np.asarray(train.layout) < 1000)
    for tasks in (test, train):
        np.testing.assert_array_equal(tasks.walls, family.layouts[np.asarray(tasks.layout)])
        assert not np.any(np.asarray(tasks.goal) == np.asarray(tasks.start))
        # Start cells, headings and goals spread over their ranges; layouts over the pool.
        assert len(np.unique(tasks.start)) == 25 and len(np.unique(tasks.goal)) == 25
        assert len(np.unique(tasks.start_heading)) == 4 and len(np.unique(tasks.layout)) > 300
    again = jax.jit(jax.vmap(family.task))(jnp.arange(500, dtype=jnp.int32))
    for a, b in zip(jax.tree.leaves(test), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    single = family.task(TEST_HIGH + 3)
    np.testing.assert_array_equal(single.walls, jax.tree.map(lambda x: x[3], train).walls)
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    sampled = jax.vmap(lambda k: family.sample(k, "test"))(keys).layout
    assert np.all(np.asarray(sampled) >= 1000)
    sampled = jax.vmap(lambda k: family.sample(k, "train"))(keys).layout
    assert np.all(np.asarray(sampled) < 1000)
    assert np.all(np.asarray(jax.vmap(family.sample_params)(keys).layout) < 1000)
    # Every goal is reachable from the start: finite shortest-path distances.
    distances = jax.jit(jax.vmap(action_distances))(jax.tree.map(lambda x: x[:200], test))
    from_start = np.asarray(distances)[np.arange(200), test.start[:200], test.start_heading[:200]]
    assert np.all((from_start > 0) & (from_start < 100))


# --- analyses -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_shortest_path_on_a_hand_made_maze():
    walls = snake_walls()
    # East along the top (2 moves), turn right, down (2), turn right, west (2), turn right, up (1),
    # turn right, east (1): 12 actions from cell 0 facing east to cell 4.
    for heading, want in [(1, 12), (0, 13), (2, 13), (3, 14)]:
        assert shortest_path_length(walls, 0, heading, 4) == want
    assert shortest_path_length(walls, 0, 1, 2) == 2
    assert shortest_path_length(walls, 4, 3, 0) == 12
    assert shortest_path_length(walls, 4, 1, 0) == 14
    assert shortest_path_length(walls, 4, 1, 4) == 0
    assert shortest_path_length(np.ones((3, 3, 4), bool), 0, 1, 4) == -1
    # The JAX table agrees with the search from every cell and heading.
    distances = np.asarray(action_distances(snake_task(goal=4)))
    for cell in range(9):
        for heading in range(4):
            assert distances[cell, heading] == shortest_path_length(walls, cell, heading, 4)
    assert render_layout(walls, goal=4, start=0, heading=1) == (
        "+---+---+---+\n"
        "| >         |\n"
        "+---+---+   +\n"
        "|     G |   |\n"
        "+   +---+   +\n"
        "|           |\n"
        "+---+---+---+"
    )


@pytest.mark.slow
def test_oracle_walks_shortest_paths_in_every_episode():
    family = small(4, episode_length=40)
    tasks = family.tasks(24, "test")
    result = evaluate(oracle_agent(), family, tasks, 2, jax.random.PRNGKey(0))
    shortest = [
        shortest_path_length(
            np.asarray(tasks.walls[i]), int(tasks.start[i]), int(tasks.start_heading[i]), int(g)
        )
        for i, g in enumerate(np.asarray(tasks.goal))
    ]
    table = episode_table(result, 2, np.asarray(shortest))
    assert table["success"].all()
    np.testing.assert_array_equal(table["steps"], np.stack([shortest, shortest], axis=1))
    np.testing.assert_array_equal(table["excess"], 0)
    # Reward of an episode of n steps: -0.04 per step, +1 at the goal, no bumps.
    np.testing.assert_allclose(result.total_rewards, 2 * (1 - 0.04 * np.asarray(shortest)), 1e-5)
    # A trial that never reaches the goal: two truncated episodes, no success.
    result = result.__class__(**{**result.__dict__, "rewards": np.minimum(result.rewards, 0.0)})
    assert not episode_table(result, 2, np.asarray(shortest))["success"].any()


# --- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"size": 1}, "size must be an integer in [2, 32], got 1"),
        ({"size": 33}, "size must be an integer in [2, 32], got 33"),
        ({"size": 5.0}, "size must be an integer in [2, 32], got 5.0"),
        ({"episode_length": 0}, "episode_length must be an integer in [1, 1048576], got 0"),
        ({"num_train_layouts": 0}, "num_train_layouts must be an integer in [1, 100000], got 0"),
        (
            {"num_test_layouts": True},
            "num_test_layouts must be an integer in [1, 100000], got True",
        ),
        ({"view_depth": 0}, "view_depth must be an integer in [1, 32], got 0"),
        (
            {"size": 2, "num_train_layouts": 3, "num_test_layouts": 3},
            "could not draw 6 distinct 2x2 mazes (4 found); ask for fewer layouts or a larger size",
        ),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(Learn2RLError) as error:
        Maze(**kwargs)
    assert str(error.value) == message
    if "size" not in kwargs:
        with pytest.raises(Learn2RLError, match="must be an integer"):
            make("maze/5x5", **kwargs)
