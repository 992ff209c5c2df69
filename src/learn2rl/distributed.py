"""Several processes, one run: JAX's multi-controller runtime (``jax.distributed``).

Each process runs the same ``learn2rl train`` command with its own ``--process-id``; process 0
also hosts the coordinator at ``--coordinator HOST:PORT``. After ``initialize``, ``jax.devices()``
lists the devices of every process, so a learner's mesh (``learners.base.ShardedChunks``) spans
all hosts and its task batch is split over all of them; collectives between processes go through
gloo on CPUs (JAX's default CPU collectives) and NCCL on GPUs. Process 0 writes the checkpoints,
metrics and plots; every process restores a checkpoint from the run directory, which must
therefore be on a filesystem all hosts share (the same path on one machine).

**Losing a process.** JAX's coordination service notices a dead process only after its heartbeat
timeout and then aborts the others with a C++ stack trace. learn2rl watches its peers itself,
through the coordinator's key-value store: every process bumps its own counter once a second and
reads the others'. A peer whose counter has not moved for ``peer_timeout`` seconds, a peer that
reported a failure, or an unreachable coordinator ends this process within about
``peer_timeout`` seconds with one line on stderr and exit status 3; the run continues from its
last checkpoint when all processes are started again with ``--resume``. JAX's own heartbeat
timeout is set well above ``peer_timeout`` so that the clear message comes first.

The key-value store is reached through ``jax._src.distributed.global_state.client``: JAX has no
public handle on it (its public fault-tolerance API, ``live_devices``, needs a recoverable
coordination service, which the CPU backend does not start with in jax 0.10).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import threading
import time
from typing import Any

import numpy as np

from learn2rl.errors import Learn2RLError

ENV_COORDINATOR = "LEARN2RL_COORDINATOR"
ENV_NUM_PROCESSES = "LEARN2RL_NUM_PROCESSES"
ENV_PROCESS_ID = "LEARN2RL_PROCESS_ID"
ENV_PEER_TIMEOUT = "LEARN2RL_PEER_TIMEOUT"
DEFAULT_PEER_TIMEOUT = 30.0
# Exit status of a process that stopped because a peer was lost (2 is bad input, 130 an abort).
LOST_PEER_STATUS = 3
_PREFIX = "learn2rl/peers"
_INTERVAL = 1.0


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Where this process sits: ``num_processes`` processes, this one ``process_id``."""

    coordinator: str
    num_processes: int
    process_id: int


def parse(
    coordinator: str | None, num_processes: int | None, process_id: int | None
) -> Cluster | None:
    """The cluster the options describe, or None for a single-process run; one-line errors for
    inconsistent settings (a missing option, an id out of range, a malformed address)."""
    given = {
        "--coordinator": coordinator,
        "--num-processes": num_processes,
        "--process-id": process_id,
    }
    if all(v is None for v in given.values()):
        return None
    if num_processes is not None and num_processes < 1:
        raise Learn2RLError(f"--num-processes must be at least 1, got {num_processes}")
    if num_processes == 1 and coordinator is None and process_id in (None, 0):
        return None
    missing = [name for name, v in given.items() if v is None]
    if missing:
        raise Learn2RLError(
            f"a multi-process run needs {', '.join(missing)} as well (or the environment "
            f"variables {ENV_COORDINATOR}, {ENV_NUM_PROCESSES}, {ENV_PROCESS_ID})"
        )
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Learn2RLError(f"--coordinator takes HOST:PORT, got {coordinator!r}")
    if not 0 <= process_id < num_processes:
        raise Learn2RLError(
            f"--process-id must be in 0..{num_processes - 1} for {num_processes} processes, "
            f"got {process_id}"
        )
    return Cluster(coordinator, num_processes, process_id)


_watchdog: _Watchdog | None = None
_joined: Cluster | None = None
_early_error: str | None = None
_OPTIONS = ("--coordinator", "--num-processes", "--process-id", "--peer-timeout")


def _option_values(argv: list[str]) -> dict[str, str]:
    """``{"--coordinator": "h:p", ...}`` as given on a command line (``--x v`` or ``--x=v``)."""
    found = {}
    for i, arg in enumerate(argv):
        for name in _OPTIONS:
            if arg == name and i + 1 < len(argv):
                found[name] = argv[i + 1]
            elif arg.startswith(name + "="):
                found[name] = arg.split("=", 1)[1]
    return found


def _int(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise Learn2RLError(f"{name} takes a whole number, got {value!r}") from None


def initialize_early(argv: list[str] | None = None, environ=None) -> None:
    """Join the cluster named by the ``learn2rl`` command line or the ``LEARN2RL_*`` variables.

    Called by ``import learn2rl``, because JAX must join a cluster before it starts its backends
    and importing gymnax starts them. The command line counts only when the program is the
    ``learn2rl`` command (``learn2rl train --coordinator ...``); the environment variables
    (``LEARN2RL_COORDINATOR``, ``LEARN2RL_NUM_PROCESSES``, ``LEARN2RL_PROCESS_ID``,
    ``LEARN2RL_PEER_TIMEOUT``) count for any program that imports learn2rl. Nothing is raised
    here: a bad setting is reported by the command (``join``) as a one-line error.
    """
    global _joined, _early_error
    argv = list(sys.argv if argv is None else argv)
    environ = os.environ if environ is None else environ
    given = {
        "--coordinator": environ.get(ENV_COORDINATOR),
        "--num-processes": environ.get(ENV_NUM_PROCESSES),
        "--process-id": environ.get(ENV_PROCESS_ID),
        "--peer-timeout": environ.get(ENV_PEER_TIMEOUT),
    }
    program = os.path.normpath(argv[0]) if argv else ""
    # `python -m learn2rl ...` imports the package while argv[0] is still "-m".
    as_module = program == "-m" and "learn2rl" in getattr(sys, "orig_argv", [])[:4]
    if (
        as_module
        or os.path.basename(program) == "learn2rl"
        or program.endswith(os.path.join("learn2rl", "__main__.py"))
    ):
        given.update(_option_values(argv[1:]))
    try:
        cluster = parse(
            given["--coordinator"],
            _int(given["--num-processes"], "--num-processes"),
            _int(given["--process-id"], "--process-id"),
        )
        timeout = given["--peer-timeout"]
        peer_timeout = DEFAULT_PEER_TIMEOUT if timeout is None else float(timeout)
        if cluster is not None:
            _initialize_jax(cluster, peer_timeout)
            _joined = cluster
    except (Learn2RLError, ValueError) as err:
        _early_error = str(err)


def join(cluster: Cluster | None, peer_timeout: float = DEFAULT_PEER_TIMEOUT) -> None:
    """Take part in ``cluster`` (None: a single-process run) and watch the other processes.

    The cluster must be the one ``initialize_early`` joined (the command's own options, read
    before JAX started); anything else is a one-line ``Learn2RLError``.
    """
    global _watchdog
    if peer_timeout <= 0:
        raise Learn2RLError(f"--peer-timeout must be positive, got {peer_timeout}")
    if cluster is None:
        return
    if _joined != cluster:
        if _early_error is not None:
            raise Learn2RLError(_early_error)
        raise Learn2RLError(
            "a multi-process run must be named before JAX starts: pass --coordinator, "
            "--num-processes and --process-id to the learn2rl command itself, or set "
            f"{ENV_COORDINATOR}, {ENV_NUM_PROCESSES} and {ENV_PROCESS_ID} before importing "
            "learn2rl"
        )
    if _watchdog is None:
        _watchdog = _Watchdog(cluster, peer_timeout)
        _watchdog.start()


def _initialize_jax(cluster: Cluster, peer_timeout: float) -> None:
    if peer_timeout <= 0:
        raise Learn2RLError(f"--peer-timeout must be positive, got {peer_timeout}")
    import jax

    try:
        jax.distributed.initialize(
            coordinator_address=cluster.coordinator,
            num_processes=cluster.num_processes,
            process_id=cluster.process_id,
            initialization_timeout=int(max(peer_timeout, 60)),
            heartbeat_timeout_seconds=int(3 * peer_timeout + 30),
        )
    except RuntimeError as err:
        if "must be called before" in str(err):
            raise Learn2RLError(
                "jax.distributed must be initialised before JAX computes anything; start the "
                "multi-process run in a fresh process"
            ) from None
        raise Learn2RLError(
            f"process {cluster.process_id} of {cluster.num_processes} could not join the "
            f"coordinator at {cluster.coordinator}: {_line(err)}"
        ) from None


def finish(ok: bool, status: int = 0) -> None:
    """Tell the peers this process is done (``ok``) or failed, and stop watching them.

    A failed process of a multi-process run then exits at once with ``status``: JAX's orderly
    shutdown would wait at a barrier for peers that are themselves stopping."""
    if _watchdog is None:
        return
    _watchdog.stop(ok)
    if not ok:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status or 1)


def is_multiprocess() -> bool:
    """True in a process that joined a multi-process run."""
    return _joined is not None


def lost_peer(err: BaseException) -> str | None:
    """The one-line message for an error that says another process went away, else None."""
    text = str(err)
    # JaxRuntimeError from a computation; a ValueError when the failed collective was JAX's own
    # cross-process check inside device_put. Either way the text names the collective library.
    collective = ("Gloo" in text or "NCCL" in text) and "failed" in text
    if not collective:
        return None
    # "UNKNOWN: Gloo all-reduce failed: [.../pair.cc:538] Read error [127.0.0.1]:17296:
    # Connection reset by peer": keep what failed and the system's reason.
    reason = text.rsplit(": ", 1)[-1].strip() if ": " in text else text
    reason = re.sub(r"\[[^\]]*\.cc:\d+\]\s*", "", reason)  # the C++ source position
    return _stopping_line(f"another process left the run ({reason.splitlines()[0][:120]})")


def _stopping_line(why: str) -> str:
    c = _joined
    who = f"process {c.process_id} of {c.num_processes}" if c is not None else "this process"
    return (
        f"{who} stops: {why}; start every process again with --resume to continue from the "
        "last checkpoint"
    )


def process_index() -> int:
    import jax

    return jax.process_index()


def process_count() -> int:
    import jax

    return jax.process_count()


def is_primary() -> bool:
    """True in the process that writes checkpoints, logs and reports (process 0)."""
    return process_index() == 0


def to_host(tree: Any) -> Any:
    """``jax.device_get(tree)``, also for arrays sharded over several processes (a population
    split over hosts): those are gathered whole into every process
    (``multihost_utils.process_allgather``). A collective when any array spans processes: every
    process must call it at the same point."""
    import jax

    def whole(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
        return jax.device_get(leaf)

    return jax.tree.map(whole, tree)


def barrier(name: str) -> None:
    """Wait until every process got here (nothing in a single-process run)."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"learn2rl:{name}")


class _Watchdog(threading.Thread):
    """Bumps this process's counter and checks the peers' (see the module docstring)."""

    def __init__(self, cluster: Cluster, peer_timeout: float):
        super().__init__(name="learn2rl-peers", daemon=True)
        from jax._src.distributed import global_state

        self.client = global_state.client
        if self.client is None:
            raise Learn2RLError("jax.distributed has no client after initialisation")
        self.cluster = cluster
        self.peer_timeout = peer_timeout
        self._stopped = threading.Event()

    def _key(self, process: int) -> str:
        return f"{_PREFIX}/{process}"

    def stop(self, ok: bool) -> None:
        self._stopped.set()
        try:
            self.client.key_value_set(
                self._key(self.cluster.process_id), "done" if ok else "failed", True
            )
        except Exception:  # the coordinator is gone: there is no one left to tell
            pass

    def run(self) -> None:
        me = self.cluster.process_id
        count = 0
        seen: dict[int, tuple[str, float]] = {}
        while not self._stopped.wait(_INTERVAL):
            now = time.monotonic()
            try:
                count += 1
                self.client.key_value_set(self._key(me), str(count), True)
                values = dict(self.client.key_value_dir_get(_PREFIX + "/"))
            except Exception as err:
                if self._stopped.is_set():
                    return
                where = self.cluster.coordinator
                self._lost(f"lost the coordinator (process 0 at {where}): {_line(err)}")
                return
            for peer in range(self.cluster.num_processes):
                if peer == me:
                    continue
                value = values.get(self._key(peer))
                if value == "failed":
                    self._lost(f"process {peer} failed (its own output says why)")
                    return
                if value == "done":
                    continue
                last = seen.get(peer)
                if last is None or last[0] != value:
                    seen[peer] = (value, now)
                elif now - last[1] > self.peer_timeout and value is not None:
                    self._lost(f"process {peer} stopped responding for {self.peer_timeout:g} s")
                    return
                elif value is None and now - last[1] > max(self.peer_timeout, 60.0):
                    self._lost(f"process {peer} never reported to the coordinator")
                    return

    def _lost(self, why: str) -> None:
        if self._stopped.is_set():
            return
        print(f"error: {_stopping_line(why)}", file=sys.stderr, flush=True)
        os._exit(LOST_PEER_STATUS)


def _line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200] or type(err).__name__
