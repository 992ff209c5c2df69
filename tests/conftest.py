import os
from pathlib import Path

# Many tests compile the same small programs (the tiny RL^2 config, in this process and in the
# CLI subprocesses, which inherit the variables): JAX's persistent compilation cache compiles each
# once per run. It lives in .pytest_cache (git-ignored), one directory per xdist worker, so two
# processes never write the same cache at once.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
_CACHE = Path(__file__).resolve().parents[1] / ".pytest_cache" / f"jax-compilation-{_WORKER}"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")

from learn2rl.devices import use_cpu_cores  # noqa: E402

# Before JAX starts: one device per core, as the CLI does, so the tests exercise sharded training.
use_cpu_cores()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from learn2rl.learners.rl2 import Config  # noqa: E402

# A config that compiles and trains in a few seconds: 2-arm bandits, 10 pulls, 6 updates in chunks
# of 2. Tests that need it at import time (module-level runs) import TINY_CONFIG from here.
# The tiny MetaGenRL population of the tests that only need "a trained population" (one
# environment: each environment shape is one more group in the slow-to-compile chunk), two agents,
# two updates in one chunk.
TINY_METAGENRL = dict(
    envs=("Pendulum-v1",),
    num_agents=2,
    num_updates=2,
    updates_per_chunk=2,
    hidden_sizes=(8,),
    batch_size=4,
    sequence_length=4,
    steps_per_update=20,
    random_steps=10,
    update_after=10,
    buffer_size=500,
    objective_units=4,
    objective_lstm_units=4,
    eval_episodes=1,
)

TINY_CONFIG = Config(
    task="bandit/independent-2arm",
    num_episodes=10,
    hidden_size=8,
    num_tasks=8,
    num_updates=6,
    updates_per_chunk=2,
    learning_rate=1e-2,
    final_learning_rate=1e-3,
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """A long check is a slow test too, so `-m "not slow"` leaves it out whatever the default."""
    for item in items:
        if item.get_closest_marker("long"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def tiny_config() -> Config:
    return TINY_CONFIG


def relative_distance(a, b) -> float:
    """``|a - b| / |b|`` over all leaves of two pytrees (global Euclidean norms)."""
    pairs = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    diff, norm = 0.0, 0.0
    for x, y in pairs:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        diff, norm = diff + np.sum((x - y) ** 2), norm + np.sum(y**2)
    return float(np.sqrt(diff / norm))
