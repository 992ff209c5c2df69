"""Device setup: on a CPU, expose each core as a JAX device so training can shard tasks across them.

XLA's CPU backend runs one computation on a shared thread pool; for the small recurrent matmuls of
meta-RL, two single-stream devices (one per core) measured about 1.3x faster than one device using
both cores (benchmarks/throughput.py). The setting must be made before JAX initializes its
backends; on a machine with an accelerator it changes nothing (the accelerator stays the default
device). Which of these devices a learner actually uses is the device rule of
``learn2rl.learners.base``: the largest count that divides its batch.
"""

from __future__ import annotations

import importlib.util
import os
import sys

_FLAG = "--xla_force_host_platform_device_count"
_SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
_told: set[str] = set()


def cpu_core_count() -> int:
    """Cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def use_cpu_cores(count: int | None = None) -> bool:
    """Ask JAX for ``count`` (default: all usable cores) CPU devices. Returns False if too late.

    Does nothing (returns False) when ``LEARN2RL_CPU_DEVICES=0``; ``LEARN2RL_CPU_DEVICES=N`` asks
    for N. A device count already forced through ``XLA_FLAGS`` is left as it is.
    """
    setting = os.environ.get("LEARN2RL_CPU_DEVICES", "").strip()
    if setting.isdigit():
        if int(setting) == 0:
            return False
        count = int(setting)
    if _FLAG in os.environ.get("XLA_FLAGS", ""):
        return True
    import jax  # importing jax does not start its backends; the first computation does

    try:
        jax.config.update("jax_num_cpu_devices", count or cpu_core_count())
    except RuntimeError:  # JAX already started (something ran a computation before us)
        return False
    return True


def avoid_cpu_lapack_deadlock() -> None:
    """Turn off XLA's concurrency-optimised CPU scheduler (``XLA_FLAGS``), unless the user set it.

    With that scheduler XLA's CPU runtime runs independent operations at once on its intra-op
    thread pool. When two of them are batched LAPACK calls big enough for jaxlib to split them
    over the same pool (``ParallelBatchMap``, e.g. the Cholesky factorisations of MJX's Newton
    solver with 256 ants in a batch), each pool thread waits for pieces of its own call that are
    queued behind the other: the process hangs with no CPU use (seen with jax/jaxlib 0.10.2 on 2
    cores: stacks in docs/tasks/control.md). Without it the operations run in order; it must be
    set before JAX starts its backends, like the device count.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if _SCHEDULER_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {_SCHEDULER_FLAG}=false".strip()


def tell_once(message: str) -> None:
    """Print a one-line notice on stderr, once per process."""
    if message not in _told:
        _told.add(message)
        print(f"learn2rl: {message}", file=sys.stderr, flush=True)


def describe_backend(used: int | None = None) -> str:
    """``"cpu, 2 devices"``: the backend training runs on and how many of its devices it uses.

    Warns once when a GPU build of jaxlib is installed but JAX found no GPU (a driver or CUDA
    problem that would otherwise leave a GPU user silently training on the CPU).
    """
    import jax

    backend = jax.default_backend()
    total = jax.device_count()
    if backend == "cpu" and _gpu_plugin_installed():
        tell_once(
            "a CUDA build of jax is installed but JAX found no GPU, so training runs on the CPU "
            "(check the NVIDIA driver with `nvidia-smi` and `python -c 'import jax; "
            "print(jax.devices())'`)"
        )
    used = total if used is None else used
    kind = jax.devices()[0].device_kind
    name = backend if kind.lower() == backend else f"{backend} ({kind})"
    if used == total:
        return f"{name}, {total} device{'s' if total > 1 else ''}"
    return f"{name}, {used} of {total} devices"


def _gpu_plugin_installed() -> bool:
    return any(
        importlib.util.find_spec(name) is not None
        for name in ("jax_cuda13_plugin", "jax_cuda12_plugin")
    )
