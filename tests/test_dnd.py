"""The differentiable neural dictionary (ops/dnd.py): kernel weights, k-NN against a numpy brute
force, exact-match writes (NEC's blend, MFEC's max), appends and LRU eviction, deterministic
batch writes, gradients to the query and the stored keys and values (finite differences in
float64), and use under jit and vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.ops import dnd

# Compiled once per shape: eager JAX dispatches every small op separately.
write = jax.jit(dnd.write, static_argnames=("rule",))
lookup = jax.jit(dnd.lookup, static_argnames=("num_neighbours", "kernel"))
write_batch = jax.jit(dnd.write_batch, static_argnames=("rule",))


def filled_dnd(keys, values, capacity=None):
    keys = jnp.asarray(keys)
    memory = dnd.init(capacity or keys.shape[0], keys.shape[1], keys.dtype)
    return write_batch(memory, keys, jnp.asarray(values, keys.dtype))


@pytest.mark.slow
def test_weights_are_the_normalised_inverse_distance_kernel_and_sum_to_one():
    rng = np.random.default_rng(0)
    keys = rng.normal(size=(20, 4)).astype(np.float32)
    memory = filled_dnd(keys, rng.normal(size=20), capacity=32)
    query = jnp.asarray(rng.normal(size=4), jnp.float32)
    out = lookup(memory, query, 5, delta=1e-3)
    np.testing.assert_allclose(float(jnp.sum(out.weights)), 1.0, rtol=1e-6)
    d = np.sum((keys[np.asarray(out.indices)] - np.asarray(query)) ** 2, -1)
    k = 1.0 / (d + 1e-3)
    np.testing.assert_allclose(out.weights, k / k.sum(), rtol=1e-5)
    np.testing.assert_allclose(
        out.value, np.sum(k / k.sum() * memory.values[out.indices]), rtol=1e-5
    )
    mean = lookup(memory, query, 5, kernel="mean")
    np.testing.assert_allclose(mean.weights, np.full(5, 0.2), rtol=1e-6)


@pytest.mark.slow
def test_a_partly_filled_dictionary_ignores_empty_slots_and_an_empty_one_returns_zero():
    memory = filled_dnd(np.eye(3, dtype=np.float32), [1.0, 2.0, 3.0], capacity=10)
    out = lookup(memory, jnp.zeros(3), 5)
    assert list(np.asarray(out.valid)) == [True, True, True, False, False]
    np.testing.assert_allclose(out.weights[3:], 0.0)
    np.testing.assert_allclose(float(out.value), 2.0, rtol=1e-6)  # equidistant: the mean
    empty = dnd.lookup(dnd.init(10, 3), jnp.zeros(3), 5)
    assert float(empty.value) == 0.0 and not bool(jnp.any(empty.valid))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.slow
def test_nearest_neighbours_equal_a_numpy_brute_force(seed):
    rng = np.random.default_rng(seed)
    capacity, size, p = 200, 150, 11
    keys = rng.normal(size=(size, 8)).astype(np.float32)
    memory = filled_dnd(keys, rng.normal(size=size), capacity=capacity)
    queries = rng.normal(size=(16, 8)).astype(np.float32)
    one_by_one = jax.jit(jax.vmap(lambda q: dnd.nearest(memory, q, p)))(jnp.asarray(queries))
    batched = jax.jit(lambda q: dnd.nearest_batch(memory, q, p))(jnp.asarray(queries))
    for indices, valid in (one_by_one, batched):
        for q, got in zip(queries, np.asarray(indices), strict=True):
            expected = np.argsort(np.sum((keys - q) ** 2, -1), kind="stable")[:p]
            np.testing.assert_array_equal(got, expected)
        assert bool(jnp.all(valid))
    single = jax.vmap(lambda q: dnd.lookup(memory, q, p))(jnp.asarray(queries))
    np.testing.assert_allclose(
        dnd.lookup_batch(memory, jnp.asarray(queries), p).value, single.value, rtol=1e-5
    )


@pytest.mark.slow
def test_an_exact_key_match_is_updated_in_place_by_the_blend_or_max_rule():
    memory = filled_dnd(np.eye(3, dtype=np.float32), [1.0, 2.0, 3.0], capacity=5)
    key = jnp.asarray([0.0, 1.0, 0.0])
    blended = write(memory, key, 4.0, rule="blend", alpha=0.1)
    assert int(blended.size) == 3
    np.testing.assert_allclose(blended.values[:3], [1.0, 2.0 + 0.1 * (4.0 - 2.0), 3.0], rtol=1e-6)
    raised = write(memory, key, 5.0, rule="max")
    lowered = write(memory, key, -5.0, rule="max")
    np.testing.assert_allclose(raised.values[:3], [1.0, 5.0, 3.0])
    np.testing.assert_allclose(lowered.values[:3], [1.0, 2.0, 3.0])  # max never decreases
    out = lookup(memory, key, 2)
    assert bool(out.exact) and int(out.exact_index) == 1
    assert not bool(lookup(memory, key + 1e-3, 2).exact)


def test_a_new_key_is_appended_then_a_full_dictionary_evicts_the_least_recently_used():
    memory = filled_dnd(np.eye(3, dtype=np.float32), [1.0, 2.0, 3.0], capacity=3)
    assert int(memory.size) == 3 and list(np.asarray(memory.last_used)) == [0, 1, 2]
    # A lookup hit on slot 0 makes it recent: slot 1 is now the least recently used.
    memory = dnd.mark_used(memory, jnp.asarray([0, 0]), jnp.asarray([True, True]))
    new = jnp.asarray([5.0, 5.0, 5.0])
    memory = write(memory, new, 9.0)
    np.testing.assert_array_equal(memory.keys[1], new)
    np.testing.assert_allclose(memory.values, [1.0, 9.0, 3.0])
    assert int(memory.size) == 3
    memory = write(memory, -new, 7.0)  # next least recently used: slot 2
    np.testing.assert_allclose(memory.values, [1.0, 9.0, 7.0])
    # Invalid neighbours of a lookup are not marked.
    marked = dnd.mark_used(memory, jnp.asarray([0, 1]), jnp.asarray([False, True]))
    assert int(marked.last_used[0]) == int(memory.last_used[0])


def test_batch_writes_apply_in_order_with_duplicates_and_masks():
    memory = dnd.init(4, 2)
    keys = jnp.asarray([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    values = jnp.asarray([1.0, 2.0, 3.0, 4.0])
    mask = jnp.asarray([True, True, True, False])
    out = dnd.write_batch(memory, keys, values, mask, rule="blend", alpha=0.5)
    sequential = memory
    for i in range(3):
        sequential = write(sequential, keys[i], values[i], "blend", 0.5)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(sequential), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(out.size) == 2
    np.testing.assert_allclose(out.values[:2], [1.0 + 0.5 * (3.0 - 1.0), 2.0])


@pytest.mark.slow
def test_gradients_reach_the_query_and_stored_keys_and_match_finite_differences():
    with jax.enable_x64(True):
        rng = np.random.default_rng(3)
        keys = rng.normal(size=(6, 3))
        values = rng.normal(size=6)
        memory = filled_dnd(keys, values, capacity=8)
        weights = jnp.asarray(rng.normal(size=(3, 3)))  # a linear "embedding" of an observation
        obs = jnp.asarray(rng.normal(size=3))

        @jax.jit
        def q(weights, stored_keys, stored_values):
            m = memory.replace(keys=stored_keys, values=stored_values)
            return dnd.lookup(m, weights @ obs, 4, delta=1e-3).value

        grads = jax.grad(q, argnums=(0, 1, 2))(weights, memory.keys, memory.values)
        used = np.asarray(lookup(memory, weights @ obs, 4).indices)
        for g in grads:
            assert g.dtype == jnp.float64 and float(jnp.max(jnp.abs(g))) > 1e-6
        # Only the neighbours' keys and values get gradient.
        unused = np.setdiff1d(np.arange(8), used)
        assert float(jnp.max(jnp.abs(grads[1][unused]))) == 0.0
        eps = 1e-6
        for arg, grad in enumerate(grads):
            base = [weights, memory.keys, memory.values]
            flat = np.asarray(base[arg]).ravel()
            numeric = np.zeros_like(flat)
            for i in range(flat.size):
                plus, minus = flat.copy(), flat.copy()
                plus[i] += eps
                minus[i] -= eps
                args_p, args_m = list(base), list(base)
                args_p[arg] = jnp.asarray(plus.reshape(base[arg].shape))
                args_m[arg] = jnp.asarray(minus.reshape(base[arg].shape))
                numeric[i] = (q(*args_p) - q(*args_m)) / (2 * eps)
            np.testing.assert_allclose(np.asarray(grad).ravel(), numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.slow
def test_it_runs_under_jit_and_vmap_over_seeds():
    def run(key):
        k_keys, k_values, k_query = jax.random.split(key, 3)
        memory = dnd.init(16, 4)
        keys = jax.random.normal(k_keys, (24, 4))
        memory = dnd.write_batch(memory, keys, jax.random.normal(k_values, (24,)))
        out = lookup(memory, jax.random.normal(k_query, (4,)), 5)
        return dnd.mark_used(memory, out.indices, out.valid), out.value

    memories, values = jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(0), 3))
    run = jax.jit(run)
    assert values.shape == (3,) and memories.keys.shape == (3, 16, 4)
    np.testing.assert_array_equal(memories.size, [16, 16, 16])
    for i, key in enumerate(jax.random.split(jax.random.PRNGKey(0), 3)):
        memory, value = run(key)
        np.testing.assert_allclose(values[i], value, rtol=1e-5)
        np.testing.assert_array_equal(memories.last_used[i], memory.last_used)


def test_bad_sizes_give_one_line_errors():
    memory = dnd.init(4, 2)
    for build, message in [
        (lambda: dnd.init(0, 2), "capacity must be a positive integer"),
        (lambda: dnd.lookup(memory, jnp.zeros(2), 5), "num_neighbours (5) must not exceed"),
        (
            lambda: dnd.lookup(memory, jnp.zeros(3), 2),
            "query must have shape (P,) (one unbatched key) with P = 2",
        ),
        (lambda: dnd.write(memory, jnp.zeros(2), 1.0, rule="min"), "rule must be one of"),
    ]:
        with pytest.raises(Learn2RLError) as err:
            build()
        assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_batch_lookups_in_a_stack_of_dictionaries_search_each_querys_own_table():
    rng = np.random.default_rng(5)
    stack = jax.vmap(lambda k, v: dnd.write_batch(dnd.init(12, 3), k, v))(
        jnp.asarray(rng.normal(size=(3, 10, 3)), jnp.float32),
        jnp.asarray(rng.normal(size=(3, 10)), jnp.float32),
    )
    queries = jnp.asarray(rng.normal(size=(7, 3)), jnp.float32)
    tables = jnp.asarray([0, 2, 1, 1, 0, 2, 2])
    out = jax.jit(lambda q, t: dnd.lookup_batch(stack, q, 4, tables=t))(queries, tables)
    for b in range(7):
        table = int(tables[b])
        one = lookup(jax.tree.map(lambda x, t=table: x[t], stack), queries[b], 4)
        np.testing.assert_array_equal(out.indices[b], one.indices)
        np.testing.assert_allclose(out.value[b], one.value, rtol=1e-5)
    # A write into one table of the stack leaves the others as they were.
    written = write(stack, queries[0], 5.0, "blend", 0.1, 1)
    np.testing.assert_array_equal(written.size, [10, 11, 10])
    for t in (0, 2):
        np.testing.assert_array_equal(written.keys[t], stack.keys[t])
