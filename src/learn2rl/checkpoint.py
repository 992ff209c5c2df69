"""Checkpoints through orbax-checkpoint: the last K kept, atomic commits, JSON metadata, no pickle.

Why orbax: its ``CheckpointManager`` already does what a run directory needs (keep the last K
checkpoints, write each one into a temporary directory and rename it into place when complete,
remove temporary directories a killed save left behind) and stores arrays with tensorstore, which
scales past what fits in one msgpack blob and checks its own index with CRC-32C.

A checkpoint directory (``runs/x/checkpoint``) holds one orbax step per kept checkpoint, named by
its update count::

    30/state/...           the train state: orbax's StandardCheckpointHandler (tensorstore zarr
                           arrays, JSON tree metadata; nothing is ever unpickled)
    30/meta/meta.json      learner, full config, update, train_seconds, provenance, format_version
                           and the SHA-256 of the state's arrays
    meta.json              a copy of the newest step's metadata for people and scripts

**Commit point.** orbax's rename of ``30.orbax-checkpoint-tmp-<time>`` to ``30``: a run killed at
any moment leaves the previous step intact and a temporary directory that the next save removes.
Saves are synchronous, so when ``save`` returns the checkpoint is committed. learn2rl reads only
the steps; the top-level ``meta.json`` is written after the commit, so after a kill it can lag one
checkpoint behind.

**Integrity.** The metadata records each array's name, dtype and shape (``state_layout``) and the
SHA-256 of the arrays' contents. Loading compares the layout with a freshly initialised state
before reading any array (orbax itself would cast a float32 array into a float16 template without
a word), so a checkpoint of another model "does not match this model"; after reading, the SHA-256
must match, so flipped or truncated bytes are reported as a corrupt checkpoint, never trained on
(tensorstore's CRC-32C catches some of them first). Every failure is a one-line ``Learn2RLError``.
The metadata itself is not checksummed: it is JSON that people may read and edit.

**Formats 1 and 2** (before orbax): ``meta.json`` plus one ``state*.msgpack`` (flax.serialization)
directly in the directory. They are still read; a resumed run continues in format 3 and removes the
old files once its first new checkpoint has committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from learn2rl import distributed
from learn2rl.errors import Learn2RLError

FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
DEFAULT_KEEP = 3
META_FILE = "meta.json"  # both the file inside each step's meta item and the top-level copy
LEGACY_STATE_FILE = "state.msgpack"  # format 1's fixed name
_STATE_ITEM = "state"
_META_ITEM = "meta"


class Checkpoints:
    """The checkpoints of one run directory, open for writing: ``save`` commits one and keeps the
    newest ``keep``. Opening removes the temporary directories of saves that were killed."""

    def __init__(self, directory: str | Path, keep: int = DEFAULT_KEEP):
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise Learn2RLError(f"keep must be a whole number of checkpoints >= 1, got {keep!r}")
        self.directory = Path(directory)
        self.keep = keep
        self._manager = _manager(self.directory, keep=keep)

    def save(self, state: Any, meta: dict[str, Any]) -> Path:
        """Commit ``state`` (a pytree of arrays) with ``meta`` (JSON-able, with an int ``update``,
        which names the checkpoint) and return the directory."""
        import jax
        import orbax.checkpoint as ocp

        update = meta.get("update")
        if isinstance(update, bool) or not isinstance(update, int) or update < 0:
            raise Learn2RLError(f"checkpoint metadata needs an update count >= 0, got {update!r}")
        # Host numpy arrays: a checkpoint must not depend on how many devices wrote it.
        host = jax.device_get(state)
        meta = {
            **meta,
            "format_version": FORMAT_VERSION,
            "state_sha256": _state_digest(host),
            "state_layout": _layout(host),
        }
        if "provenance" not in meta:
            from learn2rl.provenance import run_info

            meta["provenance"] = [{"from_update": update, **run_info()}]
        saved = self._manager.save(
            update,
            args=ocp.args.Composite(
                **{_STATE_ITEM: ocp.args.StandardSave(host), _META_ITEM: ocp.args.JsonSave(meta)}
            ),
        )
        self._manager.wait_until_finished()
        if not saved:  # orbax skips, silently, a step at or before its newest one
            raise Learn2RLError(
                f"{self.directory} already holds a checkpoint at update "
                f"{self._manager.latest_step()}; cannot save update {update} after it"
            )
        kept = [int(s) for s in self._manager.all_steps()]
        atomic_write(
            self.directory / META_FILE,
            json.dumps({**meta, "kept_updates": sorted(kept)}, indent=2).encode(),
        )
        for legacy in self.directory.glob("state*.msgpack"):
            legacy.unlink(missing_ok=True)
        return self.directory

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def save(directory: str | Path, state: Any, meta: dict[str, Any], keep: int = DEFAULT_KEEP) -> Path:
    """Commit one checkpoint to ``directory`` (see ``Checkpoints.save``)."""
    with Checkpoints(directory, keep) as checkpoints:
        return checkpoints.save(state, meta)


def exists(directory: str | Path) -> bool:
    """True if ``directory`` holds a committed checkpoint (of any readable format)."""
    directory = Path(directory)
    return bool(_step_dirs(directory)) or (directory / META_FILE).is_file()


def updates(directory: str | Path) -> list[int]:
    """The update counts of the checkpoints kept in ``directory``, oldest first."""
    directory = Path(directory)
    steps = _step_dirs(directory)
    if steps:
        return sorted(steps)
    return [load_meta(directory)["update"]] if exists(directory) else []


def load_meta(directory: str | Path) -> dict[str, Any]:
    """The metadata of the newest checkpoint in ``directory``."""
    directory = Path(directory)
    steps = _step_dirs(directory)
    if steps:
        update = max(steps)
        return _step_meta(directory, update, steps[update])
    if not (directory / META_FILE).is_file():
        raise Learn2RLError(f"no checkpoint in {directory}")
    meta = _read_json(directory / META_FILE, directory)
    version = meta.get("format_version")
    if version == FORMAT_VERSION:
        raise Learn2RLError(
            f"corrupt checkpoint {directory}: {META_FILE} names update {meta.get('update')}, "
            "but no checkpoint step is left beside it"
        )
    _check_version(version, directory)
    return meta


def load_state(directory: str | Path, template: Any) -> Any:
    """Restore the newest checkpoint's state, shaped like ``template`` (a fresh state of the same
    model), as host arrays; raises ``Learn2RLError`` on any mismatch or corruption."""

    directory = Path(directory)
    steps = _step_dirs(directory)
    if not steps:
        return _legacy_load_state(directory, template)
    update = max(steps)
    meta = _step_meta(directory, update, steps[update])
    where = f"checkpoint {directory} (update {update})"
    template = distributed.to_host(template)
    _check_layout(template, meta.get("state_layout"), where)
    with _quiet_orbax():
        restored = _restore_arrays(directory, update, template, where)
    if _state_digest(restored) != meta.get("state_sha256"):
        raise Learn2RLError(f"corrupt {where}: its arrays do not match their checksum")
    return restored


# --- orbax plumbing -----------------------------------------------------------------------------
def _manager(directory: Path, keep: int | None = None):
    """A CheckpointManager; with ``keep`` it may write (and clean up), without it only reads."""
    import jax
    import orbax.checkpoint as ocp

    write = keep is not None
    # In a multi-process run only process 0 writes, and every process reads on its own: orbax
    # must not wait for the other processes at its barriers (they never open this manager).
    me = jax.process_index()
    alone = {}
    if jax.process_count() > 1:
        if write:  # orbax creates directories only with every process taking part
            directory.mkdir(parents=True, exist_ok=True)
        alone["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
            primary_host=me, active_processes={me}, barrier_sync_key_prefix=f"learn2rl{me}"
        )
    options = ocp.CheckpointManagerOptions(
        **alone,
        enable_async_checkpointing=False,
        create=write and not alone,
        # Only a writer may remove temporary directories: a reader (`learn2rl evaluate` on a run
        # that is still training) would delete the save in progress.
        cleanup_tmp_directories=write,
        preservation_policy=ocp.checkpoint_managers.LatestN(n=keep) if write else None,
    )
    handlers = {
        _STATE_ITEM: ocp.StandardCheckpointHandler(**alone),
        _META_ITEM: ocp.JsonCheckpointHandler(filename=META_FILE),
    }
    return ocp.CheckpointManager(directory.absolute(), options=options, item_handlers=handlers)


def _step_dirs(directory: Path) -> dict[int, Path]:
    """Finalized orbax steps in ``directory``, by update (unfinished saves are not steps)."""
    if not directory.is_dir():
        return {}
    import orbax.checkpoint as ocp

    steps = {}
    for path in ocp.utils.checkpoint_steps_paths(directory):
        try:
            steps[int(ocp.utils.step_from_checkpoint_name(path.name))] = Path(path)
        except ValueError:
            continue
    return steps


def _step_meta(directory: Path, update: int, step_dir: Path) -> dict[str, Any]:
    path = step_dir / _META_ITEM / META_FILE
    if not path.is_file():
        raise Learn2RLError(f"corrupt checkpoint {directory} (update {update}): {path} is missing")
    meta = _read_json(path, directory)
    _check_version(meta.get("format_version"), directory)
    if meta.get("update") != update:
        raise Learn2RLError(
            f"corrupt checkpoint {directory}: step {update} says it is update {meta.get('update')}"
        )
    return meta


def _restore_arrays(directory: Path, update: int, template: Any, where: str) -> Any:
    import orbax.checkpoint as ocp

    # When one array read fails, orbax closes its event loop while tensorstore still has other
    # reads in flight; each of their completions then reports "Event loop is closed" as an
    # unraisable exception (a traceback on stderr, after the call returned). They carry no
    # information, so after a failed read they are dropped for good; every other unraisable
    # exception still shows.
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _drop_closed_loop_callbacks(previous_hook)
    try:
        manager = _manager(directory)
        try:
            restored = manager.restore(
                update,
                args=ocp.args.Composite(**{_STATE_ITEM: ocp.args.StandardRestore(template)}),
            )[_STATE_ITEM]
        finally:
            manager.close()
    except Exception as err:  # tensorstore / orbax raise ValueError, OSError, KeyError, ...
        raise Learn2RLError(f"corrupt {where}: cannot read its arrays: {_line(err)}") from None
    sys.unraisablehook = previous_hook
    return restored


def _drop_closed_loop_callbacks(previous):
    if getattr(previous, "learn2rl_drops_closed_loop_callbacks", False):
        return previous

    def hook(args) -> None:
        tb = args.exc_traceback
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if (
            isinstance(args.exc_value, RuntimeError)
            and str(args.exc_value) == "Event loop is closed"
            and tb is not None
            and tb.tb_frame.f_code.co_name == "_check_closed"
        ):
            return
        previous(args)

    hook.learn2rl_drops_closed_loop_callbacks = True
    return hook


@contextlib.contextmanager
def _quiet_orbax() -> Iterator[None]:
    """Hold back orbax's log lines: a damaged checkpoint must end in one ``error:`` line, not in
    that line plus orbax's ERROR messages about the same damage."""
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _layout(state: Any) -> dict[str, list]:
    """``{leaf name: [dtype, shape]}``: what a model's state looks like, recorded in the metadata
    so that a checkpoint of another model is told apart from a damaged one."""
    import jax

    return {
        _leaf_name(path): [str(np.asarray(leaf).dtype), list(np.shape(leaf))]
        for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]
    }


def _leaf_name(path) -> str:
    parts = (getattr(k, "key", getattr(k, "name", getattr(k, "idx", k))) for k in path)
    return ".".join(str(part) for part in parts)


def _check_layout(template: Any, recorded: Any, where: str) -> None:
    if not isinstance(recorded, dict):
        raise Learn2RLError(f"corrupt {where}: its metadata has no state_layout")
    want = _layout(template)
    missing = [name for name in want if name not in recorded]
    extra = [name for name in recorded if name not in want]
    if missing or extra:
        what = f"{missing[0]} is missing" if missing else f"it has an unexpected {extra[0]}"
        raise Learn2RLError(f"{where} does not match this model: {what}")
    for name, (dtype, shape) in want.items():
        got = recorded[name]
        if not isinstance(got, list) or len(got) != 2 or got != [dtype, shape]:
            got_text = (
                f"{got[0]}{tuple(got[1])}" if isinstance(got, list) and len(got) == 2 else got
            )
            raise Learn2RLError(
                f"{where} does not match this model: {name} is {got_text}, "
                f"this model has {dtype}{tuple(shape)}"
            )


def _state_digest(state: Any) -> str:
    """SHA-256 over every array's path, dtype, shape and bytes: a checksum of the content, so it
    does not depend on how orbax lays the arrays out in files."""
    import jax

    digest = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        array = np.ascontiguousarray(leaf)
        header = f"{jax.tree_util.keystr(path)}|{array.dtype.str}|{array.shape}|"
        digest.update(header.encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


# --- shared helpers -----------------------------------------------------------------------------
def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` whole or not at all: into a temporary file of this process
    beside it, then renamed into place, so a reader (another process on the same directory)
    never sees half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_json(path: Path, directory: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        raise Learn2RLError(f"corrupt checkpoint metadata {path}: {_line(err)}") from None
    if not isinstance(meta, dict):
        raise Learn2RLError(f"corrupt checkpoint metadata {path}: not a JSON object")
    return meta


def _check_version(version: Any, directory: Path) -> None:
    if version not in READABLE_VERSIONS:
        raise Learn2RLError(
            f"checkpoint {directory} has format {version}, this learn2rl reads formats "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )


def _line(err: BaseException) -> str:
    """An exception as one short line (tensorstore's messages run to kilobytes of JSON spec)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# --- formats 1 and 2: meta.json + state*.msgpack, read only --------------------------------------
def _legacy_load_state(directory: Path, template: Any) -> Any:
    import jax
    from flax import serialization

    meta = load_meta(directory)
    name = meta.get("state_file", LEGACY_STATE_FILE)
    if not isinstance(name, str) or Path(name).name != name or not name.endswith(".msgpack"):
        raise Learn2RLError(f"corrupt checkpoint metadata in {directory}: bad state_file {name!r}")
    path = directory / name
    if not path.is_file():
        raise Learn2RLError(f"corrupt checkpoint {directory}: its state file {name} is missing")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != meta.get("state_sha256"):
        raise Learn2RLError(f"corrupt checkpoint {directory}: {name} does not match its checksum")
    template = distributed.to_host(template)
    try:
        # flax.serialization reads msgpack (plain data, no code) into the template's structure.
        restored = serialization.from_bytes(template, data)
    except Exception as err:  # msgpack / structure errors come in many types
        raise Learn2RLError(
            f"checkpoint {directory} does not match this model: {_line(err)}"
        ) from None
    for (key, want), got in zip(
        jax.tree_util.tree_leaves_with_path(template), jax.tree.leaves(restored), strict=True
    ):
        if np.shape(want) != np.shape(got):
            raise Learn2RLError(
                f"checkpoint {directory} does not match this model: "
                f"{jax.tree_util.keystr(key)} has shape {np.shape(got)}, expected {np.shape(want)}"
            )
    return restored
