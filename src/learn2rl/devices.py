"""Device setup: on a CPU, expose each core as a JAX device so training can shard tasks across them.

XLA's CPU backend runs one computation on a shared thread pool; for the small recurrent matmuls of
meta-RL, two single-stream devices (one per core) measured about 1.3x faster than one device using
both cores (benchmarks/throughput.py). The flag must be set before JAX initializes its backends; on
a machine with an accelerator it changes nothing (the accelerator stays the default device).
"""

from __future__ import annotations

import os

_FLAG = "--xla_force_host_platform_device_count"


def use_cpu_cores(count: int | None = None) -> bool:
    """Ask XLA for ``count`` (default: all usable cores) host devices. Returns False if too late.

    Does nothing (returns False) when ``LEARN2RL_CPU_DEVICES=0``; ``LEARN2RL_CPU_DEVICES=N`` asks
    for N.
    """
    setting = os.environ.get("LEARN2RL_CPU_DEVICES", "").strip()
    if setting.isdigit():
        if int(setting) == 0:
            return False
        count = int(setting)
    import jax  # noqa: F401  (importing does not initialize backends)
    from jax._src import xla_bridge

    if xla_bridge.backends_are_initialized():
        return False
    flags = os.environ.get("XLA_FLAGS", "")
    if _FLAG in flags:
        return True
    if count is None:
        count = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1)
        )
    os.environ["XLA_FLAGS"] = f"{flags} {_FLAG}={count}".strip()
    return True
