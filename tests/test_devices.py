"""The device rule shared by every learner, and the CPU device setup."""

import os
import subprocess
import sys

import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.learners.base import usable_device_count


@pytest.mark.parametrize(
    "batch,available,multiple,expected",
    [
        (256, 2, 1, 2),
        (256, 6, 1, 4),  # a 6-core machine: 256 tasks split over 4 devices
        (256, 3, 1, 2),
        (256, 10, 1, 8),
        (1024, 12, 1, 8),
        (12, 2, 4, 1),  # 6 tasks per device would not split into 4 PPO minibatches
        (16, 2, 4, 2),
        (7, 4, 1, 1),
        (20, 1, 1, 1),
    ],
)
def test_largest_divisor_of_the_batch(batch, available, multiple, expected):
    count = usable_device_count(batch, available, multiple)
    assert count == expected
    assert batch % count == 0 and (batch // count) % multiple == 0


def test_a_batch_that_no_split_fits_is_an_error():
    with pytest.raises(Learn2RLError, match="cannot be split"):
        usable_device_count(10, 2, 4)


def _xla_flags_after_import(flags: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    if flags is not None:
        env["XLA_FLAGS"] = flags
    code = "import os, learn2rl; print(os.environ['XLA_FLAGS'])"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.slow
def test_importing_learn2rl_turns_off_the_scheduler_that_deadlocks_lapack():
    flags = _xla_flags_after_import(None)
    assert "--xla_cpu_enable_concurrency_optimized_scheduler=false" in flags.split()


@pytest.mark.slow
def test_a_users_own_scheduler_setting_is_kept():
    mine = "--xla_cpu_enable_concurrency_optimized_scheduler=true"
    assert _xla_flags_after_import(mine).split() == [mine]


_STEP_256_ANTS = """
import jax, jax.numpy as jnp
from learn2rl.tasks import make
family = make("control/ant-dir[backend=mjx]")
keys = jax.random.split(jax.random.PRNGKey(0), 256)
params = jax.vmap(family.sample_params)(keys)
_, state = jax.vmap(family.reset_env)(keys, params)
step = jax.jit(jax.vmap(family.step_env))
obs = step(keys, state, jnp.zeros((256, family.action_size)), params)[0]
print(bool(jnp.all(jnp.isfinite(obs))))
"""


@pytest.mark.long
def test_256_mjx_ants_step_without_hanging():
    """With XLA's concurrency-optimised scheduler this call never returned (two batched
    Cholesky calls of MJX's solver deadlocked jaxlib's thread pool on a 2-core CPU)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["LEARN2RL_CPU_DEVICES"] = "0"
    done = subprocess.run(
        [sys.executable, "-c", _STEP_256_ANTS],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True"
