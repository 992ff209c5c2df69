"""Locomotion families on MuJoCo MJX (Finn et al. 2017, "Model-Agnostic Meta-Learning", Sec. 5.3).

Two robots, both MJCF models written for learn2rl (``assets/``):

- ``runner.xml``: a planar half-cheetah-like runner. A capsule torso on three root joints (x slide,
  z slide, pitch hinge) and two legs of three segments, six actuated hinges (motor gears 40-110).
- ``quadruped.xml``: an ant-like walker. A sphere torso on a free joint, four legs of two segments
  (a vertical-axis hip and a knee), eight actuated hinges.

Both run at ``timestep = 0.01`` with ``frame_skip = 5`` physics steps per environment step (an
environment step is 0.05 s). Only the feet (lower legs) and the torso can touch the floor.

Observation: the joint positions without the root's horizontal position (the runner drops root x,
the quadruped drops x and y), then all joint velocities, as float32 (17 numbers for the runner, 27
for the quadruped). Action: one float per actuator, clipped to the actuators' ``ctrlrange`` [-1, 1].
Velocity: the root's x displacement over the environment step divided by its duration (0.05 s).
Every reward subtracts the control cost ``ctrl_cost * |a|^2`` (0.05, the paper's) of the *clipped*
action. Reset: the model's rest pose plus uniform noise in ``[-reset_noise, reset_noise]`` (0.1) on
every joint position and velocity (the quadruped's orientation quaternion is renormalised).
Episodes are truncated after ``episode_length`` steps (200, the paper's horizon) and terminated if
the state stops being finite; the quadruped also terminates when its torso centre leaves the
height band ``[0.25, 1.0]`` m (it stands at about 0.40 m, and random actions keep it above 0.31
m; lying on its torso or on its back it is at 0.20 m).

Families (the task is what the agent must find out from rewards):

- ``Locomotion.objective == "velocity"``: task = goal velocity; reward ``-|v - goal|``.
- ``"direction"``: task = direction ``d`` in {-1, +1}; reward ``d * v`` (plus a survive bonus).
- ``"forward"``: no goal (reward ``v``); the tasks differ only in physics (dynamics randomization).

Dynamics randomization (any family): ``mass_scale``, ``friction_scale`` and ``damping_scale`` are
``(low, high)`` ranges; each task draws one scale per body (mass and inertia), per geom (all three
friction coefficients) and per degree of freedom (joint damping), uniformly from the range, and the
step applies them to the MJX model. They live in the task params, so ``jax.vmap`` over tasks steps
robots with different physics side by side. ``(1, 1)`` (the default) switches a scale off.

Physics backends (``backend=``): ``"c"``, MuJoCo's own C engine stepped in batches on the host
(``tasks/control/c_engine.py``: one ``mujoco.rollout`` call on a thread pool per environment step of
every row of a ``vmap``), or ``"mjx"``, MuJoCo MJX inside the jitted program. ``"auto"`` (the
default) takes the C engine when JAX runs on the CPU, where it is many times faster than MJX,
and MJX on an accelerator. Both give the same transitions to float32 precision. Choose one in a
learner config through the task id, ``--set task=control/cheetah-dir[backend=mjx]``, or in code
with ``make("control/cheetah-dir", backend="mjx")``.

MuJoCo (and MJX for ``"mjx"``) is imported when a family is constructed, not when ``learn2rl`` is
imported.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.control.base import ControlFamily, check_positive_int, check_range

ASSETS = Path(__file__).resolve().parent / "assets"
RUNNER_XML = ASSETS / "runner.xml"
QUADRUPED_XML = ASSETS / "quadruped.xml"
ENGINE_REQUIREMENT = "mujoco-mjx==3.17.0 and mujoco==3.17.0"


BACKENDS = ("auto", "c", "mjx")


def load_engine(mjx: bool = True):
    """``(mujoco, mujoco.mjx or None)``, imported on first use; a clear error if missing."""
    try:
        # mujoco.mjx prints a line about its optional Warp backend on import; keep stdout clean.
        with contextlib.redirect_stdout(io.StringIO()):
            import mujoco

            if mjx:
                from mujoco import mjx as mjx_module
    except ImportError as error:
        raise Learn2RLError(
            f"the locomotion families need MuJoCo ({error}); install {ENGINE_REQUIREMENT}"
        ) from None
    return mujoco, (mjx_module if mjx else None)


def resolve_backend(backend: str) -> str:
    """``"c"`` or ``"mjx"``: ``"auto"`` is the C engine on the CPU and MJX on an accelerator."""
    if backend not in BACKENDS:
        raise Learn2RLError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "c" if jax.default_backend() == "cpu" else "mjx"
    return backend


_ENGINES: dict = {}


GYMNASIUM_MODEL = "gymnasium:"


def resolve_model(model_file) -> Path:
    """The MJCF path of ``model_file``: a path, or ``"gymnasium:<file>"`` for a model that the
    installed gymnasium package ships (``gymnasium/envs/mujoco/assets``; nothing is downloaded)."""
    text = str(model_file)
    if not text.startswith(GYMNASIUM_MODEL):
        return Path(model_file)
    name = text[len(GYMNASIUM_MODEL) :]
    try:
        import gymnasium
    except ImportError:
        raise Learn2RLError(f"model {text} needs gymnasium (pip install gymnasium)") from None
    path = Path(gymnasium.__file__).resolve().parent / "envs" / "mujoco" / "assets" / name
    if not path.is_file():
        raise Learn2RLError(f"model {text}: the installed gymnasium has no {name}")
    return path


def load_model(mujoco, path: Path):
    """``MjModel.from_xml_path(path)``; the compiler's deprecation note about ``settotalmass``
    (which gymnasium's half-cheetah file uses; harmless in MuJoCo 3.17) is dropped, any other
    warning is passed on as a Python warning."""
    notes: list[str] = []
    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(notes.append)
    try:
        model = mujoco.MjModel.from_xml_path(str(path))
    finally:
        mujoco.set_mju_user_warning(previous)
    for note in notes:
        if "settotalmass" not in note:
            warnings.warn(f"MuJoCo ({path.name}): {note}", stacklevel=3)
    return model


def shared_engine(model_file: Path, frame_skip: int, mj_model):
    """One C engine (model, thread pool) per model file and frame skip, shared by equal families
    (which share compiled functions, and with them the first family's callback). ``mj_model`` is
    that file's model (the engine keeps a copy)."""
    import copy

    from learn2rl.tasks.control.c_engine import CEngine

    key = (str(model_file), int(frame_skip), int(mj_model.opt.cone))
    if key not in _ENGINES:
        _ENGINES[key] = CEngine(copy.copy(mj_model), frame_skip)
    return _ENGINES[key]


def check_scale(name: str, value) -> tuple[float, float]:
    """A ``(low, high)`` pair of positive finite numbers with ``low <= high``."""
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
    ):
        raise Learn2RLError(f"{name} must be a (low, high) pair of positive numbers, got {value!r}")
    return check_range(name, value, positive=True)


def check_non_negative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Learn2RLError(f"{name} must be a non-negative number, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise Learn2RLError(f"{name} must be a finite non-negative number, got {value!r}")
    return float(value)


@struct.dataclass
class LocomotionParams:
    target: jax.Array  # float32 []: goal velocity, direction (+1 / -1), or 0 (forward running)
    mass_scale: jax.Array  # float32 [nbody]: body masses and inertias are multiplied by these
    friction_scale: jax.Array  # float32 [ngeom]: geom friction coefficients
    damping_scale: jax.Array  # float32 [nv]: joint damping


@struct.dataclass
class LocomotionState:
    time: jax.Array
    qpos: jax.Array  # float32 [nq]
    qvel: jax.Array  # float32 [nv]


class Locomotion(ControlFamily):
    """A MuJoCo robot stepped by MJX, with a task-dependent reward on its forward velocity."""

    objective: str = "forward"  # "velocity", "direction" or "forward"
    model_file: Path | str = RUNNER_XML  # a path, or "gymnasium:<file>" (resolve_model)
    elliptic_cones: bool = False  # switch a model's friction cones to elliptic after loading
    observe_from: int = 1  # qpos entries before this one (root x, or x and y) are not observed
    height_band: tuple[float, float] | None = None  # terminate when root z leaves it
    free_root: bool = False  # the root is a free joint (quaternion at qpos[3:7])
    # Built from ``model_file`` alone, so equal families have equal models (see TaskFamily).
    _derived_attributes = ("mj_model", "mjx_model", "_data0", "_engine", "_mjx")

    def __init__(
        self,
        episode_length: int = 200,
        frame_skip: int = 5,
        ctrl_cost: float = 0.05,
        reset_noise: float = 0.1,
        survive_bonus: float = 0.0,
        mass_scale=(1.0, 1.0),
        friction_scale=(1.0, 1.0),
        damping_scale=(1.0, 1.0),
        backend: str = "auto",
    ):
        super().__init__()
        self.backend = resolve_backend(backend)
        self.episode_length = check_positive_int("episode_length", episode_length)
        self.frame_skip = check_positive_int("frame_skip", frame_skip)
        self.ctrl_cost = check_non_negative("ctrl_cost", ctrl_cost)
        self.reset_noise = check_non_negative("reset_noise", reset_noise)
        self.survive_bonus = check_non_negative("survive_bonus", survive_bonus)
        self.mass_range = check_scale("mass_scale", mass_scale)
        self.friction_range = check_scale("friction_scale", friction_scale)
        self.damping_range = check_scale("damping_scale", damping_scale)
        mujoco, mjx = load_engine(mjx=self.backend == "mjx")
        self._mjx = mjx
        self.model_path = resolve_model(self.model_file)
        self.mj_model = load_model(mujoco, self.model_path)
        if self.elliptic_cones:
            self.mj_model.opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        if self.backend == "mjx":
            self.mjx_model = mjx.put_model(self.mj_model)
            self._data0 = mjx.make_data(self.mjx_model)
            self._engine = None
        else:
            self.mjx_model = self._data0 = None
            self._engine = shared_engine(self.model_path, self.frame_skip, self.mj_model)
        self.dt = float(self.mj_model.opt.timestep) * self.frame_skip
        self.nq, self.nv = int(self.mj_model.nq), int(self.mj_model.nv)
        self.action_size = int(self.mj_model.nu)
        self.observation_size = self.nq - self.observe_from + self.nv
        low, high = self.mj_model.actuator_ctrlrange.T
        self.action_low, self.action_high = float(low.min()), float(high.max())
        self._qpos0 = jnp.asarray(self.mj_model.qpos0, jnp.float32)
        self._body_mass = jnp.asarray(self.mj_model.body_mass, jnp.float32)
        self._body_inertia = jnp.asarray(self.mj_model.body_inertia, jnp.float32)
        self._geom_friction = jnp.asarray(self.mj_model.geom_friction, jnp.float32)
        self._dof_damping = jnp.asarray(self.mj_model.dof_damping, jnp.float32)

    # --- the prior over tasks --------------------------------------------------------------
    def sample_target(self, key: jax.Array) -> jax.Array:
        return jnp.float32(0.0)

    @property
    def randomizes(self) -> dict[str, bool]:
        return {
            "mass": self.mass_range != (1.0, 1.0),
            "friction": self.friction_range != (1.0, 1.0),
            "damping": self.damping_range != (1.0, 1.0),
        }

    def sample_params(self, key: jax.Array) -> LocomotionParams:
        k_target, k_mass, k_friction, k_damping = jax.random.split(key, 4)

        def scales(k, shape, bounds):
            return jax.random.uniform(k, shape, jnp.float32, bounds[0], bounds[1])

        m = self.mj_model
        return LocomotionParams(
            target=jnp.asarray(self.sample_target(k_target), jnp.float32),
            mass_scale=scales(k_mass, (m.nbody,), self.mass_range),
            friction_scale=scales(k_friction, (m.ngeom,), self.friction_range),
            damping_scale=scales(k_damping, (m.nv,), self.damping_range),
        )

    def physics(self, params: LocomotionParams):
        """The MJX model of this task (the shared model with the task's scales applied)."""
        on = self.randomizes
        changes = {}
        if on["mass"]:
            changes["body_mass"] = self._body_mass * params.mass_scale
            changes["body_inertia"] = self._body_inertia * params.mass_scale[:, None]
        if on["friction"]:
            changes["geom_friction"] = self._geom_friction * params.friction_scale[:, None]
        if on["damping"]:
            changes["dof_damping"] = self._dof_damping * params.damping_scale
        return self.mjx_model.replace(**changes) if changes else self.mjx_model

    # --- the environment -------------------------------------------------------------------
    def observe(self, qpos: jax.Array, qvel: jax.Array) -> jax.Array:
        return jnp.concatenate([qpos[self.observe_from :], qvel]).astype(jnp.float32)

    def reset_env(self, key: jax.Array, params: LocomotionParams):
        k_pos, k_vel = jax.random.split(key)
        noise = self.reset_noise
        qpos = self._qpos0 + jax.random.uniform(k_pos, (self.nq,), jnp.float32, -noise, noise)
        if self.free_root:
            quat = qpos[3:7]
            qpos = qpos.at[3:7].set(quat / jnp.linalg.norm(quat))
        qvel = jax.random.uniform(k_vel, (self.nv,), jnp.float32, -noise, noise)
        state = LocomotionState(time=jnp.int32(0), qpos=qpos, qvel=qvel)
        return self.observe(qpos, qvel), state

    def simulate(self, qpos, qvel, action, params):
        """``frame_skip`` physics steps from ``(qpos, qvel)`` with ``ctrl = action``; new qpos,
        qvel (the C engine on the host, or MJX)."""
        if self.backend == "c":
            on = self.randomizes
            scales = {
                name: value
                for name, value in (
                    ("mass", params.mass_scale),
                    ("friction", params.friction_scale),
                    ("damping", params.damping_scale),
                )
                if on[name]
            }
            return self._engine.simulate(qpos, qvel, action, scales)
        model = self.physics(params)
        data = self._data0.replace(qpos=qpos, qvel=qvel, ctrl=action)
        data = jax.lax.fori_loop(0, self.frame_skip, lambda _, d: self._mjx.step(model, d), data)
        return data.qpos, data.qvel

    def reward(self, velocity, action, params: LocomotionParams):
        if self.objective == "velocity":
            progress = -jnp.abs(velocity - params.target)
        elif self.objective == "direction":
            progress = params.target * velocity
        else:
            progress = velocity
        return progress - self.ctrl_cost * jnp.sum(action**2) + self.survive_bonus

    def step_env(self, key, state: LocomotionState, action, params: LocomotionParams):
        # A scalar broadcasts to every actuator; a vector of the wrong length is an error.
        action = jnp.broadcast_to(self.clip_action(action), (self.action_size,))
        qpos, qvel = self.simulate(state.qpos, state.qvel, action, params)
        velocity = (qpos[0] - state.qpos[0]) / self.dt
        reward = self.reward(velocity, action, params)
        finite = jnp.all(jnp.isfinite(qpos)) & jnp.all(jnp.isfinite(qvel))
        terminated = jnp.logical_not(finite)
        if self.height_band is not None:
            low, high = self.height_band
            terminated = terminated | (qpos[2] < low) | (qpos[2] > high)
        new_state = LocomotionState(time=state.time + 1, qpos=qpos, qvel=qvel)
        info = {"velocity": velocity}
        return self.observe(qpos, qvel), new_state, reward.astype(jnp.float32), terminated, info


class CheetahVelocity(Locomotion):
    """Runner; task = goal velocity ~ U[low, high] (the paper's [0, 2]); reward -|v - goal|."""

    objective = "velocity"

    def __init__(self, goal_velocity=(0.0, 2.0), **kwargs):
        self.goal_range = check_range("goal_velocity", goal_velocity)
        super().__init__(**kwargs)

    def sample_target(self, key):
        return jax.random.uniform(key, (), jnp.float32, *self.goal_range)


class CheetahDirection(Locomotion):
    """Runner; task = direction +1 (forward) or -1 (backward), probability 1/2 each."""

    objective = "direction"

    def sample_target(self, key):
        return jnp.where(jax.random.bernoulli(key), 1.0, -1.0).astype(jnp.float32)


class CheetahForward(Locomotion):
    """Runner; always run forward (reward v); tasks differ by their physics only."""

    objective = "forward"


class AntDirection(Locomotion):
    """Quadruped; task = direction +1 / -1 along x; survive bonus; falls end the episode."""

    objective = "direction"
    model_file = QUADRUPED_XML
    observe_from = 2
    height_band = (0.25, 1.0)
    free_root = True

    def __init__(self, survive_bonus: float = 0.05, **kwargs):
        super().__init__(survive_bonus=survive_bonus, **kwargs)

    def sample_target(self, key):
        return jnp.where(jax.random.bernoulli(key), 1.0, -1.0).astype(jnp.float32)


class GymHalfCheetahVelocity(CheetahVelocity):
    """gymnasium's half-cheetah model (``half_cheetah.xml``); task = goal velocity."""

    model_file = GYMNASIUM_MODEL + "half_cheetah.xml"


class GymHalfCheetahDirection(CheetahDirection):
    """gymnasium's half-cheetah model; task = direction +1 / -1."""

    model_file = GYMNASIUM_MODEL + "half_cheetah.xml"


class GymAntDirection(AntDirection):
    """gymnasium's ant model (``ant.xml``, RK4); task = direction +1 / -1 along x; Finn et al.'s
    ant-direction terms (control cost 0.005 |a|^2, survive bonus 0.05); ends when the torso
    leaves gymnasium's healthy height band [0.2, 1.0] m."""

    model_file = GYMNASIUM_MODEL + "ant.xml"
    height_band = (0.2, 1.0)
    # gymnasium's file keeps MuJoCo's pyramidal cones, on which MJX and the C engine disagree by
    # up to 0.6 in a velocity per step when the feet touch down; elliptic cones agree to 1e-4.
    elliptic_cones = True

    def __init__(self, ctrl_cost: float = 0.005, **kwargs):
        super().__init__(ctrl_cost=ctrl_cost, **kwargs)


_DYNAMICS = {"mass_scale": (0.5, 1.5), "friction_scale": (0.5, 1.5), "damping_scale": (0.5, 1.5)}

TASKS = [
    (
        "control/cheetah-vel",
        CheetahVelocity,
        "planar runner (MJX), goal velocity ~ U[0, 2], reward -|v - goal| - 0.05|a|^2, 200 steps "
        "(Finn et al. 2017 half-cheetah velocity)",
        {},
    ),
    (
        "control/cheetah-dir",
        CheetahDirection,
        "planar runner (MJX), direction +-1 with prob. 1/2, reward d*v - 0.05|a|^2, 200 steps "
        "(Finn et al. 2017 half-cheetah direction)",
        {},
    ),
    (
        "control/ant-dir",
        AntDirection,
        "quadruped (MJX), direction +-1 along x, reward d*v_x - 0.05|a|^2 + 0.05, ends on a fall, "
        "200 steps (Finn et al. 2017 ant direction)",
        {},
    ),
    (
        "control/gym-halfcheetah-vel",
        GymHalfCheetahVelocity,
        "gymnasium's half-cheetah model, goal velocity ~ U[0, 2], reward -|v - goal| - "
        "0.05|a|^2, 200 steps (Finn et al. 2017 half-cheetah velocity)",
        {},
    ),
    (
        "control/gym-halfcheetah-dir",
        GymHalfCheetahDirection,
        "gymnasium's half-cheetah model, direction +-1 with prob. 1/2, reward d*v - 0.05|a|^2, "
        "200 steps (Finn et al. 2017 half-cheetah direction)",
        {},
    ),
    (
        "control/gym-ant-dir",
        GymAntDirection,
        "gymnasium's ant model, direction +-1 along x, reward d*v_x - 0.005|a|^2 + 0.05, ends "
        "when the torso leaves [0.2, 1.0] m, 200 steps (Finn et al. 2017 ant direction)",
        {},
    ),
    (
        "control/cheetah-dynamics",
        CheetahForward,
        "planar runner (MJX) running forward, reward v - 0.05|a|^2; per-task body masses, "
        "frictions and joint dampings scaled by U[0.5, 1.5], 200 steps",
        _DYNAMICS,
    ),
]
