"""What every learner shares: the device rule, the sharded training chunk, config input.

A learner's batch (tasks for RL^2 and MAML, functions for Hochreiter 2001) is split over the local
devices with ``jax.shard_map``. Any machine must be able to run any config, so the device count
is not a constraint on the config: a learner uses the largest number of devices that divides its
batch (and, where an update splits each device's share again, e.g. into PPO minibatches, leaves a
whole number per device), and says so once when that is fewer than all of them. Every learner
goes through ``ShardedChunks``, so the rule is the same everywhere.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from learn2rl.devices import tell_once
from learn2rl.errors import Learn2RLError


def usable_device_count(batch: int, available: int, per_device_multiple: int = 1) -> int:
    """The largest ``d <= available`` with ``batch % d == 0`` and each device's share
    ``batch // d`` a multiple of ``per_device_multiple``."""
    if batch % per_device_multiple:
        raise Learn2RLError(
            f"a batch of {batch} cannot be split into parts of a multiple of {per_device_multiple}"
        )
    return max(
        d
        for d in range(1, max(available, 1) + 1)
        if batch % d == 0 and (batch // d) % per_device_multiple == 0
    )


class ShardedChunks:
    """Runs ``updates(state, local_indices, num_updates=n)`` as ``jit(shard_map(...))``.

    ``batch`` items (indices ``0..batch-1``) are split over the devices along mesh axis ``axis``;
    the train state goes in and comes out replicated, per-update metrics come out replicated (the
    update function ``pmean``-s them over ``axis``). Compiled chunks are cached per chunk length,
    in ``cache`` under ``cache_key`` when given (learners that rebuild themselves for the same
    config can then share them). One instance serves one update function.

    ``state_spec(state)``, when given, says instead how the state is laid out: a pytree of
    ``PartitionSpec`` with the state's structure, ``PartitionSpec(axis)`` on the leaves whose
    leading axis is split over the devices (MetaGenRL's agents, the seeds of a sweep); the update
    function then sees its device's part of those leaves. ``metrics_spec`` likewise for the
    metrics (default replicated).
    """

    def __init__(
        self,
        batch: int,
        axis: str,
        devices: list | None = None,
        per_device_multiple: int = 1,
        what: str = "num_tasks",
        cache: dict | None = None,
        cache_key: Hashable = None,
        state_spec: Callable[[Any], Any] | None = None,
        metrics_spec: PartitionSpec | None = None,
    ):
        available = list(devices) if devices is not None else jax.devices()
        count = usable_device_count(batch, len(available), per_device_multiple)
        if count < len(available):
            extra = (
                f" with {per_device_multiple}-way minibatches on each"
                if per_device_multiple > 1
                else ""
            )
            tell_once(
                f"{what} ({batch}) splits evenly over {count} of the {len(available)} devices"
                f"{extra}; training uses {count} (a multiple of {len(available)} uses them all)"
            )
        self.devices = available[:count]
        self.batch = batch
        self.axis = axis
        self.mesh = Mesh(np.array(self.devices), (axis,))
        self._cache = {} if cache is None else cache
        self._cache_key = (cache_key, tuple(self.devices))
        self._indices = None
        self._state_spec = state_spec
        self._metrics_spec = PartitionSpec() if metrics_spec is None else metrics_spec

    def specs(self, state: Any, members: bool = False) -> Any:
        """The state's layout (``state_spec``, or replicated), with an unsplit leading member
        axis first when ``members``."""
        if self._state_spec is None:
            return PartitionSpec()
        specs = self._state_spec(state)
        if members:
            specs = jax.tree.map(
                lambda spec: PartitionSpec(None, *spec),
                specs,
                is_leaf=lambda x: isinstance(x, PartitionSpec),
            )
        return specs

    def place(self, state: Any, members: bool = False) -> Any:
        """Lay a state out over the devices as a chunk returns it (replicated, or as
        ``state_spec`` says), so that a fresh or restored state and a trained one hit the same
        compiled chunk."""
        specs = self.specs(state, members)
        if isinstance(specs, PartitionSpec):
            return jax.device_put(state, NamedSharding(self.mesh, specs))
        shardings = jax.tree.map(
            lambda spec: NamedSharding(self.mesh, spec),
            specs,
            is_leaf=lambda x: isinstance(x, PartitionSpec),
        )
        return jax.device_put(state, shardings)

    def run(
        self, updates: Callable, state: Any, num_updates: int, members: bool = False
    ) -> tuple[Any, Any]:
        """``num_updates`` updates of ``state`` in one compiled call.

        ``members=True``: ``state`` is a stack of train states (a leading axis, e.g. one per
        seed of a sweep), all trained at once by ``jax.vmap`` over that axis inside the same
        sharded program; metrics come back with the member axis first.
        """
        key = (*self._cache_key, num_updates, members)
        if key not in self._cache:

            def local_updates(state, local):
                return updates(state, local, num_updates=num_updates)

            if members:
                local_updates = jax.vmap(local_updates, in_axes=(0, None))
            specs = self.specs(state, members)
            # check_vma=False: recurrent scans start from replicated carries that become
            # per-device; the program is SPMD and correct, the flag only skips the type check.
            fn = jax.shard_map(
                local_updates,
                mesh=self.mesh,
                in_specs=(specs, PartitionSpec(self.axis)),
                out_specs=(specs, self._metrics_spec),
                check_vma=False,
            )
            self._cache[key] = jax.jit(fn)
        if self._indices is None:
            # Placed once: over several processes every device_put of host data is also a
            # cross-process equality check (an all-gather).
            self._indices = jax.device_put(
                np.arange(self.batch, dtype=np.int32),
                NamedSharding(self.mesh, PartitionSpec(self.axis)),
            )
        return self._cache[key](state, self._indices)


# --- configs from the command line and from files -------------------------------------------
# Every learner's Config is a frozen dataclass whose fields carry docstrings. The command line sets
# fields with ``--set FIELD=VALUE`` (values converted to the field's type by tyro) and whole
# configs with ``--config FILE`` (JSON or TOML); ``learn2rl train --help`` lists the fields with
# their types, defaults and docstrings (read by docstring_parser).


@dataclasses.dataclass(frozen=True)
class FieldDoc:
    name: str
    type: str
    default: Any
    doc: str


def config_fields(config_cls: type) -> list[FieldDoc]:
    """The fields of a learner's config with their types, defaults and docstrings."""
    import docstring_parser

    docs = {
        p.arg_name: p.description or ""
        for p in docstring_parser.parse_from_object(config_cls).params
    }
    hints = typing.get_type_hints(config_cls)
    out = []
    for field in dataclasses.fields(config_cls):
        kind = hints[field.name]
        name = getattr(kind, "__name__", None) if typing.get_origin(kind) is None else None
        default = field.default if field.default is not dataclasses.MISSING else None
        doc = " ".join(docs.get(field.name, "").split())
        out.append(FieldDoc(field.name, name or str(kind).replace("typing.", ""), default, doc))
    return out


def config_help(config_cls: type, learner: str) -> str:
    """The ``--help`` listing of a config: one entry per field, ``name (type, default): doc``."""
    lines = [f"Config fields of {learner} (--set FIELD=VALUE, or --config FILE):"]
    for f in config_fields(config_cls):
        lines.append(f"{f.name} ({f.type}, default {f.default!r}): {f.doc}")
    return "\n".join(lines)


def _convert(name: str, kind: Any, raw: str) -> Any:
    """``raw`` read as a value of the field's type (``none`` for an optional field's None)."""
    import contextlib
    import io

    import tyro

    args = typing.get_args(kind)
    if type(None) in args and raw.strip().lower() == "none":
        return None
    tokens = [raw]
    if typing.get_origin(kind) is tuple:  # hidden_sizes=64,64
        tokens = [part.strip() for part in raw.split(",") if part.strip()]
    elif kind is bool or (type(None) in args and bool in args):
        tokens = [
            {"true": "True", "1": "True", "false": "False", "0": "False"}.get(raw.lower(), raw)
        ]
    try:
        # tyro prints its own boxed message even with console_outputs=False; ours is one line.
        with contextlib.redirect_stderr(io.StringIO()):
            return tyro.cli(kind, args=tokens, console_outputs=False)
    except SystemExit:
        what = str(kind).replace("typing.", "") if typing.get_origin(kind) else kind.__name__
        raise Learn2RLError(f"--set {name}: cannot read {raw!r} as {what}") from None


def parse_overrides(config_cls: type, pairs: list[str]) -> dict[str, Any]:
    """``["num_tasks=512", "cell=lstm"]`` as typed field values (one-line errors otherwise)."""
    hints = typing.get_type_hints(config_cls)
    values = {}
    for pair in pairs:
        if "=" not in pair:
            raise Learn2RLError(f"--set takes FIELD=VALUE, got {pair!r}")
        name, raw = pair.split("=", 1)
        name = name.strip().replace("-", "_")
        if name not in hints or name not in {f.name for f in dataclasses.fields(config_cls)}:
            known = ", ".join(f.name for f in dataclasses.fields(config_cls))
            raise Learn2RLError(f"unknown config field {name!r}; known: {known}")
        values[name] = _convert(name, hints[name], raw.strip())
    return values


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Config values from a JSON or TOML file: a flat table of fields, or a file with a
    ``config`` table (a run's ``results.json`` or ``checkpoint/meta.json`` re-runs its config)."""
    import json
    import tomllib

    path = Path(path)
    if not path.is_file():
        raise Learn2RLError(f"--config: no such file {path}")
    text = path.read_text()
    try:
        values = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as err:
        kind = "TOML" if path.suffix == ".toml" else "JSON"
        raise Learn2RLError(f"--config {path}: not valid {kind}: {err}") from None
    if isinstance(values, dict) and isinstance(values.get("config"), dict):
        values = values["config"]
    if not isinstance(values, dict):
        raise Learn2RLError(f"--config {path}: expected a table of config fields")
    return values


def build_config(
    config_cls: type,
    base: Any = None,
    config_file: str | Path | None = None,
    pairs: list[str] | None = None,
    **fixed: Any,
) -> Any:
    """``base`` (default: the class defaults), then the file, then ``--set`` pairs, then the
    non-None ``fixed`` values (explicit flags such as ``--seed``); validated by the config."""
    values = (base if base is not None else config_cls()).to_dict()
    if config_file is not None:
        values.update(read_config_file(config_file))
    values.update(parse_overrides(config_cls, pairs or []))
    values.update({k: v for k, v in fixed.items() if v is not None})
    return config_cls.from_dict(values)


# --- config validation: one place for the checks every learner's Config makes --------------
def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_positive_ints(config: Any, *names: str, optional: bool = False) -> None:
    """Positive integers (``None`` allowed too when ``optional``)."""
    for name in names:
        value = getattr(config, name)
        if optional and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise Learn2RLError(f"config.{name} must be a positive integer, got {value!r}")


def check_non_negative_ints(config: Any, *names: str) -> None:
    """Integers >= 0 (counts and intervals where 0 switches something off)."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise Learn2RLError(f"config.{name} must be an integer >= 0, got {value!r}")


def check_positive(config: Any, *names: str, optional: bool = False) -> None:
    """Positive numbers (``None`` allowed too when ``optional``)."""
    for name in names:
        value = getattr(config, name)
        if optional and value is None:
            continue
        if not _number(value) or not value > 0:
            extra = " or None" if optional else ""
            raise Learn2RLError(f"config.{name} must be a positive number{extra}, got {value!r}")


def check_layer_sizes(config: Any, name: str = "hidden_sizes") -> None:
    """A non-empty tuple of positive integers (network layer widths)."""
    sizes = getattr(config, name)
    if not sizes or any(not isinstance(h, int) or isinstance(h, bool) or h <= 0 for h in sizes):
        raise Learn2RLError(f"config.{name} must be positive integers, got {sizes!r}")


def check_non_negative(config: Any, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not _number(value) or value < 0:
            raise Learn2RLError(f"config.{name} must be >= 0, got {value!r}")


def check_unit_interval(config: Any, *names: str, optional: bool = False) -> None:
    """Numbers in [0, 1] (discounts, GAE lambda); ``None`` allowed when ``optional``."""
    for name in names:
        value = getattr(config, name)
        if optional and value is None:
            continue
        if not _number(value) or not 0.0 <= value <= 1.0:
            raise Learn2RLError(f"config.{name} must lie in [0, 1], got {value!r}")


def check_choice(config: Any, name: str, choices: typing.Iterable[str]) -> None:
    choices = tuple(choices)
    value = getattr(config, name)
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise Learn2RLError(f"config.{name} must be one of {allowed}, got {value!r}")


def check_seed(config: Any) -> None:
    if not isinstance(config.seed, int) or isinstance(config.seed, bool) or config.seed < 0:
        raise Learn2RLError(f"config.seed must be a non-negative integer, got {config.seed!r}")


class ConfigMixin:
    """``replace`` / ``to_dict`` / ``from_dict`` for the learners' frozen dataclass configs.

    ``to_dict`` gives JSON-ready values (tuples as lists); ``from_dict`` reads them back and
    names unknown fields. ``learner`` (a class attribute) names the learner in that error.
    """

    learner: typing.ClassVar[str] = "learner"

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise Learn2RLError(
                f"unknown {cls.learner} config field(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


class SeedsOverDevices:
    """Sweeps' ``train_members`` for the learners that train one agent on one device (their
    ``train_chunk`` is a ``scanned_chunk`` of ``self._update``): the stacked seeds are the mesh
    axis ``members``, split over every device of every process by the device rule, and each
    device steps its own seeds by ``jax.vmap``. States and metrics stay split (metrics with the
    member axis first); ``distributed.to_host`` gathers them."""

    def member_chunks(self, count: int) -> ShardedChunks:
        """The mesh and compiled chunks for a stack of ``count`` seeds."""
        cache = self.__dict__.setdefault("_member_chunks", {})
        if count not in cache:
            cache[count] = ShardedChunks(
                count,
                "members",
                what="seeds",
                state_spec=lambda state: jax.tree.map(lambda _: PartitionSpec("members"), state),
                metrics_spec=PartitionSpec("members"),
            )
        return cache[count]

    def place_members(self, states: Any) -> Any:
        return self.member_chunks(_leading(states)).place(states)

    def train_members(self, states: Any, num_updates: int) -> tuple[Any, Any]:
        def updates(local, _indices, num_updates):
            return jax.vmap(lambda s: jax.lax.scan(self._update, s, None, num_updates))(local)

        return self.member_chunks(_leading(states)).run(updates, states, num_updates)


def _leading(states: Any) -> int:
    return jax.tree.leaves(states)[0].shape[0]


def scanned_chunk(cache: dict, update: Callable, state: Any, num_updates: int):
    """``num_updates`` steps of ``update(state, None) -> (state, metrics)`` as one
    ``jit(lax.scan)``, compiled once per count and kept in ``cache`` (the learner's own dict):
    the ``train_chunk`` of the learners that run on one device."""
    if num_updates not in cache:
        cache[num_updates] = jax.jit(lambda s: jax.lax.scan(update, s, None, num_updates))
    return cache[num_updates](state)
