"""Checkpoints in a safe format: msgpack (flax.serialization) for arrays, JSON for metadata.

A checkpoint is a directory holding ``state.msgpack`` and ``meta.json``. The metadata records the
learner, its full config, the update count and the SHA-256 of the state file, so a truncated or
edited file, or a state that does not fit the config, is reported as such instead of failing deep
inside JAX. Files are written to a temporary name and renamed, so a run killed mid-write leaves the
previous checkpoint intact. Nothing is ever pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from flax import serialization

from learn2rl.errors import Learn2RLError

FORMAT_VERSION = 1
STATE_FILE = "state.msgpack"
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
    meta = {
        **meta,
        "format_version": FORMAT_VERSION,
        "state_sha256": hashlib.sha256(data).hexdigest(),
    }
    _atomic_write(directory / STATE_FILE, data)
    _atomic_write(directory / META_FILE, json.dumps(meta, indent=2).encode())
    return directory


def exists(directory: str | Path) -> bool:
    directory = Path(directory)
    return (directory / META_FILE).is_file() and (directory / STATE_FILE).is_file()


def load_meta(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    if not exists(directory):
        raise Learn2RLError(f"no checkpoint in {directory} (expected {META_FILE} and {STATE_FILE})")
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise Learn2RLError(f"corrupt checkpoint metadata {directory / META_FILE}: {err}") from None
    version = meta.get("format_version") if isinstance(meta, dict) else "?"
    if version != FORMAT_VERSION:
        raise Learn2RLError(
            f"checkpoint {directory} has format {version}"
            f", this learn2rl reads format {FORMAT_VERSION}"
        )
    return meta


def load_state(directory: str | Path, template: Any) -> Any:
    """Restore a state shaped like ``template``; raises ``Learn2RLError`` on any mismatch."""
    directory = Path(directory)
    meta = load_meta(directory)
    data = (directory / STATE_FILE).read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("state_sha256"):
        raise Learn2RLError(
            f"corrupt checkpoint {directory}: {STATE_FILE} does not match its checksum"
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
