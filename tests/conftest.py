from learn2rl.devices import use_cpu_cores

# Before JAX starts: one device per core, as the CLI does, so the tests exercise sharded training.
use_cpu_cores()

import pytest  # noqa: E402

from learn2rl.learners.rl2 import Config  # noqa: E402

# A config that compiles and trains in a few seconds: 2-arm bandits, 10 pulls, 6 updates in chunks
# of 2. Tests that need it at import time (module-level runs) import TINY_CONFIG from here.
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


@pytest.fixture
def tiny_config() -> Config:
    return TINY_CONFIG
