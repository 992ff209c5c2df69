"""The locomotion families' physics on MuJoCo's own C engine, called in batches from inside ``jit``.

``Locomotion(backend="c")`` steps its robots with ``mujoco.rollout`` instead of MJX. The family's
JAX code is unchanged (the state is still ``(time, qpos, qvel)`` as float32 arrays, the reward and
termination are still computed in JAX); only ``simulate`` (``frame_skip`` physics steps from a
state with a control) leaves the device:

- ``simulate`` is a ``jax.pure_callback`` with ``vmap_method="broadcast_all"``: under ``vmap``
  (also nested: tasks x episodes) **one** host call receives every row, and ``mujoco.rollout``
  steps them on a persistent thread pool (``nthread``: the CPU's cores by default). The callback
  is pure (a function of its inputs only: no simulator state lives on the host), so checkpoints,
  resumption and re-execution behave exactly as with MJX.
- Each call starts every row from its ``(qpos, qvel)`` with zero warm-start and zero time, like the
  MJX step (which starts each environment step from a fresh ``mjx.Data``), and runs
  ``frame_skip`` steps with the row's control held fixed.
- Dynamics randomization: rows with different physics get their own ``MjModel`` copy (a pool of
  ``nbatch`` copies, grown on demand, whose masses, inertias, frictions and dampings are rewritten
  only where a row's scales changed since the last call).
- The C engine computes in float64; states cross the boundary as float32 (as the family stores
  them), so C and MJX agree to float32 precision on a step (``tests/test_control_locomotion.py``).
- No gradient flows through the physics (the inputs pass ``stop_gradient``); the gradient-based
  learners differentiate log-probabilities of collected actions, never the simulator.

Throughput on the 2-core CPU: ``python benchmarks/throughput.py --families`` (docs/results/
throughput.md) gives the C and MJX rows side by side.
"""

from __future__ import annotations

import os
import threading

import jax
import jax.numpy as jnp
import numpy as np


def default_threads() -> int:
    """Threads of the rollout pool: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class CEngine:
    """A batch stepper for one MJCF model: ``step(qpos, qvel, ctrl, scales)`` on the host."""

    def __init__(self, mj_model, frame_skip: int, nthread: int | None = None):
        import mujoco
        from mujoco import rollout

        self.model = mj_model
        self.frame_skip = int(frame_skip)
        self.nthread = default_threads() if nthread is None else int(nthread)
        self.nq, self.nv, self.nu = int(mj_model.nq), int(mj_model.nv), int(mj_model.nu)
        spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self._nstate = int(mujoco.mj_stateSize(mj_model, spec))
        self._state0 = np.zeros(self._nstate, np.float64)
        mujoco.mj_getState(mj_model, mujoco.MjData(mj_model), self._state0, spec)
        self._state0[0] = 0.0  # time
        self._rollout = rollout.Rollout(nthread=self.nthread if self.nthread > 1 else 0)
        self._datas = [mujoco.MjData(mj_model) for _ in range(max(1, self.nthread))]
        self._base = {
            "mass": np.array(mj_model.body_mass),
            "inertia": np.array(mj_model.body_inertia),
            "friction": np.array(mj_model.geom_friction),
            "damping": np.array(mj_model.dof_damping),
        }
        self._models: list = []  # per-row copies for randomized physics
        self._scales: dict[str, np.ndarray] = {}  # the scales each copy holds now
        self._lock = threading.Lock()
        self.calls = 0
        self.rows = 0

    def close(self) -> None:
        self._rollout.close()

    # --- host side ------------------------------------------------------------------------
    def _row_models(self, n: int, mass, friction, damping) -> list:
        """``n`` models, row ``i`` with row ``i``'s scales (copies rewritten only on change)."""
        import copy

        missing = n - len(self._models)
        if missing > 0:  # new copies hold the file's physics: scale 1 everywhere
            self._models += [copy.copy(self.model) for _ in range(missing)]
            for name, size in (("mass", self.model.nbody), ("friction", self.model.ngeom),
                               ("damping", self.model.nv)):  # fmt: skip
                held = self._scales.get(name, np.ones((0, size)))
                self._scales[name] = np.concatenate([held, np.ones((missing, size))])
        base = self._base
        for name, new in (("mass", mass), ("friction", friction), ("damping", damping)):
            if new is None:
                continue
            held = self._scales[name]
            for i in np.flatnonzero(np.any(held[:n] != new, axis=1)):
                m = self._models[i]
                if name == "mass":
                    m.body_mass[:] = base["mass"] * new[i]
                    m.body_inertia[:] = base["inertia"] * new[i][:, None]
                elif name == "friction":
                    m.geom_friction[:] = base["friction"] * new[i][:, None]
                else:
                    m.dof_damping[:] = base["damping"] * new[i]
                held[i] = new[i]
        return self._models[:n]

    def step(self, qpos, qvel, ctrl, mass=None, friction=None, damping=None):
        """``frame_skip`` physics steps of every row (any leading batch shape): new (qpos, qvel)
        as float32 with the input's shape."""
        qpos, qvel, ctrl = np.asarray(qpos), np.asarray(qvel), np.asarray(ctrl)
        batch = qpos.shape[:-1]
        n = int(np.prod(batch, dtype=np.int64))
        state = np.empty((n, self._nstate), np.float64)
        state[:] = self._state0
        state[:, 1 : 1 + self.nq] = qpos.reshape(n, self.nq)
        state[:, 1 + self.nq : 1 + self.nq + self.nv] = qvel.reshape(n, self.nv)
        control = np.repeat(np.asarray(ctrl, np.float64).reshape(n, 1, self.nu), self.frame_skip, 1)
        scales = [None if s is None else np.asarray(s, np.float64).reshape(n, -1)
                  for s in (mass, friction, damping)]  # fmt: skip
        with self._lock:
            self.calls += 1
            self.rows += n
            randomized = any(s is not None for s in scales)
            models = self._row_models(n, *scales) if randomized else [self.model] * n
            out = np.empty((n, self.frame_skip, self._nstate), np.float64)
            sensors = np.empty((n, self.frame_skip, self.model.nsensordata), np.float64)
            self._rollout.rollout(
                models, self._datas, state, control, nstep=self.frame_skip, skip_checks=True,
                state=out, sensordata=sensors,
            )  # fmt: skip
        last = out[:, -1]
        new_qpos = last[:, 1 : 1 + self.nq].astype(np.float32).reshape(*batch, self.nq)
        new_qvel = last[:, 1 + self.nq : 1 + self.nq + self.nv].astype(np.float32)
        return new_qpos, new_qvel.reshape(*batch, self.nv)

    # --- JAX side -------------------------------------------------------------------------
    def simulate(self, qpos, qvel, action, scales: dict[str, jax.Array]):
        """The jittable step: one ``pure_callback`` for every row of any ``vmap`` around it.
        ``scales`` holds only the randomized physics scales (``mass``, ``friction``,
        ``damping``)."""
        names = tuple(sorted(scales))
        args = jax.lax.stop_gradient(
            (jnp.asarray(qpos, jnp.float32), jnp.asarray(qvel, jnp.float32),
             jnp.asarray(action, jnp.float32), *(scales[k] for k in names))
        )  # fmt: skip

        def host(qpos, qvel, ctrl, *rest):
            return self.step(qpos, qvel, ctrl, **dict(zip(names, rest, strict=True)))

        shapes = (
            jax.ShapeDtypeStruct(args[0].shape, jnp.float32),
            jax.ShapeDtypeStruct(args[1].shape, jnp.float32),
        )
        return jax.pure_callback(host, shapes, *args, vmap_method="broadcast_all")
