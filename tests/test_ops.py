import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.ops import (
    categorical_entropy,
    discounted_returns,
    generalized_advantage_estimation,
    ppo_clip_objective,
)
from tests.reference import numpy_reference as ref

JIT = [pytest.param(True, id="jit"), pytest.param(False, id="nojit")]


def _maybe_jit(fn, jit):
    return jax.jit(fn, static_argnums=()) if jit else fn


@pytest.mark.parametrize("jit", JIT)
@pytest.mark.slow
def test_discounted_returns_match_reference(jit):
    rng = np.random.default_rng(0)
    r, d = rng.normal(size=37).astype(np.float32), rng.uniform(size=37).astype(np.float32)
    d[10] = 0.0
    with jax.disable_jit(not jit):
        got = discounted_returns(jnp.array(r), jnp.array(d), jnp.float32(1.5))
    np.testing.assert_allclose(got, ref.discounted_returns(r, d, 1.5), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("jit", JIT)
@pytest.mark.parametrize("lam", [0.0, 0.3, 0.95, 1.0])
def test_gae_matches_reference(jit, lam):
    rng = np.random.default_rng(1)
    r, v = rng.normal(size=50).astype(np.float32), rng.normal(size=50).astype(np.float32)
    d = (0.9 * (rng.uniform(size=50) > 0.1)).astype(np.float32)
    with jax.disable_jit(not jit):
        got = generalized_advantage_estimation(
            jnp.array(r), jnp.array(d), jnp.array(v), jnp.float32(0.7), lam
        )
    np.testing.assert_allclose(got, ref.gae(r, d, v, 0.7, lam), rtol=1e-4, atol=1e-4)


def test_gae_with_lambda_one_is_return_minus_value():
    rng = np.random.default_rng(2)
    r, v = rng.normal(size=20).astype(np.float32), rng.normal(size=20).astype(np.float32)
    d = np.full(20, 0.9, np.float32)
    adv = generalized_advantage_estimation(r, d, v, jnp.float32(0.0), 1.0)
    np.testing.assert_allclose(adv, ref.discounted_returns(r, d, 0.0) - v, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("jit", JIT)
def test_ppo_clip_and_entropy_match_reference(jit):
    rng = np.random.default_rng(3)
    lr, adv = rng.normal(size=30).astype(np.float32) * 0.5, rng.normal(size=30).astype(np.float32)
    with jax.disable_jit(not jit):
        got = ppo_clip_objective(jnp.array(lr), jnp.array(adv), 0.2)
        ent = categorical_entropy(jnp.array([[0.0, 0.0], [10.0, -10.0]]))
    np.testing.assert_allclose(got, ref.ppo_clip(lr, adv, 0.2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ent, [np.log(2), 0.0], atol=1e-5)
