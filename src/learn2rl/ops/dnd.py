"""A differentiable neural dictionary (DND): a fixed-size key-value memory with k-NN lookup.

Pritzel et al. 2017, "Neural Episodic Control" (arXiv 1703.01988), whose method section defines
the DND; used as a table by Blundell et al. 2016, "Model-Free Episodic Control" (arXiv
1606.04460). A lookup with query ``h`` finds the ``p`` stored keys ``h_i`` nearest to ``h``
(exact search here, where NEC uses approximate kd-trees) and returns

    o = sum_i w_i v_i,  w_i = k(h, h_i) / sum_j k(h, h_j),  k(h, h_i) = 1 / (|h - h_i|^2 + delta)

(NEC's lookup), or the plain mean of the ``p`` values (MFEC's estimate, ``kernel="mean"``). A
write of ``(h, v)`` updates an entry whose key equals ``h`` exactly (NEC's tabular step
``Q_i <- Q_i + alpha (v - Q_i)``, or MFEC's ``Q <- max(Q, v)``) and otherwise appends it to
the first empty slot or, when full, overwrites the least recently used entry (NEC:
entries that have not recently been neighbours in a lookup are replaced).

The dictionary is a ``flax.struct`` pytree of fixed shapes, so it lives inside ``jit``, ``vmap``
(over seeds, or over actions: one dictionary per action is a stacked ``DND``) and ``lax.scan``.
Functions take one unbatched dictionary and return a new one; nothing is hidden in objects.
Gradients of a lookup's output reach the query (the embedding network) and the stored keys and
values of the neighbours it used; which neighbours are used is a discrete choice, not
differentiated. Sizes that fix shapes (capacity, key size, number of neighbours) are Python ints.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import struct

from learn2rl.errors import Learn2RLError

KERNELS = ("inverse_distance", "mean")
WRITE_RULES = ("blend", "max")


@struct.dataclass
class DND:
    """One dictionary. Slots ``[0, size)`` are filled (appends fill them in order; once full,
    writes overwrite the least recently used slot). ``last_used`` holds the ``clock`` value of a
    slot's latest write or lookup hit; ``clock`` counts writes and lookup marks."""

    keys: jax.Array  # [C, P]
    values: jax.Array  # [C]
    last_used: jax.Array  # [C] int32
    size: jax.Array  # [] int32
    clock: jax.Array  # [] int32

    @property
    def capacity(self) -> int:
        return self.keys.shape[-2]

    @property
    def key_size(self) -> int:
        return self.keys.shape[-1]


class Lookup(NamedTuple):
    """The result of a lookup: the value, the neighbours' weights (0 for neighbours that are empty
    slots), their slot indices, which of them are filled slots, and whether one of them has a key
    exactly equal to the query (``exact_index`` is its slot then)."""

    value: jax.Array  # []
    weights: jax.Array  # [p]
    indices: jax.Array  # [p] int32
    valid: jax.Array  # [p] bool
    exact: jax.Array  # [] bool
    exact_index: jax.Array  # [] int32


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise Learn2RLError(f"{name} must be a positive integer, got {value!r}")
    try:
        as_int = operator.index(value)
    except TypeError:
        raise Learn2RLError(
            f"{name} must be a positive Python integer (static under jit), got {value!r}"
        ) from None
    if as_int <= 0:
        raise Learn2RLError(f"{name} must be a positive integer, got {value!r}")
    return as_int


def init(capacity: int, key_size: int, dtype=jnp.float32) -> DND:
    """An empty dictionary of ``capacity`` slots for keys of ``key_size`` numbers."""
    capacity = _positive_int("capacity", capacity)
    key_size = _positive_int("key_size", key_size)
    return DND(
        keys=jnp.zeros((capacity, key_size), dtype),
        values=jnp.zeros((capacity,), dtype),
        last_used=jnp.zeros((capacity,), jnp.int32),
        size=jnp.int32(0),
        clock=jnp.int32(0),
    )


def filled(dnd: DND) -> jax.Array:
    """``[C]`` bool: which slots hold an entry."""
    return jnp.arange(dnd.capacity) < dnd.size


def _check_lookup(dnd: DND, queries: jax.Array, num_neighbours: int, batched: bool) -> int:
    p = _positive_int("num_neighbours", num_neighbours)
    if p > dnd.capacity:
        raise Learn2RLError(
            f"num_neighbours ({p}) must not exceed the dictionary capacity ({dnd.capacity})"
        )
    shape = queries.shape[1:] if batched else queries.shape
    if shape != (dnd.key_size,) or (batched and queries.ndim != 2):
        what = "[B, P] (a batch of keys)" if batched else "(P,) (one unbatched key)"
        raise Learn2RLError(
            f"query must have shape {what} with P = {dnd.key_size}, got {queries.shape}"
        )
    return p


def _top(dnd: DND, sq: jax.Array, p: int) -> tuple[jax.Array, jax.Array]:
    """The ``p`` filled slots of least ``sq`` (last axis), nearest first, and their validity."""
    score = jnp.where(filled(dnd), -sq, -jnp.inf)
    top, indices = jax.lax.top_k(score, p)
    return indices.astype(jnp.int32), top > -jnp.inf


def nearest(dnd: DND, query: jax.Array, num_neighbours: int) -> tuple[jax.Array, jax.Array]:
    """``(indices [p], valid [p])``: the ``p`` filled slots nearest to ``query`` in squared
    Euclidean distance, nearest first (``jax.lax.top_k`` of the negative distances, empty slots
    at minus infinity; ties go to the lower slot). Where fewer than ``p`` slots are filled, the
    remaining indices point at empty slots and ``valid`` is False there. Not differentiated.
    The distances ``sum((k - q)^2)`` take one pass over the keys (``nearest_batch`` ranks a batch
    of queries with one matrix product instead)."""
    p = _check_lookup(dnd, query, num_neighbours, batched=False)
    keys = jax.lax.stop_gradient(dnd.keys)
    sq = jnp.sum((keys - jax.lax.stop_gradient(query)) ** 2, -1)
    return _top(dnd, sq, p)


def nearest_batch(
    dnd: DND, queries: jax.Array, num_neighbours: int, tables: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """``nearest`` for a batch of queries ``[B, P] -> ([B, p], [B, p])``, ranked by
    ``|k|^2 - 2 k.q + |q|^2``: one matrix product, far cheaper than B passes over the keys (the
    ranking may differ from ``nearest``'s by rounding where two distances nearly tie).
    ``tables [B]``: for a stacked ``DND``, the dictionary each query searches."""
    p = _check_lookup(dnd, queries, num_neighbours, batched=True)
    keys = jax.lax.stop_gradient(dnd.keys)
    queries = jax.lax.stop_gradient(queries)
    if tables is None:
        cross = queries @ keys.T  # [B, C]
        sq_keys, size = jnp.sum(keys * keys, -1)[None, :], dnd.size
    else:
        cross = jnp.take_along_axis(
            jnp.einsum("bp,acp->bac", queries, keys), tables[:, None, None], 1
        )[:, 0]
        sq_keys, size = jnp.sum(keys * keys, -1)[tables], dnd.size[tables][:, None]
    sq = sq_keys - 2.0 * cross + jnp.sum(queries * queries, -1)[:, None]
    score = jnp.where(jnp.arange(dnd.capacity) < size, -sq, -jnp.inf)
    top, indices = jax.lax.top_k(score, p)
    return indices.astype(jnp.int32), top > -jnp.inf


def kernel_weights(
    sq_distances: jax.Array, valid: jax.Array, delta: float, kernel: str = "inverse_distance"
) -> jax.Array:
    """``w_i = k_i / sum_j k_j`` over the valid neighbours, ``k_i = 1 / (d_i + delta)`` (NEC)
    or ``k_i = 1`` (``kernel="mean"``, MFEC); all zeros when no neighbour is valid."""
    if kernel not in KERNELS:
        raise Learn2RLError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
    if kernel == "mean":
        k = valid.astype(sq_distances.dtype)
    else:
        k = jnp.where(valid, 1.0 / (sq_distances + delta), 0.0)
    total = jnp.sum(k)
    return jnp.where(total > 0, k / jnp.where(total > 0, total, 1.0), 0.0)


def _lookup_at(neighbour_keys, neighbour_values, query, indices, valid, delta, kernel) -> Lookup:
    """A lookup's result from its neighbours' keys ``[p, P]`` and values ``[p]``."""
    sq_distances = jnp.sum((neighbour_keys - query) ** 2, -1)
    weights = kernel_weights(sq_distances, valid, delta, kernel)
    value = jnp.sum(weights * neighbour_values)
    # Exact differences are 0.0 exactly for identical keys; nearest-first order puts a match first.
    is_exact = valid & jnp.all(jax.lax.stop_gradient(neighbour_keys) == query, -1)
    return Lookup(
        value=value,
        weights=weights,
        indices=indices,
        valid=valid,
        exact=jnp.any(is_exact),
        exact_index=indices[jnp.argmax(is_exact)],
    )


def lookup(
    dnd: DND,
    query: jax.Array,
    num_neighbours: int,
    delta: float = 1e-3,
    kernel: str = "inverse_distance",
) -> Lookup:
    """The kernel-weighted value of the ``num_neighbours`` nearest entries (NEC); 0 when the
    dictionary is empty. Differentiable in ``query``, ``dnd.keys`` and ``dnd.values``."""
    indices, valid = nearest(dnd, query, num_neighbours)
    return _lookup_at(dnd.keys[indices], dnd.values[indices], query, indices, valid, delta, kernel)


def lookup_batch(
    dnd: DND,
    queries: jax.Array,
    num_neighbours: int,
    delta: float = 1e-3,
    kernel: str = "inverse_distance",
    tables: jax.Array | None = None,
) -> Lookup:
    """``lookup`` of a batch of queries ``[B, P]`` (fields with a leading axis B), ranked by
    ``nearest_batch``; ``tables [B]`` picks each query's dictionary of a stacked ``DND``.
    Differentiable as ``lookup`` is."""
    indices, valid = nearest_batch(dnd, queries, num_neighbours, tables)
    at = (indices,) if tables is None else (tables[:, None], indices)
    one = lambda k, v, q, i, ok: _lookup_at(k, v, q, i, ok, delta, kernel)  # noqa: E731
    return jax.vmap(one)(dnd.keys[at], dnd.values[at], queries, indices, valid)


def find(dnd: DND, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(found, index)``: whether a filled slot holds exactly ``key``, and the first such slot."""
    if key.shape != (dnd.key_size,):
        raise Learn2RLError(f"key must have shape ({dnd.key_size},), got {key.shape}")
    match = filled(dnd) & jnp.all(dnd.keys == key, -1)
    return jnp.any(match), jnp.argmax(match).astype(jnp.int32)


def mark_used(dnd: DND, indices: jax.Array, valid: jax.Array | None = None) -> DND:
    """Record a lookup hit: the slots ``indices`` (where ``valid``) become the most recently
    used, so LRU eviction spares them (NEC)."""
    if valid is None:
        valid = jnp.ones(indices.shape, bool)
    stamp = jnp.where(valid, dnd.clock, dnd.last_used[indices])
    return dnd.replace(last_used=dnd.last_used.at[indices].max(stamp), clock=dnd.clock + 1)


def write(
    dnd: DND,
    key: jax.Array,
    value: jax.Array,
    rule: str = "blend",
    alpha: float = 0.1,
    table: jax.Array | int | None = None,
) -> DND:
    """Write ``(key, value)``. An entry whose key equals ``key`` exactly becomes
    ``Q + alpha (value - Q)`` (``rule="blend"``, NEC) or ``max(Q, value)`` (``rule="max"``,
    MFEC); otherwise the pair goes into the first empty slot, or, when the dictionary is
    full, over the least recently used entry (the lowest slot among ties). The written slot
    becomes the most recently used.

    ``table``: for a stacked ``DND`` (one dictionary per action, leading axis), the dictionary
    written; the others are untouched. Indexing in place spares a copy of the whole stack per
    write, which slicing a dictionary out and setting it back would cost."""
    if rule not in WRITE_RULES:
        raise Learn2RLError(f"rule must be one of {', '.join(WRITE_RULES)}, got {rule!r}")
    at = () if table is None else (jnp.asarray(table, jnp.int32),)
    if dnd.keys.ndim != 2 + len(at):
        raise Learn2RLError(
            "table must be given for a stacked dictionary (and only then), "
            f"got keys of shape {dnd.keys.shape}"
        )
    if key.shape != (dnd.key_size,):
        raise Learn2RLError(f"key must have shape ({dnd.key_size},), got {key.shape}")
    keys, size, clock = dnd.keys[at], dnd.size[at], dnd.clock[at]
    match = (jnp.arange(dnd.capacity) < size) & jnp.all(keys == key, -1)
    found, matched = jnp.any(match), jnp.argmax(match).astype(jnp.int32)
    value = jnp.asarray(value, dnd.values.dtype)
    old = dnd.values[(*at, matched)]
    updated = old + alpha * (value - old) if rule == "blend" else jnp.maximum(old, value)
    full = size >= dnd.capacity
    free = jnp.where(full, jnp.argmin(dnd.last_used[at]).astype(jnp.int32), size)
    slot = (*at, jnp.where(found, matched, free))
    return DND(
        keys=dnd.keys.at[slot].set(jnp.where(found, dnd.keys[slot], key)),
        values=dnd.values.at[slot].set(jnp.where(found, updated, value)),
        last_used=dnd.last_used.at[slot].set(clock),
        size=dnd.size.at[at].set(jnp.where(found | full, size, size + 1)),
        clock=dnd.clock.at[at].set(clock + 1),
    )


def write_batch(
    dnd: DND,
    keys: jax.Array,
    values: jax.Array,
    mask: jax.Array | None = None,
    rule: str = "blend",
    alpha: float = 0.1,
    tables: jax.Array | None = None,
) -> DND:
    """Write ``keys [B, P]`` and ``values [B]`` one after another in batch order (entries where
    ``mask`` is False are skipped), so duplicates inside a batch and evictions are resolved as a
    sequence of single writes would resolve them: deterministically. ``tables [B]``: for a
    stacked ``DND``, the dictionary of each entry.

    The kept entries are moved to the front (a stable sort) and written by a loop of as many
    steps as there are of them, so skipped entries cost nothing under ``jit`` (under ``vmap``
    the loop runs to the longest batch member, masked)."""
    if mask is None:
        mask = jnp.ones(values.shape, bool)
    order = jnp.argsort(~mask, stable=True)
    count = jnp.sum(mask)

    def one(i, dnd):
        j = order[i]
        table = None if tables is None else tables[j]
        return write(dnd, keys[j], values[j], rule, alpha, table=table)

    return jax.lax.fori_loop(0, count, one, dnd)
