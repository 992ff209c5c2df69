"""Checkpoints in a safe format: msgpack (flax.serialization) for arrays, JSON for metadata.

A checkpoint is a directory holding ``meta.json`` and one state file, ``state-<hash>.msgpack``.
The metadata records the learner, its full config, the update count, the state file's name and its
SHA-256, so a truncated or edited file, or a state that does not fit the config, is reported as
such instead of failing deep inside JAX.

Crash safety: a save writes the new state file under a new name (its content hash), then replaces
``meta.json`` atomically (write to a temporary name, fsync, rename), and only then deletes the old
state file. ``meta.json`` is the commit point: a run killed at any moment leaves a ``meta.json``
that names a complete state file, either the previous checkpoint's or the new one. (Format 1 wrote a
fixed ``state.msgpack`` before ``meta.json``; a kill between the two renames left a state that did
not match its checksum. Format-1 checkpoints are still read.) Nothing is ever pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from flax import serialization

from learn2rl.errors import Learn2RLError

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
LEGACY_STATE_FILE = "state.msgpack"  # format 1's fixed name
META_FILE = "meta.json"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save(directory: str | Path, state: Any, meta: dict[str, Any]) -> Path:
    """Write ``state`` (a pytree of arrays) and ``meta`` (JSON-able) to ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data = serialization.to_bytes(state)
    digest = hashlib.sha256(data).hexdigest()
    state_file = f"state-{digest[:16]}.msgpack"
    meta = {
        **meta,
        "format_version": FORMAT_VERSION,
        "state_file": state_file,
        "state_sha256": digest,
    }
    _atomic_write(directory / state_file, data)
    _atomic_write(directory / META_FILE, json.dumps(meta, indent=2).encode())  # the commit point
    for stale in directory.glob("state*.msgpack"):
        if stale.name != state_file:
            stale.unlink(missing_ok=True)
    return directory


def exists(directory: str | Path) -> bool:
    """True if ``directory`` holds a committed checkpoint (its ``meta.json``)."""
    return (Path(directory) / META_FILE).is_file()


def state_path(directory: str | Path) -> Path:
    """The state file the checkpoint in ``directory`` commits to."""
    directory = Path(directory)
    name = load_meta(directory).get("state_file", LEGACY_STATE_FILE)
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".msgpack"):
        raise Learn2RLError(f"corrupt checkpoint metadata in {directory}: bad state_file {name!r}")
    return directory / name


def load_meta(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    if not exists(directory):
        raise Learn2RLError(f"no checkpoint in {directory} (expected {META_FILE})")
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise Learn2RLError(f"corrupt checkpoint metadata {directory / META_FILE}: {err}") from None
    version = meta.get("format_version") if isinstance(meta, dict) else "?"
    if version not in READABLE_VERSIONS:
        raise Learn2RLError(
            f"checkpoint {directory} has format {version}, this learn2rl reads formats "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    return meta


def load_state(directory: str | Path, template: Any) -> Any:
    """Restore a state shaped like ``template``; raises ``Learn2RLError`` on any mismatch."""
    directory = Path(directory)
    meta = load_meta(directory)
    path = state_path(directory)
    if not path.is_file():
        raise Learn2RLError(
            f"corrupt checkpoint {directory}: its state file {path.name} is missing"
        )
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("state_sha256"):
        raise Learn2RLError(
            f"corrupt checkpoint {directory}: {path.name} does not match its checksum"
        )
    try:
        restored = serialization.from_bytes(template, data)
    except Exception as err:  # msgpack / structure errors come in many types
        raise Learn2RLError(f"checkpoint {directory} does not match this model: {err}") from None
    _check_shapes(template, restored, directory)
    return restored


def _check_shapes(template: Any, restored: Any, directory: Path) -> None:
    import jax

    for (path, want), got in zip(
        jax.tree_util.tree_leaves_with_path(template), jax.tree.leaves(restored), strict=True
    ):
        if getattr(want, "shape", None) != getattr(got, "shape", None):
            raise Learn2RLError(
                f"checkpoint {directory} does not match this model: "
                f"{jax.tree_util.keystr(path)} has shape {got.shape}, expected {want.shape}"
            )
