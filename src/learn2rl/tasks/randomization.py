"""Domain randomization: any gymnax environment, or any learn2rl family, as a task family whose
tasks differ in the environment's parameters.

A gymnax environment keeps everything that could vary (masses, lengths, gravity, time step) in a
parameter pytree passed to ``reset_env`` / ``step_env``, which is exactly a task of the
``TaskFamily`` contract. Two families build on that:

- ``GymnaxFamily(env_id)`` (id ``gymnax:<env id>``) is the environment at its default parameters:
  every task is the same MDP. Observations are flattened to float32 vectors; discrete action
  spaces give ``num_actions``, boxes give a continuous family (``action_size``, ``action_low``,
  ``action_high``; a box whose bounds differ between dimensions is shown as ``[-1, 1]`` and mapped
  affinely onto the environment's own box). An episode ends at a terminal state or at the
  environment's ``max_steps_in_episode`` (truncated, reported apart from termination).
- ``DomainRandomization(base, **fields)`` (id ``dr:<base>[field=dist,...]``) draws the named
  fields of the base's task parameters from the given distributions, independently per field,
  on top of the base's own task (its default parameters for a gymnax environment, its task for a
  learn2rl family). ``base`` is a gymnax id (``CartPole-v1``) or a learn2rl task id.

Distributions (``uniform``, ``loguniform``, ``choice``), written in ids as calls:
``uniform(low, high)`` and ``loguniform(low, high)`` for float fields (``low``/``high`` are
numbers or nested sequences broadcastable to the field's shape; ``loguniform`` needs ``low >
0``); ``choice(v1, v2, ..., p=(p1, p2, ...))`` for any field (each value broadcastable to the
field's shape; integer and boolean fields take only this one; ``p`` defaults to uniform).
Every mistake is one line at construction: an unknown field (the known ones are listed), a range
with ``low > high`` or non-finite ends, a shape that does not broadcast, an integer field given a
continuous distribution, a distribution for ``max_steps_in_episode`` (it fixes the episode
length, which is static; ``max_steps_in_episode=N`` sets it for every task of a gymnax base), a
field derived from others (CartPole's ``total_mass`` and ``polemass_length`` are recomputed from
the masses and the length after every draw), or a field the environment uses as a Python value
(it cannot vary inside ``jit``).

Tasks stay data: ``task(i)`` is the base's task ``i`` with its fields replaced by draws keyed by
``i``, so the split rules of ``tasks/base.py`` hold (a test task is never a training task) and
``jax.vmap`` over tasks works; RL^2, MAML and the other learners train on these families unchanged.

Example: ``make("dr:CartPole-v1[length=uniform(0.2,1.0),masspole=loguniform(0.03,0.3)]")``.
The named families ``dr/cartpole`` and ``dr/pendulum`` are registered with ranges used in the
docs (``docs/tasks/randomization.md``).
"""

from __future__ import annotations

import ast
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import _ROOT_SEED, TaskFamily, strong_leaves

GYMNAX_PREFIX = "gymnax:"
DR_PREFIX = "dr:"
# Left out of GymnaxFamily: this one downloads its data set when it is made.
_DOWNLOADS = frozenset({"MNISTBandit-bsuite"})


def _cartpole_derived(params):
    return params.replace(
        total_mass=params.masspole + params.masscart,
        polemass_length=params.masspole * params.length,
    )


def _unchanged(params):
    return params


# Fields a gymnax environment stores precomputed from others: recomputed after every draw, and
# never randomized themselves.
_DERIVED: dict[str, tuple[tuple[str, ...], Any]] = {
    "CartPole-v1": (("total_mass", "polemass_length"), _cartpole_derived),
}


def gymnax_ids() -> list[str]:
    """The gymnax environments ``GymnaxFamily`` accepts (all registered, less data downloads)."""
    import gymnax

    return [name for name in gymnax.registered_envs if name not in _DOWNLOADS]


class GymnaxFamily(TaskFamily):
    """A gymnax environment at its default parameters, as a task family (one task)."""

    # The environment object and its parameters follow from the id, which is compared.
    _derived_attributes = ("env", "default")

    def __init__(self, env_id: str, max_steps_in_episode: int | None = None):
        import gymnax

        if env_id not in gymnax_ids():
            raise Learn2RLError(
                f"unknown gymnax environment {env_id!r}; known: {', '.join(gymnax_ids())}"
            )
        self.env_id = env_id
        self.env, params = gymnax.make(env_id)
        if max_steps_in_episode is not None:
            if not isinstance(max_steps_in_episode, int) or max_steps_in_episode < 1:
                raise Learn2RLError(
                    "max_steps_in_episode must be one positive integer (the episode length is "
                    f"static for a family), got {max_steps_in_episode!r}"
                )
            params = params.replace(max_steps_in_episode=max_steps_in_episode)
        self.default = strong_leaves(params)
        self.family_id = GYMNAX_PREFIX + env_id
        if max_steps_in_episode is not None:
            self.family_id += f"[max_steps_in_episode={max_steps_in_episode}]"
        self.episode_length = int(params.max_steps_in_episode)
        self._obs_shape = tuple(self.env.observation_space(params).shape)
        self.observation_size = math.prod(self._obs_shape)
        space = self.env.action_space(params)
        self.continuous = isinstance(space, spaces.Box)
        if self.continuous:
            self._action_shape = tuple(space.shape)
            self.action_size = max(1, math.prod(self._action_shape))
            low = np.broadcast_to(np.asarray(space.low, np.float32), (self.action_size,))
            high = np.broadcast_to(np.asarray(space.high, np.float32), (self.action_size,))
            # The learners read a scalar box; a box with per-dimension bounds is shown as
            # [-1, 1] and mapped onto the environment's own bounds in step_env.
            self.normalized_actions = bool(np.ptp(low) > 0 or np.ptp(high) > 0)
            if self.normalized_actions:
                self.action_low, self.action_high = -1.0, 1.0
                self._box = (tuple(low.tolist()), tuple(high.tolist()))
            else:
                self.action_low, self.action_high = float(low[0]), float(high[0])
        else:
            self._num_actions = int(space.n)

    @property
    def num_actions(self) -> int:
        if self.continuous:
            raise Learn2RLError(
                f"{self.family_id} has continuous actions (vectors of {self.action_size}); it "
                "has no num_actions"
            )
        return self._num_actions

    def sample_params(self, key: jax.Array) -> Any:
        """The default parameters (every task of this family is the same MDP)."""
        return self.default

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (self.observation_size,), jnp.float32)

    def action_space(self, params=None):
        if self.continuous:
            return spaces.Box(self.action_low, self.action_high, (self.action_size,), jnp.float32)
        return spaces.Discrete(self._num_actions)

    def clip_action(self, action: jax.Array) -> jax.Array:
        return jnp.clip(jnp.asarray(action, jnp.float32), self.action_low, self.action_high)

    def _flat(self, obs: jax.Array) -> jax.Array:
        return jnp.asarray(obs, jnp.float32).reshape((self.observation_size,))

    def _env_action(self, action: jax.Array) -> jax.Array:
        if not self.continuous:
            return jnp.asarray(action, jnp.int32)
        action = self.clip_action(jnp.reshape(action, (self.action_size,)))
        if self.normalized_actions:
            low, high = (jnp.asarray(bound, jnp.float32) for bound in self._box)
            action = low + (action + 1.0) * 0.5 * (high - low)
        return action.reshape(self._action_shape)

    def reset_env(self, key: jax.Array, params: Any):
        obs, state = self.env.reset_env(key, params)
        return self._flat(obs), strong_leaves(state)

    def step_env(self, key: jax.Array, state: Any, action: jax.Array, params: Any):
        """One step: ``(obs float32[observation_size], state, reward float32 [], terminated
        bool [], {})``; reaching ``max_steps_in_episode`` is truncation (``is_truncated``), not
        termination."""
        action = self._env_action(action)
        obs, state, reward, done, _ = self.env.step_env(key, state, action, params)
        state = strong_leaves(state)
        terminated = jnp.logical_and(jnp.asarray(done, bool), ~self.is_truncated(state, params))
        return self._flat(obs), state, jnp.asarray(reward, jnp.float32).reshape(()), terminated, {}

    def is_terminated(self, state: Any, params: Any) -> jax.Array:
        done = self.env.is_terminal(state, params)
        return jnp.logical_and(jnp.asarray(done, bool), ~self.is_truncated(state, params))


# --- distributions -------------------------------------------------------------------------------
def _field_kind(value: jax.Array) -> str:
    dtype = jnp.asarray(value).dtype
    if jnp.issubdtype(dtype, jnp.bool_):
        return "boolean"
    if jnp.issubdtype(dtype, jnp.integer):
        return "integer"
    return "float"


def _broadcast(field: str, what: str, value: Any, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        raise Learn2RLError(f"{field}: {what} must be a number or an array, got {value!r}") from (
            None
        )
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise Learn2RLError(f"{field}: {what} must be numeric, got {value!r}")
    try:
        return np.broadcast_to(array, shape)
    except ValueError:
        raise Learn2RLError(
            f"{field}: {what} has shape {array.shape}, which does not broadcast to the field's "
            f"shape {shape}"
        ) from None


@dataclass(frozen=True)
class Uniform:
    """Uniform on ``[low, high]`` (element-wise for an array field)."""

    low: Any
    high: Any
    name = "uniform"

    def spec(self) -> tuple:
        return (self.name, _nested(self.low), _nested(self.high))

    def _bounds(self, field: str, value: jax.Array) -> tuple[np.ndarray, np.ndarray]:
        if _field_kind(value) != "float":
            raise Learn2RLError(
                f"{field} is an {_field_kind(value)} field; give it choice(...), not {self.name}"
            )
        shape = tuple(jnp.shape(value))
        low = _broadcast(field, f"{self.name} low", self.low, shape).astype(np.float64)
        high = _broadcast(field, f"{self.name} high", self.high, shape).astype(np.float64)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise Learn2RLError(f"{field}: {self.name} bounds must be finite, got {self.spec()}")
        if np.any(low > high):
            raise Learn2RLError(f"{field}: {self.name} needs low <= high, got {self.spec()}")
        return low, high

    def check(self, field: str, value: jax.Array) -> None:
        self._bounds(field, value)

    # The space the draw is uniform in (log space for LogUniform) and the way back.
    _warp, _unwarp = staticmethod(np.asarray), staticmethod(jnp.asarray)

    def draw(self, key: jax.Array, field: str, value: jax.Array) -> jax.Array:
        low, high = (self._warp(bound) for bound in self._bounds(field, value))
        unit = jax.random.uniform(key, low.shape, jnp.float32)
        warped = jnp.float32(low) + unit * jnp.float32(high - low)
        return self._unwarp(warped).astype(jnp.result_type(value))


@dataclass(frozen=True)
class LogUniform(Uniform):
    """``exp`` of a uniform on ``[log low, log high]``: every factor of ten equally likely."""

    name = "loguniform"
    _warp, _unwarp = staticmethod(np.log), staticmethod(jnp.exp)

    def _bounds(self, field: str, value: jax.Array) -> tuple[np.ndarray, np.ndarray]:
        low, high = super()._bounds(field, value)
        if np.any(low <= 0):
            raise Learn2RLError(f"{field}: loguniform needs low > 0, got {self.spec()}")
        return low, high


@dataclass(frozen=True)
class Choice:
    """One of ``values`` (each broadcast to the field's shape), with probabilities ``p``
    (uniform when omitted)."""

    values: tuple
    p: tuple | None = None
    name = "choice"

    def spec(self) -> tuple:
        return (self.name, _nested(self.values), _nested(self.p))

    def _table(self, field: str, value: jax.Array) -> tuple[np.ndarray, np.ndarray | None]:
        values = tuple(self.values) if isinstance(self.values, (tuple, list)) else ()
        if not values:
            raise Learn2RLError(f"{field}: choice needs at least one value, got {self.values!r}")
        kind, shape = _field_kind(value), tuple(jnp.shape(value))
        rows = [_broadcast(field, "a choice value", v, shape) for v in values]
        for row in rows:
            if kind == "boolean" and row.dtype.kind != "b":
                raise Learn2RLError(f"{field} is a boolean field; choice values must be booleans")
            if kind == "integer" and row.dtype.kind not in "biu":
                raise Learn2RLError(f"{field} is an integer field; choice values must be integers")
            if row.dtype.kind == "f" and not np.all(np.isfinite(row)):
                raise Learn2RLError(f"{field}: choice values must be finite, got {values!r}")
        table = np.stack(rows)
        if self.p is None:
            return table, None
        probs = _broadcast(field, "choice p", self.p, (len(rows),)).astype(np.float64)
        if np.asarray(self.p).shape != (len(rows),):
            raise Learn2RLError(f"{field}: choice p needs one probability per value ({len(rows)})")
        if np.any(probs < 0) or not math.isclose(float(probs.sum()), 1.0, abs_tol=1e-6):
            raise Learn2RLError(f"{field}: choice p must be >= 0 and sum to 1, got {self.p}")
        return table, probs

    def check(self, field: str, value: jax.Array) -> None:
        self._table(field, value)

    def draw(self, key: jax.Array, field: str, value: jax.Array) -> jax.Array:
        table, probs = self._table(field, value)
        dtype = jnp.result_type(value)
        n = table.shape[0]
        if probs is None:
            index = jax.random.randint(key, (), 0, n)
        else:
            index = jax.random.choice(key, n, p=jnp.asarray(probs, jnp.float32))
        return jnp.asarray(table, dtype)[index]


DISTRIBUTIONS = {"uniform": Uniform, "loguniform": LogUniform, "choice": Choice}


def _nested(value: Any) -> Any:
    """A hashable, printable copy: sequences and arrays as nested tuples of Python scalars."""
    if value is None:
        return None
    array = np.asarray(value)
    return array.tolist() if array.ndim == 0 else tuple(_nested(v) for v in array.tolist())


def parse_distribution(field: str, text: str) -> Uniform | Choice:
    """``"uniform(0.1, 1.0)"`` -> ``Uniform(0.1, 1.0)``; also ``loguniform(low, high)`` and
    ``choice(v1, v2, ..., p=(...))``, with literal numbers, booleans and tuples as arguments."""
    usage = (
        f"{field}={text!r}: write uniform(low, high), loguniform(low, high) or "
        "choice(v1, v2, ..., p=(p1, p2, ...))"
    )
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise Learn2RLError(usage) from None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
        raise Learn2RLError(usage)
    kind = call.func.id
    if kind not in DISTRIBUTIONS:
        raise Learn2RLError(f"{field}: unknown distribution {kind!r}; {usage.partition(': ')[2]}")
    try:
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    except ValueError:
        raise Learn2RLError(f"{usage}; arguments must be literal numbers or tuples") from None
    if kind == "choice":
        if set(kwargs) - {"p"}:
            raise Learn2RLError(f"{field}: choice takes only p=..., got {sorted(kwargs)}")
        return Choice(tuple(args), kwargs.get("p"))
    if kwargs or len(args) != 2:
        raise Learn2RLError(f"{field}: {kind} takes exactly (low, high), got {text!r}")
    return DISTRIBUTIONS[kind](*args)


def as_distribution(field: str, value: Any) -> Uniform | Choice:
    """A distribution object, or the text of one (``"uniform(0.1, 1)"``)."""
    if isinstance(value, (Uniform, Choice)):
        return value
    if isinstance(value, str):
        return parse_distribution(field, value)
    raise Learn2RLError(
        f"{field}: expected a distribution (uniform(...), loguniform(...), choice(...)), got "
        f"{value!r}"
    )


# --- the randomized family -----------------------------------------------------------------------
def make_base(base: str, max_steps_in_episode: int | None = None) -> TaskFamily:
    """The family a randomization draws on: a gymnax environment id or a learn2rl task id
    (``max_steps_in_episode`` shortens or lengthens a gymnax environment's episodes)."""
    if not isinstance(base, str) or not base:
        raise Learn2RLError(f"base must be a gymnax or learn2rl task id, got {base!r}")
    if base.startswith(GYMNAX_PREFIX):
        base = base[len(GYMNAX_PREFIX) :]
    if base in gymnax_ids():
        return GymnaxFamily(base, max_steps_in_episode)
    from learn2rl.tasks.registry import list_tasks, make

    if max_steps_in_episode is not None:
        raise Learn2RLError(
            f"max_steps_in_episode applies to gymnax environments; {base} sets its episode "
            "length itself"
        )
    if base.startswith(DR_PREFIX) or base.partition("[")[0] not in list_tasks():
        raise Learn2RLError(
            f"unknown base {base!r}: give a gymnax environment ({', '.join(gymnax_ids())}) or a "
            "learn2rl task id (learn2rl list)"
        )
    return make(base)


class DomainRandomization(TaskFamily):
    """The tasks of ``base`` with the named parameter fields drawn from distributions."""

    # The base family and the distribution objects follow from ``base`` and ``randomized``.
    _derived_attributes = ("base_family", "distributions", "_derive")

    def __init__(self, base: str, max_steps_in_episode: int | None = None, **fields: Any):
        self.base_family = make_base(base, max_steps_in_episode)
        self.base = base
        self.max_steps_in_episode = max_steps_in_episode
        self.distributions = {name: as_distribution(name, fields[name]) for name in sorted(fields)}
        self.randomized = tuple((name, dist.spec()) for name, dist in self.distributions.items())
        family = self.base_family
        self.episode_length = family.episode_length
        self.continuous = bool(getattr(family, "continuous", False))
        self.action_size = int(getattr(family, "action_size", 0))
        self.observation_size = int(np.prod(family.observation_space().shape))
        if self.continuous:
            self.action_low, self.action_high = family.action_low, family.action_high
        derived, self._derive = _DERIVED.get(getattr(family, "env_id", ""), ((), _unchanged))
        self.family_id = randomization_id(base, self.distributions, max_steps_in_episode)
        self._check_fields(derived)

    def _check_fields(self, derived: tuple[str, ...]) -> None:
        reference = self.base_family.task(0)
        if not dataclasses.is_dataclass(reference):
            raise Learn2RLError(f"{self.base}: its task parameters are not a dataclass of fields")
        known = {
            f.name
            for f in dataclasses.fields(reference)
            if f.metadata.get("pytree_node", True)
            and f.name != "max_steps_in_episode"
            and f.name not in derived
        }
        for name, dist in self.distributions.items():
            if name in derived:
                raise Learn2RLError(
                    f"{name} cannot be randomized: {self.base} computes it from other fields "
                    "(randomize those)"
                )
            if name not in known:
                raise Learn2RLError(
                    f"{self.base} has no parameter field {name!r}; its fields: "
                    f"{', '.join(sorted(known))}"
                )
            dist.check(name, getattr(reference, name))
        try:  # a field used as a Python value fails here, not at training time
            jax.eval_shape(self._one_step, jax.random.PRNGKey(0))
        except jax.errors.ConcretizationTypeError:
            raise Learn2RLError(
                f"{self.base} uses one of {', '.join(self.distributions)} as a Python value; it "
                "cannot vary between tasks"
            ) from None

    def _one_step(self, key: jax.Array):
        params = self.task(jnp.int32(3))
        obs, state = self.reset_env(key, params)
        return self.step_env(key, state, self._probe_action(), params)

    def _probe_action(self) -> jax.Array:
        if self.continuous:
            return jnp.zeros((self.action_size,), jnp.float32)
        return jnp.int32(0)

    # --- the tasks ---------------------------------------------------------------------------
    def _randomize(self, params: Any, key: jax.Array) -> Any:
        draws = {
            name: dist.draw(jax.random.fold_in(key, i), name, getattr(params, name))
            for i, (name, dist) in enumerate(self.distributions.items())
        }
        return self._derive(params.replace(**draws))

    def replace_fields(self, params: Any, **values: Any) -> Any:
        """``params`` (one task or a batch) with the named fields set to ``values`` (broadcast
        to each field's shape) and the derived fields recomputed: tasks at chosen parameters,
        e.g. a sweep along one of them."""
        fields = {f.name for f in dataclasses.fields(params)}
        for name in values:
            if name not in fields:
                raise Learn2RLError(f"{self.base} has no parameter field {name!r}")
        current = {name: getattr(params, name) for name in values}
        return self._derive(
            params.replace(
                **{
                    name: jnp.full(jnp.shape(old), values[name], jnp.result_type(old))
                    for name, old in current.items()
                }
            )
        )

    def task(self, index: jax.Array | int) -> Any:
        """The base's task ``index`` with the randomized fields drawn from a key of ``index``."""
        index = jnp.asarray(index, jnp.uint32)
        key = jax.random.fold_in(jax.random.PRNGKey(_ROOT_SEED + 1), index)
        return self._randomize(self.base_family.task(index), key)

    def sample_params(self, key: jax.Array) -> Any:
        base_key, key = jax.random.split(key)
        return self._randomize(self.base_family.sample_params(base_key), key)

    # --- the environment: the base's ---------------------------------------------------------
    @property
    def num_actions(self) -> int:
        return self.base_family.num_actions

    def observation_space(self, params=None):
        return self.base_family.observation_space(params)

    def action_space(self, params=None):
        return self.base_family.action_space(params)

    def clip_action(self, action: jax.Array) -> jax.Array:
        return self.base_family.clip_action(action)

    def reset_env(self, key: jax.Array, params: Any):
        return self.base_family.reset_env(key, params)

    def step_env(self, key: jax.Array, state: Any, action: jax.Array, params: Any):
        return self.base_family.step_env(key, state, action, params)

    def is_truncated(self, state: Any, params: Any) -> jax.Array:
        return self.base_family.is_truncated(state, params)

    def is_terminated(self, state: Any, params: Any) -> jax.Array:
        return self.base_family.is_terminated(state, params)


def _format(value: Any) -> str:
    return repr(value).replace(" ", "")


def randomization_id(
    base: str, distributions: dict[str, Uniform | Choice], max_steps_in_episode: int | None = None
) -> str:
    """``dr:<base>[field=dist(...),...]`` (fields sorted; ``dr:<base>`` when there are none)."""
    parts = [] if max_steps_in_episode is None else [f"max_steps_in_episode={max_steps_in_episode}"]
    for name, dist in sorted(distributions.items()):
        spec = dist.spec()
        if spec[0] == "choice":
            args = ",".join(_format(v) for v in spec[1])
            args += f",p={_format(spec[2])}" if spec[2] is not None else ""
        else:
            args = f"{_format(spec[1])},{_format(spec[2])}"
        parts.append(f"{name}={spec[0]}({args})")
    return DR_PREFIX + base + (f"[{','.join(parts)}]" if parts else "")


def from_id(task_id: str) -> TaskFamily:
    """The family of a ``gymnax:<env id>`` or ``dr:<base>[field=dist,...]`` id."""
    from learn2rl.tasks.registry import parse_options

    if task_id.startswith(GYMNAX_PREFIX):
        env_id, options = parse_options(task_id[len(GYMNAX_PREFIX) :])
        if set(options) - {"max_steps_in_episode"}:
            raise Learn2RLError(
                f"{task_id}: a gymnax: id takes only [max_steps_in_episode=N]; randomize fields "
                f"with {DR_PREFIX}{env_id}[field=uniform(low,high),...]"
            )
        return GymnaxFamily(env_id, options.get("max_steps_in_episode"))
    if not task_id.startswith(DR_PREFIX):
        raise Learn2RLError(f"{task_id!r} is neither a {GYMNAX_PREFIX} nor a {DR_PREFIX} id")
    base, options = parse_options(task_id[len(DR_PREFIX) :])
    fields: dict[str, Any] = {}
    for name, value in options.items():
        if name != "max_steps_in_episode" and not isinstance(value, str):
            raise Learn2RLError(
                f"{task_id}: {name}={value!r} is not a distribution; write "
                f"{name}=uniform(low, high), loguniform(low, high) or choice(v1, v2, ...)"
            )
        fields[name] = value
    return DomainRandomization(base, **fields)


TASKS = [
    (
        "dr/cartpole",
        DomainRandomization,
        "gymnax CartPole-v1, 200 steps, pole half-length ~ logU[0.1, 2.5], pole mass ~ "
        "logU[0.03, 3], push force ~ U[2, 20], time step ~ U[0.01, 0.06] (default 0.5, 0.1, 10, "
        "0.02)",
        {
            "base": "CartPole-v1",
            "max_steps_in_episode": 200,
            "length": "loguniform(0.1, 2.5)",
            "masspole": "loguniform(0.03, 3.0)",
            "force_mag": "uniform(2.0, 20.0)",
            "tau": "uniform(0.01, 0.06)",
        },
    ),
    (
        "dr/pendulum",
        DomainRandomization,
        "gymnax Pendulum-v1, mass ~ U[0.5, 2.0], length ~ U[0.5, 1.5] (default 1, 1)",
        {"base": "Pendulum-v1", "m": "uniform(0.5, 2.0)", "l": "uniform(0.5, 1.5)"},
    ),
]
