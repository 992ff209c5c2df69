"""Plain C MuJoCo (``mujoco.mj_step``, float64) reference of the locomotion families' step.

Independent of MJX and of learn2rl's step code: it loads the same MJCF file, applies the task's
physics scales to a copy of the ``MjModel``, runs ``frame_skip`` calls of ``mj_step`` and computes
the observation, reward and termination with numpy from the written-out rules of
``learn2rl/tasks/control/locomotion.py``'s docstring.
"""

from __future__ import annotations

import mujoco
import numpy as np


def task_model(
    xml_path, mass_scale=None, friction_scale=None, damping_scale=None, elliptic_cones=False
):
    """An ``MjModel`` of the file with per-body / per-geom / per-dof scales applied (and its
    friction cones made elliptic if asked)."""
    model = mujoco.MjModel.from_xml_path(str(xml_path))
    if elliptic_cones:
        model.opt.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    if mass_scale is not None:
        model.body_mass[:] = model.body_mass * mass_scale
        model.body_inertia[:] = model.body_inertia * np.asarray(mass_scale)[:, None]
    if friction_scale is not None:
        model.geom_friction[:] = model.geom_friction * np.asarray(friction_scale)[:, None]
    if damping_scale is not None:
        model.dof_damping[:] = model.dof_damping * damping_scale
    return model


def step(
    model,
    qpos,
    qvel,
    action,
    *,
    objective: str,
    target: float,
    frame_skip: int = 5,
    observe_from: int = 1,
    ctrl_cost: float = 0.05,
    survive_bonus: float = 0.0,
    height_band=None,
):
    """One environment step from ``(qpos, qvel)``: ``(obs, reward, terminated, qpos, qvel)``."""
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    data.qvel[:] = qvel
    low, high = model.actuator_ctrlrange.T
    action = np.clip(np.asarray(action, np.float64), low, high)
    data.ctrl[:] = action
    for _ in range(frame_skip):
        mujoco.mj_step(model, data)
    velocity = (data.qpos[0] - qpos[0]) / (model.opt.timestep * frame_skip)
    if objective == "velocity":
        progress = -abs(velocity - target)
    elif objective == "direction":
        progress = target * velocity
    else:
        progress = velocity
    reward = progress - ctrl_cost * float(np.sum(action**2)) + survive_bonus
    terminated = not (np.all(np.isfinite(data.qpos)) and np.all(np.isfinite(data.qvel)))
    if height_band is not None:
        terminated = terminated or not (height_band[0] <= data.qpos[2] <= height_band[1])
    obs = np.concatenate([data.qpos[observe_from:], data.qvel])
    return obs, reward, terminated, data.qpos.copy(), data.qvel.copy()
