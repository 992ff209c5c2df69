"""Obstacle courses for a planar point-mass runner: the environments of POET (Wang, Lehman, Clune
and Stanley 2019, "Paired Open-Ended Trailblazer", arXiv 1901.01753), in pure JAX.

POET describes each environment by an encoding vector of difficulty knobs (for its bipedal walker:
stump height, gap width, roughness, ...). Here the task params *are* that encoding:

- ``roughness``: amplitude (m) of a random ground profile (knots every metre, linearly
  interpolated), ``stump_height``: height (m) of the stumps, ``gap_width``: width (m) of the pits,
- ``seed``: the terrain seed; the same knobs with another seed give another course (profile,
  obstacle positions, which slots hold stumps and which gaps).

``build_course(params)`` turns an encoding into a heightfield of ``NUM_CELLS`` cells of
``CELL_WIDTH`` m (a static shape, so it runs under ``jit`` and ``vmap``): a flat start zone, then
``NUM_SLOTS`` obstacle slots, each a stump or a pit (even odds per slot, drawn from the seed).
``reset_env`` builds it once per episode and keeps it in the state.

The runner is a point mass under gravity. Action ``[drive, jump]`` in ``[-1, 1]^2``: ``drive``
pushes its horizontal velocity towards ``drive * MAX_SPEED`` (at half the rate in the air);
``jump > 0`` on the ground sets the vertical velocity to ``jump * JUMP_SPEED``. A cell more than
``STEP_TOLERANCE`` above the runner is a wall that stops it; lower steps are climbed or stepped
down. Falling ``FALL_DEPTH`` below a pit's rim ends the episode (-100); reaching the end of the
course ends it with a bonus (+100). Progress pays 200 over the whole course, so a run that
reaches the end scores at least 280 and one that does not at most 200: POET's "solved at 230"
separates them. docs/tasks/obstacle_course.md has every constant and the reasons for it.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.control.base import ControlFamily, check_positive_int

# --- the course --------------------------------------------------------------------------------
CELL_WIDTH = 0.25  # m
COURSE_LENGTH = 60.0  # m; the runner starts at START_X and is done at COURSE_LENGTH
NUM_CELLS = int(COURSE_LENGTH / CELL_WIDTH)  # 240
START_X = 1.0
START_ZONE = 6.0  # no obstacles and no roughness before this x
ROUGH_RAMP = 2.0  # roughness fades in over this many metres after the start zone
KNOT_SPACING = 1.0  # m between the random heights of the roughness profile
NUM_SLOTS = 7  # obstacle slots at START_ZONE + SLOT_SPACING * k + U[0, SLOT_JITTER]
SLOT_SPACING = 7.0
SLOT_JITTER = 1.0
STUMP_WIDTH = 0.5  # m (two cells)
PIT_DEPTH = 3.0  # m below the rim
# Upper bounds of the knobs (a wider gap would reach into the next slot).
CAPS = {"roughness": 2.0, "stump_height": 3.0, "gap_width": 5.0}
KNOBS = tuple(CAPS)

# --- the runner --------------------------------------------------------------------------------
DT = 0.05  # s per step
GRAVITY = 10.0  # m/s^2
MAX_SPEED = 4.0  # m/s: the horizontal speed that full drive settles at
DRIVE_RATE = 2.0  # 1/s: how fast the speed approaches drive * MAX_SPEED on the ground
AIR_CONTROL = 0.5  # the fraction of that rate in the air
JUMP_SPEED = 5.0  # m/s: vertical take-off speed of a full jump (1.25 m high, 1 s in the air)
STEP_TOLERANCE = 0.15  # m: higher steps are walls
FALL_DEPTH = 0.5  # m below a pit's rim: fallen in
WALL_GAP = 1e-3  # m: a blocked runner stops this far from the wall
CONTACT_EPS = 1e-4  # m: within this of the ground counts as on it (robust to float rounding)

# --- observations and rewards ------------------------------------------------------------------
LIDAR_POINTS = 12  # ground heights at LIDAR_SPACING, 2 * LIDAR_SPACING, ... ahead
LIDAR_SPACING = 0.5
LIDAR_CLIP = 3.0  # relative heights are clipped to [-LIDAR_CLIP, LIDAR_CLIP]
PROGRESS_REWARD = 200.0  # paid over the whole course, in proportion to the distance
FINISH_BONUS = 100.0
FALL_PENALTY = 100.0
CONTROL_COST = 0.05  # times the mean squared action, per step
SOLVED_SCORE = 230.0  # POET's threshold; see the module text

# No step moves the runner more than one cell, which the collision test relies on.
assert MAX_SPEED * DT < CELL_WIDTH


@struct.dataclass
class CourseParams:
    """The encoding of one course (float32 knobs in metres, int32 terrain seed)."""

    roughness: jax.Array
    stump_height: jax.Array
    gap_width: jax.Array
    seed: jax.Array


@struct.dataclass
class RunnerState:
    time: jax.Array  # int32
    x: jax.Array  # float32 position and velocity
    y: jax.Array
    vx: jax.Array
    vy: jax.Array
    on_ground: jax.Array  # bool
    reached: jax.Array  # bool: reached the end of the course
    fell: jax.Array  # bool: fell into a pit
    ground: jax.Array  # float32 [NUM_CELLS]: the course's heightfield
    pit: jax.Array  # bool [NUM_CELLS]: pit cells


def _check_knob(name: str, value) -> tuple[float, float]:
    """A knob option: a number (fixed) or a ``(low, high)`` pair (uniform), within [0, cap]."""
    cap = CAPS[name]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low = high = float(value)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise Learn2RLError(f"{name} must be a number or a (low, high) pair, got {value!r}")
        low, high = float(value[0]), float(value[1])
    else:
        raise Learn2RLError(f"{name} must be a number or a (low, high) pair, got {value!r}")
    if not (math.isfinite(low) and math.isfinite(high)) or not 0.0 <= low <= high <= cap:
        raise Learn2RLError(f"{name} must lie in [0, {cap:g}] (with low <= high), got {value!r}")
    return low, high


def _check_seed(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**31:
        raise Learn2RLError(f"seed must be an integer in [0, 2**31), got {value!r}")
    return value


def build_course(params: CourseParams) -> tuple[jax.Array, jax.Array]:
    """The heightfield ``float32[NUM_CELLS]`` and pit mask ``bool[NUM_CELLS]`` of an encoding.

    Pure and deterministic in the encoding; knobs outside ``[0, cap]`` (a mutated encoding) are
    clipped to it."""
    roughness = jnp.clip(jnp.asarray(params.roughness, jnp.float32), 0.0, CAPS["roughness"])
    stump = jnp.clip(jnp.asarray(params.stump_height, jnp.float32), 0.0, CAPS["stump_height"])
    gap = jnp.clip(jnp.asarray(params.gap_width, jnp.float32), 0.0, CAPS["gap_width"])
    key = jax.random.PRNGKey(jnp.asarray(params.seed, jnp.int32))
    key_knots, key_slots, key_kinds = jax.random.split(key, 3)
    centres = (jnp.arange(NUM_CELLS, dtype=jnp.float32) + 0.5) * CELL_WIDTH
    # Roughness: random heights in [-1, 1] every KNOT_SPACING m, linear in between, faded in.
    num_knots = int(COURSE_LENGTH / KNOT_SPACING) + 1
    knots = jax.random.uniform(key_knots, (num_knots,), jnp.float32, -1.0, 1.0)
    profile = jnp.interp(centres, jnp.arange(num_knots, dtype=jnp.float32) * KNOT_SPACING, knots)
    fade = jnp.clip((centres - START_ZONE) / ROUGH_RAMP, 0.0, 1.0)
    base = roughness * profile * fade
    # Obstacle slots: a stump (STUMP_WIDTH wide) or a pit (gap wide) at each slot position.
    starts = (
        START_ZONE
        + SLOT_SPACING * jnp.arange(NUM_SLOTS, dtype=jnp.float32)
        + jax.random.uniform(key_slots, (NUM_SLOTS,), jnp.float32, 0.0, SLOT_JITTER)
    )
    is_stump = jax.random.bernoulli(key_kinds, 0.5, (NUM_SLOTS,))
    offset = centres[:, None] - starts[None, :]  # [cells, slots]
    on_stump = jnp.any(is_stump & (offset >= 0) & (offset < STUMP_WIDTH), axis=1) & (stump > 0)
    pit = jnp.any(~is_stump & (offset >= 0) & (offset < gap), axis=1)
    ground = base + jnp.where(on_stump, stump, 0.0) - jnp.where(pit, PIT_DEPTH, 0.0)
    return ground.astype(jnp.float32), pit


def _cell(x: jax.Array) -> jax.Array:
    return jnp.clip(jnp.floor(x / CELL_WIDTH).astype(jnp.int32), 0, NUM_CELLS - 1)


class ObstacleCourse(ControlFamily):
    """POET-style obstacle courses for a point-mass runner (see the module text).

    Each knob (``roughness``, ``stump_height``, ``gap_width``) is a number (every task has that
    value) or a ``(low, high)`` pair (uniform per task); ``seed`` is ``None`` (drawn per task) or a
    fixed terrain seed. ``episode_length`` (400 steps of 0.05 s) is static."""

    action_size = 2
    observation_size = 4 + LIDAR_POINTS

    def __init__(
        self,
        roughness=0.0,
        stump_height=0.0,
        gap_width=0.0,
        seed: int | None = None,
        episode_length: int = 400,
    ):
        super().__init__()
        self.roughness = _check_knob("roughness", roughness)
        self.stump_height = _check_knob("stump_height", stump_height)
        self.gap_width = _check_knob("gap_width", gap_width)
        self.seed = None if seed is None else _check_seed(seed)
        self.episode_length = check_positive_int("episode_length", episode_length)
        self.family_id = "poet/course"

    # --- encodings ------------------------------------------------------------------------------
    @staticmethod
    def encode(
        roughness: float = 0.0, stump_height: float = 0.0, gap_width: float = 0.0, seed: int = 0
    ) -> CourseParams:
        """Task params from an explicit encoding (validated; for POET's mutations). Batch several
        with ``jax.tree.map(lambda *x: jnp.stack(x), *encodings)``."""
        knobs = {"roughness": roughness, "stump_height": stump_height, "gap_width": gap_width}
        for name, value in knobs.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise Learn2RLError(f"{name} must be a number, got {value!r}")
            _check_knob(name, value)
        return CourseParams(
            **{name: jnp.float32(value) for name, value in knobs.items()},
            seed=jnp.int32(_check_seed(seed)),
        )

    def sample_params(self, key: jax.Array) -> CourseParams:
        keys = jax.random.split(key, 4)
        knobs = {
            name: jax.random.uniform(k, (), jnp.float32, *getattr(self, name))
            for name, k in zip(KNOBS, keys[:3], strict=True)
        }
        if self.seed is None:
            seed = jax.random.randint(keys[3], (), 0, 2**31 - 1, dtype=jnp.int32)
        else:
            seed = jnp.int32(self.seed)
        return CourseParams(**knobs, seed=seed)

    # --- the environment -----------------------------------------------------------------------
    def _observe(self, state: RunnerState) -> jax.Array:
        here = state.ground[_cell(state.x)]
        ahead = state.x + LIDAR_SPACING * jnp.arange(1, LIDAR_POINTS + 1, dtype=jnp.float32)
        lidar = jnp.clip(state.ground[_cell(ahead)] - state.y, -LIDAR_CLIP, LIDAR_CLIP)
        own = jnp.stack([state.y - here, state.vx, state.vy, state.on_ground.astype(jnp.float32)])
        return jnp.concatenate([own, lidar]).astype(jnp.float32)

    def reset_env(self, key: jax.Array, params: CourseParams):
        ground, pit = build_course(params)
        zero, false = jnp.float32(0.0), jnp.asarray(False)
        state = RunnerState(
            time=jnp.int32(0),
            x=jnp.float32(START_X),
            y=ground[_cell(jnp.float32(START_X))],
            vx=zero,
            vy=zero,
            on_ground=jnp.asarray(True),
            reached=false,
            fell=false,
            ground=ground,
            pit=pit,
        )
        return self._observe(state), state

    def step_env(self, key: jax.Array, state: RunnerState, action: jax.Array, params: CourseParams):
        action = self.clip_action(action)
        drive, jump = action[0], action[1]
        ground, pit = state.ground, state.pit
        # Velocities: drive relaxes vx towards drive * MAX_SPEED; a jump needs the ground.
        rate = DRIVE_RATE * jnp.where(state.on_ground, 1.0, AIR_CONTROL)
        vx = state.vx + DT * rate * (drive * MAX_SPEED - state.vx)
        jumping = state.on_ground & (jump > 0)
        vy = jnp.where(jumping, jump * JUMP_SPEED, jnp.where(state.on_ground, 0.0, state.vy))
        vy = vy - GRAVITY * DT
        x_new, y_new = state.x + vx * DT, state.y + vy * DT
        # Walls: a cell higher than the runner (at its higher end of the step) plus the tolerance.
        cell, cell_new = _cell(state.x), _cell(x_new)
        wall = (cell_new != cell) & (
            ground[cell_new] > jnp.maximum(state.y, y_new) + STEP_TOLERANCE
        )
        boundary = jnp.where(
            cell_new > cell, (cell + 1) * CELL_WIDTH - WALL_GAP, cell * CELL_WIDTH + WALL_GAP
        )
        x_new = jnp.where(wall, boundary, x_new)
        x_new = jnp.maximum(x_new, WALL_GAP)  # the start of the course is a wall too
        vx = jnp.where(wall | (x_new <= WALL_GAP), 0.0, vx)
        here = ground[_cell(x_new)]
        # Landing (or a small step up), and sticking to the ground on small steps down.
        stick = state.on_ground & ~jumping & (state.y - here <= STEP_TOLERANCE)
        grounded = (y_new <= here + CONTACT_EPS) | stick
        y_new = jnp.where(grounded, here, y_new)
        vy = jnp.where(grounded, 0.0, vy)
        fell = pit[_cell(x_new)] & (y_new < here + PIT_DEPTH - FALL_DEPTH)
        reached = x_new >= COURSE_LENGTH
        # Reward: progress (clipped at the end), the end bonus, the fall penalty, control cost.
        scale = PROGRESS_REWARD / (COURSE_LENGTH - START_X)
        progress = jnp.minimum(x_new, COURSE_LENGTH) - jnp.minimum(state.x, COURSE_LENGTH)
        reward = (
            scale * progress
            + FINISH_BONUS * reached
            - FALL_PENALTY * fell
            - CONTROL_COST * jnp.mean(action**2)
        )
        new_state = RunnerState(
            time=state.time + 1,
            x=x_new.astype(jnp.float32),
            y=y_new.astype(jnp.float32),
            vx=vx.astype(jnp.float32),
            vy=vy.astype(jnp.float32),
            on_ground=grounded,
            reached=reached,
            fell=fell,
            ground=ground,
            pit=pit,
        )
        terminated = reached | fell
        return self._observe(new_state), new_state, reward.astype(jnp.float32), terminated, {}

    def is_terminated(self, state: RunnerState, params: CourseParams) -> jax.Array:
        return state.reached | state.fell

    # --- what POET's minimal criterion reads ----------------------------------------------------
    @staticmethod
    def progress(state: RunnerState) -> jax.Array:
        """The fraction of the course covered, in [0, 1] (1: reached the end)."""
        covered = (jnp.minimum(state.x, COURSE_LENGTH) - START_X) / (COURSE_LENGTH - START_X)
        return jnp.clip(covered, 0.0, 1.0)

    @staticmethod
    def solved(state: RunnerState) -> jax.Array:
        """Reached the end of the course (equivalently: an episode score >= SOLVED_SCORE)."""
        return state.reached


TASKS = [
    (
        "poet/flat",
        ObstacleCourse,
        "POET-style obstacle course with every knob at zero: flat ground, no stumps, no pits "
        "(point-mass runner, drive and jump, 400 steps; Wang et al. 2019)",
        {},
    ),
    (
        "poet/course",
        ObstacleCourse,
        "POET-style obstacle course, knobs uniform per task: roughness 0-1 m, stump height "
        "0-1.5 m, gap width 0-4 m, random terrain seed (point-mass runner; Wang et al. 2019)",
        {"roughness": (0.0, 1.0), "stump_height": (0.0, 1.5), "gap_width": (0.0, 4.0)},
    ),
]
