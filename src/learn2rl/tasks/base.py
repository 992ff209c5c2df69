"""Task families: a pure JAX environment plus a distribution over its per-task parameters.

A task family follows the gymnax ``Environment`` API (``reset_env`` / ``step_env`` as pure functions
of
key, state, action and params), with one twist: the ``params`` argument is the *task*, a pytree of
arrays drawn from the family's prior. Everything that varies between tasks lives there, so
``jax.vmap`` over tasks just works; settings that fix array shapes (number of arms) are static
attributes of the family object.

Splits. Tasks are addressed by an integer index; ``task(index)`` derives the task deterministically
from ``fold_in(root_key, index)``. The named splits are disjoint index ranges, so a test task is
never a training task. For priors with continuous support this also makes the parameters distinct
(with probability one); for priors with finite support (e.g. the "easy" dependent bandit, which has
two possible tasks) the same parameter values necessarily occur in both splits.
"""

from __future__ import annotations

import enum
import hashlib
import inspect
import types
from pathlib import PurePath
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment

from learn2rl.errors import Learn2RLError

# Index ranges [low, high) of the named splits. The test split is small enough to be enumerated
# (evaluation uses its first N tasks, the same for every agent); training draws from the rest.
SPLITS: dict[str, tuple[int, int]] = {
    "test": (0, 1 << 20),
    "train": (1 << 20, (1 << 31) - 1),
}
_ROOT_SEED = 20161111  # fixed, so task index i is the same task in every run and on every machine


def split_range(split: str) -> tuple[int, int]:
    if split not in SPLITS:
        raise Learn2RLError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    return SPLITS[split]


def strong_leaves(tree: Any) -> Any:
    """Every leaf as an array of its own dtype, not weakly typed (Python floats float32, ints
    int32, bools bool; gymnax resets set ``time=0``), so scans and ``where`` between a reset
    state and a stepped one see one type per leaf."""
    return jax.tree.map(lambda leaf: jnp.asarray(leaf, jnp.result_type(leaf)), tree)


class _ByIdentity:
    """An attribute value we cannot compare by content: equal only to the very same object."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByIdentity) and other.value is self.value

    def __hash__(self) -> int:
        return id(self.value)


_SKIP = object()  # marks an attribute that takes no part in a family's equality
_PLAIN = (type(None), bool, int, float, complex, str, bytes, PurePath, enum.Enum)
_BY_OBJECT = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)


def _array_key(array: Any) -> tuple:
    data = np.ascontiguousarray(jax.device_get(array))
    digest = hashlib.blake2b(data.tobytes(), digest_size=16).digest()
    return ("array", data.dtype.str, data.shape, digest)


def _value_key(owner: TaskFamily, value: Any, digests: dict, seen: dict) -> Any:
    """``value`` as something hashable that is equal exactly when the values are."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (tuple, list, set, frozenset)):
        items = [_value_key(owner, v, digests, seen) for v in value]
        if isinstance(value, (set, frozenset)):
            return (type(value).__name__, frozenset(items))
        return (type(value).__name__, tuple(items))
    if isinstance(value, dict):
        return (
            "dict",
            frozenset(
                (_value_key(owner, k, digests, seen), _value_key(owner, v, digests, seen))
                for k, v in value.items()
            ),
        )
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        # Hashing the bytes of a large array (maze layouts) on every jit call would cost more than
        # the lookup saves; arrays that cannot change keep their digest while they stay attached.
        immutable = isinstance(value, (jax.Array, np.generic)) or not value.flags.writeable
        cached = digests.get(id(value))
        if immutable and cached is not None and cached[0] is value:
            key = cached[1]
        else:
            key = _array_key(value)
        if immutable:
            seen[id(value)] = (value, key)
        return key
    # A method of the family itself, or a jit of one, is derived from the other attributes.
    target = getattr(value, "__wrapped__", value)
    if inspect.ismethod(target) and target.__self__ is owner:
        return _SKIP
    if isinstance(value, _BY_OBJECT):
        return value
    return _ByIdentity(value)


class TaskFamily(environment.Environment):
    """Base class: subclasses implement ``sample_params``, ``reset_env``, ``step_env``.

    Subclasses must set ``num_actions`` and ``episode_length`` (the maximum number of steps of one
    episode) as static attributes, and may implement ``expected_reward`` / ``best_expected_reward``
    to make regret computable.

    Families compare and hash by value: same class and equal instance attributes (arrays by
    content, methods of the family ignored, objects of unknown kind by identity). Jitted code takes
    a family as a static argument, so two ``make(id)`` results then share compiled functions.
    Attributes named in ``_derived_attributes`` (e.g. a simulator model built from a class-level
    file) are left out of the comparison; they must follow from the compared ones.
    """

    _derived_attributes: tuple[str, ...] = ()
    _DIGESTS = "_array_digests"  # instance attribute caching array digests; not compared

    def _value(self) -> tuple:
        # Recomputed on every call rather than cached, so a family changed after construction
        # stops matching functions compiled for its old attribute values.
        digests = self.__dict__.get(self._DIGESTS, {})
        seen: dict = {}
        items = []
        for name, value in sorted(vars(self).items()):
            if name == self._DIGESTS or name in self._derived_attributes:
                continue
            key = _value_key(self, value, digests, seen)
            if key is not _SKIP:
                items.append((name, key))
        self.__dict__[self._DIGESTS] = seen
        return (type(self), tuple(items))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskFamily):
            return NotImplemented
        return self is other or (type(self) is type(other) and self._value() == other._value())

    def __hash__(self) -> int:
        return hash(self._value())

    family_id: str = "task-family"
    episode_length: int = 1
    # Discrete families set ``num_actions``; continuous-control families set ``continuous = True``
    # and ``action_size`` (actions are float32 vectors of that length, see tasks/control).
    continuous: bool = False
    action_size: int = 0

    def null_action(self) -> jax.Array:
        """The "previous action" a trial shows at its first step: -1, or a zero vector."""
        if self.continuous:
            return jnp.zeros((self.action_size,), jnp.float32)
        return jnp.int32(-1)

    def cast_action(self, action: jax.Array) -> jax.Array:
        """An action in the dtype and shape the trial stores it in (int32, or float32 vector)."""
        if self.continuous:
            return jnp.asarray(action, jnp.float32).reshape((self.action_size,))
        return jnp.asarray(action, jnp.int32)

    # --- the prior over tasks --------------------------------------------------------------
    def sample_params(self, key: jax.Array) -> Any:
        """Draw task parameters from the prior. Pure; vmappable over keys."""
        raise NotImplementedError

    def task(self, index: jax.Array | int) -> Any:
        """The task with this index (deterministic: the same index is always the same task)."""
        root = jax.random.PRNGKey(_ROOT_SEED)
        return self.sample_params(jax.random.fold_in(root, jnp.asarray(index, jnp.uint32)))

    def sample(self, key: jax.Array, split: str = "train") -> Any:
        """Draw a random task of a split (uniform over the split's task indices)."""
        low, high = split_range(split)
        index = jax.random.randint(key, (), low, high, dtype=jnp.int32)
        return self.task(index)

    def tasks(self, num: int, split: str = "test", start: int = 0) -> Any:
        """The tasks with indices ``start .. start+num-1`` of a split, batched along axis 0."""
        low, high = split_range(split)
        if num <= 0:
            raise Learn2RLError(f"number of tasks must be positive, got {num}")
        if low + start + num > high:
            raise Learn2RLError(
                f"split {split!r} holds {high - low} tasks; asked for {start + num}"
            )
        indices = jnp.arange(low + start, low + start + num, dtype=jnp.int32)
        return jax.vmap(self.task)(indices)

    @property
    def default_params(self) -> Any:
        """A representative task (test task 0), for gymnax code that calls step without params."""
        return self.task(0)

    # --- optional: expected rewards, for regret ---------------------------------------------
    has_expected_reward: bool = False

    def expected_reward(self, params: Any, state: Any, action: jax.Array) -> jax.Array:
        """E[reward | state, action] under the task (for pseudo-regret)."""
        raise NotImplementedError

    def best_expected_reward(self, params: Any, state: Any) -> jax.Array:
        """The largest expected reward any action could get in this state."""
        raise NotImplementedError

    def is_truncated(self, state: Any, params: Any) -> jax.Array:
        # Episode length is static for a family, not a task parameter.
        return state.time >= self.episode_length

    def is_terminated(self, state: Any, params: Any) -> jax.Array:
        return jnp.asarray(False)

    @property
    def name(self) -> str:
        return self.family_id
