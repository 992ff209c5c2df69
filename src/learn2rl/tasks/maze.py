"""Random mazes seen from the inside: a gridworld version of the RL^2 visual-navigation task.

Duan et al. 2016 ("RL^2: Fast Reinforcement Learning via Slow Reinforcement Learning", arXiv
1611.02779, Sec. 3.3 and Table 3) put a first-person agent in randomly generated ViZDoom mazes of
5x5 and 9x9 cells and let it play trials of two episodes on the same maze and target: the second
episode is shorter because the agent remembers where the target was. This module keeps the
structure of that task and drops the rendering: the agent walks a grid maze with an egocentric
action set and sees a small symbolic first-person view instead of 40x30 RGB frames. See
docs/tasks/mazes.md for what was taken from the paper and what was chosen here.

The task (``MazeParams``, fixed for a whole trial):

- ``walls``: a ``size`` x ``size`` perfect maze (every cell reachable from every other by exactly
  one path), ``walls[row, column, d]`` true where side ``d`` (0 north, 1 east, 2 south, 3 west) of
  the cell is closed; the outer border is always closed. Layouts come from two fixed pools built
  in numpy when the family is constructed (randomized depth-first search, seeded by ``LAYOUT_SEED``
  and the size): ``num_train_layouts`` for training and ``num_test_layouts`` for test, all
  distinct, so no test maze is ever a training maze.
- ``start`` and ``start_heading``: the cell and facing direction every episode of the trial
  starts from, uniform over cells and headings.
- ``goal``: the target cell, uniform over the cells other than ``start``.
- ``layout``: the row of ``Maze.layouts`` the walls come from (for analyses).

``task(index)`` reads the split from the index range (``tasks.base.SPLITS``: test indices lie
below the training range): a test index draws its layout from the test pool, any other index from
the training pool; layout, start, heading and goal come from ``fold_in(root key, index)``. All of
it is JAX, so ``jax.vmap(family.task)`` works under ``jit`` and ``family.sample(key, split)`` /
``family.tasks(num, split)`` give tasks of the right pool.

Dynamics. The state is the agent's cell and heading. Actions: 0 move forward one cell (a closed
wall ahead leaves the agent where it is: a bump), 1 turn left 90 degrees, 2 turn right 90
degrees. Reward per step: ``-TIME_PENALTY``, plus ``-WALL_PENALTY`` on a bump, plus
``GOAL_REWARD`` on the move that enters the goal, which also ends the episode (``terminated``).
After ``episode_length`` steps (250, as in the paper) without the goal the base class truncates the
episode. Every episode of a trial starts again from ``start`` / ``start_heading``.

Observation (float32, every entry 0 or 1, ``4 + 5 * view_depth`` entries; 19 by default):

- ``[0:4]``: walls of the agent's own cell, in egocentric order front, right, back, left.
- then for each depth ``k = 1 .. view_depth`` the ``k``-th cell straight ahead, five entries:
  ``visible`` (no wall between the agent and that cell), its ``left`` wall, ``right`` wall,
  ``far`` wall (the side facing away from the agent), and ``goal`` (the target is in that cell).
  A cell that is not visible shows all five as 0.

The agent never sees the map, its coordinates or the goal's coordinates; it can only see the goal
down a straight corridor at most ``view_depth`` cells away.

Analysis helpers (pure): ``shortest_path_length`` (breadth-first search over cell x heading,
numpy), ``action_distances`` / ``optimal_action`` (the same distances in JAX, vmappable; the
oracle agent of ``learn2rl.baselines.maze`` walks them) and ``render_layout`` (a maze as text).
Steps and success per episode of an ``EvalResult``: ``learn2rl.analysis.episodes``.
"""

from __future__ import annotations

import functools
from collections import deque

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from gymnax.environments import spaces

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import _ROOT_SEED, SPLITS, TaskFamily

# Reward constants of Duan et al. 2016, Sec. 3.3 (visual navigation): +1 for reaching the target,
# -0.001 for hitting a wall, -0.04 per time step. The three terms add up (docs/tasks/mazes.md).
GOAL_REWARD = 1.0
WALL_PENALTY = 0.001
TIME_PENALTY = 0.04
# Horizon of one episode in the paper's maze experiments.
EPISODE_LENGTH = 250
# Layout pool sizes: the paper trains on 1000 maze layouts; the test pool has as many, unseen.
NUM_LAYOUTS = 1000
# How many cells straight ahead the agent can see (a symbolic stand-in for the 40x30 view, in which
# a distant target is only a few pixels): 3 keeps the observation at 19 entries for every size.
VIEW_DEPTH = 3
# Seed of the layout generator: the arXiv date of the paper; combined with the size and the pool.
LAYOUT_SEED = 20161109

# Headings / wall sides, clockwise from north, and the (row, column) step of each.
NORTH, EAST, SOUTH, WEST = 0, 1, 2, 3
DELTAS = ((-1, 0), (0, 1), (1, 0), (0, -1))
FORWARD, TURN_LEFT, TURN_RIGHT = 0, 1, 2
NUM_ACTIONS = 3
ARROWS = "^>v<"

MAX_SIZE = 32  # larger mazes would make the layout pools (size * size * 4 per layout) unwieldy
MAX_LAYOUTS = 100_000
_MAX_DRAWS_PER_LAYOUT = 50  # attempts per distinct layout before giving up (tiny mazes)


@struct.dataclass
class MazeParams:
    """One task: a maze layout, the start (cell and heading) and the goal cell of every episode."""

    walls: jax.Array  # bool [size, size, 4]: closed sides (north, east, south, west) of each cell
    start: jax.Array  # int32 cell, row-major (row * size + column)
    start_heading: jax.Array  # int32 in 0..3 (north, east, south, west)
    goal: jax.Array  # int32 cell, never equal to start
    layout: jax.Array  # int32 row of ``Maze.layouts`` (train pool first, then test pool)


@struct.dataclass
class MazeState:
    time: jax.Array  # steps taken in this episode
    cell: jax.Array  # int32 row-major cell of the agent
    heading: jax.Array  # int32 in 0..3


# --- layouts (numpy, built once per family) ---------------------------------------------
def random_maze(size: int, rng: np.random.Generator) -> np.ndarray:
    """A perfect maze by randomized depth-first search (recursive backtracker).

    Starts from a uniformly drawn cell; at each step it carves a passage from the cell on top of
    the stack to a uniformly drawn unvisited neighbour, or backtracks when there is none. Returns
    ``walls``, bool [size, size, 4]. No extra walls are removed, so the maze has no loops.
    """
    walls = np.ones((size, size, 4), dtype=bool)
    visited = np.zeros((size, size), dtype=bool)
    start = divmod(int(rng.integers(size * size)), size)
    visited[start] = True
    stack = [start]
    while stack:
        row, column = stack[-1]
        options = []
        for side, (d_row, d_column) in enumerate(DELTAS):
            r, c = row + d_row, column + d_column
            if 0 <= r < size and 0 <= c < size and not visited[r, c]:
                options.append((side, r, c))
        if not options:
            stack.pop()
            continue
        side, r, c = options[int(rng.integers(len(options)))]
        walls[row, column, side] = False
        walls[r, c, (side + 2) % 4] = False
        visited[r, c] = True
        stack.append((r, c))
    return walls


@functools.lru_cache(maxsize=8)
def layout_pools(size: int, num_train: int, num_test: int) -> np.ndarray:
    """The training pool followed by the test pool: bool [num_train + num_test, size, size, 4].

    Each pool has its own generator, seeded by ``(LAYOUT_SEED, size, pool)``, so the training pool
    does not depend on the size of the test pool. A layout equal to one already drawn (in either
    pool) is thrown away and drawn again, so all layouts are distinct and the pools disjoint.
    Cached: families of the same sizes share one read-only array.
    """
    seen: set[bytes] = set()
    pools = []
    for pool, count in enumerate((num_train, num_test)):
        rng = np.random.default_rng([LAYOUT_SEED, size, pool])
        layouts = []
        draws = 0
        while len(layouts) < count:
            if draws >= _MAX_DRAWS_PER_LAYOUT * count + 100:
                raise Learn2RLError(
                    f"could not draw {num_train + num_test} distinct {size}x{size} mazes "
                    f"({len(seen)} found); ask for fewer layouts or a larger size"
                )
            draws += 1
            walls = random_maze(size, rng)
            key = walls.tobytes()
            if key not in seen:
                seen.add(key)
                layouts.append(walls)
        pools.extend(layouts)
    array = np.stack(pools)
    array.setflags(write=False)
    return array


# --- the family ---------------------------------------------------------------------------------
def _check_int(name: str, value, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise Learn2RLError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return value


class Maze(TaskFamily):
    """Random perfect mazes with a hidden goal and a first-person view (Duan et al. 2016, Sec. 3.3).

    Tasks come from two fixed, disjoint pools of layouts; see the module docstring.
    """

    def __init__(
        self,
        size: int = 5,
        episode_length: int = EPISODE_LENGTH,
        num_train_layouts: int = NUM_LAYOUTS,
        num_test_layouts: int = NUM_LAYOUTS,
        view_depth: int = VIEW_DEPTH,
    ):
        super().__init__()
        self.size = _check_int("size", size, 2, MAX_SIZE)
        self.num_cells = size * size
        self.episode_length = _check_int("episode_length", episode_length, 1, 1 << 20)
        self.num_train_layouts = _check_int("num_train_layouts", num_train_layouts, 1, MAX_LAYOUTS)
        self.num_test_layouts = _check_int("num_test_layouts", num_test_layouts, 1, MAX_LAYOUTS)
        self.view_depth = _check_int("view_depth", view_depth, 1, MAX_SIZE)
        self.layouts = layout_pools(size, num_train_layouts, num_test_layouts)
        self._layouts = jnp.asarray(self.layouts)
        # One compiled function instead of a dozen eager random ops per call (much faster to
        # build ``tasks(num, split)`` outside jit); inside jit or vmap it is simply inlined.
        self._draw = jax.jit(self._draw_task)
        self._task = jax.jit(self._task_of_index)
        self.family_id = f"maze/{size}x{size}"

    @property
    def num_actions(self) -> int:
        return NUM_ACTIONS

    @property
    def observation_size(self) -> int:
        return 4 + 5 * self.view_depth

    # --- the prior over tasks --------------------------------------------------------------
    def _draw_task(self, key: jax.Array, is_test: jax.Array) -> MazeParams:
        # Four integers from one draw of 32-bit words, each reduced modulo its range: layout row
        # in the pool, start cell, start heading, goal among the other cells. The modulo bias is at
        # most range / 2**32 (< 3e-5 here), and this compiles several times faster than randint.
        pool_size = jnp.where(is_test, self.num_test_layouts, self.num_train_layouts)
        ranges = jnp.stack([pool_size, self.num_cells, 4, self.num_cells - 1]).astype(jnp.uint32)
        draws = (jax.random.bits(key, (4,), jnp.uint32) % ranges).astype(jnp.int32)
        row = jnp.where(is_test, self.num_train_layouts + draws[0], draws[0])
        start, heading = draws[1], draws[2]
        goal = draws[3] + (draws[3] >= start).astype(jnp.int32)  # skip over the start cell
        return MazeParams(
            walls=self._layouts[row], start=start, start_heading=heading, goal=goal, layout=row
        )

    def sample_params(self, key: jax.Array) -> MazeParams:
        """A task on a training-pool layout (the training prior)."""
        return self._draw(key, jnp.asarray(False))

    def task(self, index: jax.Array | int) -> MazeParams:
        """Task ``index``: a test-pool layout for test indices, a training-pool one otherwise."""
        return self._task(jnp.asarray(index, jnp.int32))

    def _task_of_index(self, index: jax.Array) -> MazeParams:
        is_test = index < SPLITS["test"][1]
        key = jax.random.fold_in(jax.random.PRNGKey(_ROOT_SEED), index.astype(jnp.uint32))
        return self._draw(key, is_test)

    # --- dynamics ----------------------------------------------------------------------------
    def observe(self, walls: jax.Array, goal: jax.Array, cell: jax.Array, heading: jax.Array):
        """The first-person view of an agent at ``cell`` facing ``heading`` (module docstring)."""
        size = self.size
        row, column = jnp.divmod(cell, size)
        own = walls[row, column, (heading + jnp.arange(4)) % 4]  # front, right, back, left
        deltas = jnp.asarray(DELTAS, jnp.int32)
        depth = jnp.arange(1, self.view_depth + 1)
        rows = jnp.clip(row + depth * deltas[heading, 0], 0, size - 1)
        columns = jnp.clip(column + depth * deltas[heading, 1], 0, size - 1)
        # Cell k is visible when the far walls of cells 0 .. k-1 are all open.
        far_walls = walls[rows, columns, heading]
        open_before = jnp.concatenate([jnp.logical_not(own[:1]), ~far_walls[:-1]])
        visible = jnp.cumprod(open_before.astype(jnp.int32)).astype(bool)
        left = walls[rows, columns, (heading + 3) % 4]
        right = walls[rows, columns, (heading + 1) % 4]
        at_goal = rows * size + columns == goal
        ahead = jnp.stack([visible, left, right, far_walls, at_goal], axis=1) & visible[:, None]
        return jnp.concatenate([own, ahead.reshape(-1)]).astype(jnp.float32)

    def reset_env(self, key: jax.Array, params: MazeParams):
        state = MazeState(
            time=jnp.int32(0),
            cell=jnp.asarray(params.start, jnp.int32),
            heading=jnp.asarray(params.start_heading, jnp.int32),
        )
        return self.observe(params.walls, params.goal, state.cell, state.heading), state

    def step_env(self, key: jax.Array, state: MazeState, action: jax.Array, params: MazeParams):
        cell, heading, bumped = move(params.walls, state.cell, state.heading, action)
        reached = cell == params.goal
        reward = (
            -TIME_PENALTY
            - jnp.where(bumped, WALL_PENALTY, 0.0)
            + jnp.where(reached, GOAL_REWARD, 0.0)
        ).astype(jnp.float32)
        new_state = MazeState(time=state.time + 1, cell=cell, heading=heading)
        obs = self.observe(params.walls, params.goal, cell, heading)
        return obs, new_state, reward, reached, {}

    def action_space(self, params=None):
        return spaces.Discrete(NUM_ACTIONS)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (self.observation_size,), jnp.float32)


def move(walls: jax.Array, cell: jax.Array, heading: jax.Array, action: jax.Array):
    """One action from ``(cell, heading)``: returns ``(cell, heading, bumped)``. Pure JAX."""
    size = walls.shape[0]
    turn = jnp.where(action == TURN_LEFT, -1, jnp.where(action == TURN_RIGHT, 1, 0))
    new_heading = ((heading + turn) % 4).astype(jnp.int32)
    row, column = jnp.divmod(cell, size)
    forward = action == FORWARD
    blocked = walls[row, column, heading]
    step = jnp.logical_and(forward, jnp.logical_not(blocked)).astype(jnp.int32)
    deltas = jnp.asarray(DELTAS, jnp.int32)
    new_cell = (row + step * deltas[heading, 0]) * size + column + step * deltas[heading, 1]
    return new_cell.astype(jnp.int32), new_heading, jnp.logical_and(forward, blocked)


# --- analyses -----------------------------------------------------------------------------------
def shortest_path_length(walls, start: int, heading: int, goal: int) -> int:
    """Fewest actions (moves and turns) from ``start`` facing ``heading`` into the ``goal`` cell.

    Breadth-first search over (cell, heading) in numpy; the goal may be entered with any heading.
    Returns -1 if the goal cannot be reached (never in a perfect maze). 0 if ``start == goal``.
    """
    walls = np.asarray(walls, dtype=bool)
    size = walls.shape[0]
    start, heading, goal = int(start), int(heading), int(goal)
    if start == goal:
        return 0
    distance = {(start, heading): 0}
    queue = deque([(start, heading)])
    while queue:
        cell, facing = queue.popleft()
        row, column = divmod(cell, size)
        options = [(cell, (facing + 3) % 4), (cell, (facing + 1) % 4)]
        if not walls[row, column, facing]:
            d_row, d_column = DELTAS[facing]
            options.append(((row + d_row) * size + column + d_column, facing))
        for following in options:
            if following in distance:
                continue
            distance[following] = distance[(cell, facing)] + 1
            if following[0] == goal:
                return distance[following]
            queue.append(following)
    return -1


def action_distances(params: MazeParams) -> jax.Array:
    """Fewest actions to the goal from every (cell, heading): int32 [size * size, 4]. Pure JAX.

    Value iteration of ``d(s) = 0`` on the goal cell and ``d(s) = 1 + min_a d(next(s, a))``
    elsewhere, run for ``4 * size * size`` sweeps (no shortest path is longer), so it is exact;
    vmap over a batch of tasks. Unreachable states keep a value >= ``4 * size * size``.
    """
    walls = params.walls
    size = walls.shape[0]
    num_cells = size * size
    cells = jnp.repeat(jnp.arange(num_cells, dtype=jnp.int32), 4)
    headings = jnp.tile(jnp.arange(4, dtype=jnp.int32), num_cells)
    following = []
    for action in range(NUM_ACTIONS):
        cell, heading, _ = jax.vmap(move, (None, 0, 0, None))(walls, cells, headings, action)
        following.append(cell * 4 + heading)
    following = jnp.stack(following, axis=1)  # [num_cells * 4, actions]
    at_goal = cells == params.goal
    limit = 4 * num_cells

    def sweep(_, distance):
        best = jnp.min(distance[following], axis=1)
        return jnp.where(at_goal, 0, jnp.minimum(best + 1, limit))

    start = jnp.where(at_goal, 0, limit).astype(jnp.int32)
    distance = jax.lax.fori_loop(0, limit, sweep, start)
    return distance.reshape(num_cells, 4)


def optimal_action(params: MazeParams, distances: jax.Array, cell, heading) -> jax.Array:
    """An action on a shortest path to the goal (ties: forward, then left, then right)."""
    options = []
    for action in range(NUM_ACTIONS):
        new_cell, new_heading, _ = move(params.walls, cell, heading, action)
        options.append(distances[new_cell, new_heading])
    return jnp.argmin(jnp.stack(options)).astype(jnp.int32)


def render_layout(walls, goal: int | None = None, start: int | None = None, heading: int = 0):
    """A maze as text: ``+---+`` borders, ``G`` on the goal, an arrow (``^>v<``) on the start."""
    walls = np.asarray(walls, dtype=bool)
    size = walls.shape[0]
    lines = []
    for row in range(size):
        top = "+"
        middle = "|" if walls[row, 0, WEST] else " "
        for column in range(size):
            top += ("---" if walls[row, column, NORTH] else "   ") + "+"
            cell = row * size + column
            mark = "G" if cell == goal else ARROWS[heading] if cell == start else " "
            middle += f" {mark} " + ("|" if walls[row, column, EAST] else " ")
        lines += [top, middle]
    bottom = "+"
    for column in range(size):
        bottom += ("---" if walls[size - 1, column, SOUTH] else "   ") + "+"
    lines.append(bottom)
    return "\n".join(lines)


TASKS = [
    (
        f"maze/{n}x{n}",
        Maze,
        f"random perfect {n}x{n} maze (1000 training / 1000 test layouts), hidden goal and start "
        f"fixed per trial, first-person view, forward/left/right, +1 goal, -0.001 bump, -0.04 per "
        f"step, 250-step episodes (Duan et al. 2016 RL^2 visual navigation)",
        {"size": n},
    )
    for n in (5, 9)
]
