"""Checkpoints: exact round trips, the last K kept, kill safety, corruption and mismatch reported in
one line, no code run on load, and the formats before orbax still read."""

import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from typing import NamedTuple

import numpy as np
import pytest
from flax import serialization

from learn2rl import checkpoint
from learn2rl.errors import Learn2RLError


class Moments(NamedTuple):
    count: np.ndarray
    mu: dict


def make_state(value: float = 0.0, big: int = 64 * 1024) -> dict:
    """A pytree shaped like a train state: nested dicts, a NamedTuple, an empty node, several
    dtypes, a scalar, and one array large enough to be stored outside orbax's index."""
    return {
        "params": {"w": np.arange(12, dtype=np.float32).reshape(3, 4) + value, "b": np.ones(4)},
        "opt": ((), Moments(count=np.int32(value), mu={"w": np.full((3, 4), value, np.float16)})),
        "big": np.linspace(value, value + 1, big, dtype=np.float32),
        "key": np.array([7, int(value)], dtype=np.uint32),
        "done": np.array([True, False]),
    }


def leaves(tree):
    import jax

    return jax.tree.leaves(tree)


def assert_identical(a, b):
    import jax

    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(leaves(a), leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def test_round_trip_is_exact_and_metadata_is_json(tmp_path):
    state = make_state(3.0)
    meta = {"learner": "x", "config": {"a": [1, 2], "b": None}, "update": 3, "train_seconds": 1.5}
    checkpoint.save(tmp_path, state, meta)
    assert checkpoint.exists(tmp_path) and checkpoint.updates(tmp_path) == [3]
    assert_identical(checkpoint.load_state(tmp_path, make_state()), state)
    loaded = checkpoint.load_meta(tmp_path)
    assert {k: loaded[k] for k in meta} == meta
    assert loaded["format_version"] == checkpoint.FORMAT_VERSION
    assert set(loaded["provenance"][0]) == {"from_update", "learn2rl_version", "git_revision"}
    # The same metadata is plain JSON inside the step and (for people) at the top.
    inside = json.loads((tmp_path / "3" / "meta" / checkpoint.META_FILE).read_text())
    top = json.loads((tmp_path / checkpoint.META_FILE).read_text())
    assert inside == loaded and top["update"] == 3 and top["kept_updates"] == [3]


def test_only_the_newest_keep_checkpoints_stay(tmp_path):
    with checkpoint.Checkpoints(tmp_path, keep=2) as checkpoints:
        for update in range(5):
            checkpoints.save(make_state(update), {"update": update})
    assert checkpoint.updates(tmp_path) == [3, 4]
    assert checkpoint.load_meta(tmp_path)["update"] == 4
    assert_identical(checkpoint.load_state(tmp_path, make_state()), make_state(4))
    with pytest.raises(Learn2RLError, match="keep"):
        checkpoint.Checkpoints(tmp_path, keep=0)


def test_a_save_cannot_go_back_in_time(tmp_path):
    checkpoint.save(tmp_path, make_state(), {"update": 5})
    with pytest.raises(Learn2RLError, match="already holds a checkpoint at update 5"):
        checkpoint.save(tmp_path, make_state(), {"update": 4})
    with pytest.raises(Learn2RLError, match="update count"):
        checkpoint.save(tmp_path, make_state(), {"learner": "x"})


def test_an_unfinished_save_is_ignored_by_readers_and_removed_by_the_next_writer(tmp_path):
    """What a save killed before its commit point leaves: orbax's temporary directory."""
    checkpoint.save(tmp_path, make_state(1.0), {"update": 1})
    unfinished = tmp_path / "2.orbax-checkpoint-tmp-1234567"
    (unfinished / "state").mkdir(parents=True)
    (unfinished / "state" / "_METADATA").write_text("{half")
    assert checkpoint.updates(tmp_path) == [1]
    assert_identical(checkpoint.load_state(tmp_path, make_state()), make_state(1.0))
    assert unfinished.exists(), "a reader must not delete what may be a save in progress"
    checkpoint.save(tmp_path, make_state(2.0), {"update": 2})
    assert not unfinished.exists() and checkpoint.updates(tmp_path) == [1, 2]
    assert_identical(checkpoint.load_state(tmp_path, make_state()), make_state(2.0))


def _saved(tmp_path):
    directory = tmp_path / "ckpt"
    checkpoint.save(directory, make_state(1.0), {"update": 1})
    return directory


def _state_files(directory):
    step = directory / "1" / "state"
    return sorted(p for p in step.rglob("*") if p.is_file() and p.stat().st_size > 0)


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_damaged_state_files_never_load_as_other_numbers(tmp_path, capfd, damage):
    """Whatever file of the state is damaged, loading either fails with one line or returns the
    saved numbers exactly (a damaged file orbax does not read), never different numbers."""
    pristine = _saved(tmp_path)
    failures = 0
    for index in range(len(_state_files(pristine))):
        directory = tmp_path / f"copy{index}"
        shutil.copytree(pristine, directory)
        path = _state_files(directory)[index]
        data = bytearray(path.read_bytes())
        if damage == "flip":
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
        elif damage == "truncate":
            path.write_bytes(bytes(data[: len(data) // 2]))
        else:
            path.unlink()
        try:
            restored = checkpoint.load_state(directory, make_state())
        except Learn2RLError as err:
            failures += 1
            assert "\n" not in str(err) and str(err).startswith("corrupt checkpoint"), str(err)
            assert len(str(err)) < 400
        else:
            assert_identical(restored, make_state(1.0))
    assert failures > 0
    time.sleep(0.5)  # tensorstore reads still in flight after a failure report late
    assert "Traceback" not in capfd.readouterr().err


def test_damaged_or_missing_metadata_is_one_line(tmp_path):
    directory = _saved(tmp_path)
    step_meta = directory / "1" / "meta" / checkpoint.META_FILE
    step_meta.write_text("{not json")
    with pytest.raises(Learn2RLError, match="corrupt checkpoint metadata"):
        checkpoint.load_meta(directory)
    step_meta.write_text(json.dumps({"update": 1, "format_version": 99}))
    with pytest.raises(Learn2RLError, match="has format 99, this learn2rl reads formats 1, 2, 3"):
        checkpoint.load_state(directory, make_state())
    step_meta.write_text(json.dumps({"update": 7, "format_version": 3}))
    with pytest.raises(Learn2RLError, match="step 1 says it is update 7"):
        checkpoint.load_meta(directory)
    shutil.rmtree(directory / "1")
    with pytest.raises(Learn2RLError, match="no checkpoint step is left"):
        checkpoint.load_meta(directory)
    with pytest.raises(Learn2RLError, match="no checkpoint in"):
        checkpoint.load_meta(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "change,message",
    [
        (
            lambda s: s["params"].update(w=np.zeros((3, 5), np.float32)),
            r"params\.w is float32\(3, 4\)",
        ),
        (
            lambda s: s["params"].update(b=s["params"]["b"].astype(np.float32)),
            "params.b is float64",
        ),
        (lambda s: s["params"].pop("b"), "unexpected params.b"),
        (lambda s: s["params"].update(c=np.zeros(2)), "params.c is missing"),
    ],
)
def test_a_checkpoint_of_another_model_does_not_match(tmp_path, change, message):
    directory = _saved(tmp_path)
    template = make_state()
    change(template)
    with pytest.raises(Learn2RLError, match="does not match this model") as err:
        checkpoint.load_state(directory, template)
    assert err.match(message) and "\n" not in str(err.value)


def test_loading_never_unpickles(tmp_path, monkeypatch):
    import _pickle

    directory = _saved(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint load tried to unpickle")

    for module in (pickle, _pickle):
        for name in ("load", "loads", "Unpickler"):
            monkeypatch.setattr(module, name, refuse)
    assert_identical(checkpoint.load_state(directory, make_state()), make_state(1.0))
    for path in directory.rglob("*"):
        if path.is_file():
            assert not path.read_bytes().startswith(b"\x80"), f"{path} looks like a pickle"


def _write_legacy(directory, state, meta, version):
    """A checkpoint exactly as formats 1 and 2 wrote it: flax msgpack + meta.json, no orbax."""
    directory.mkdir(parents=True)
    data = serialization.to_bytes(state)
    digest = hashlib.sha256(data).hexdigest()
    name = "state.msgpack" if version == 1 else f"state-{digest[:16]}.msgpack"
    (directory / name).write_bytes(data)
    meta = {**meta, "format_version": version, "state_sha256": digest}
    if version == 2:
        meta["state_file"] = name
    (directory / "meta.json").write_text(json.dumps(meta, indent=2))


@pytest.mark.parametrize("version", [1, 2])
def test_formats_1_and_2_are_still_read(tmp_path, version):
    state = make_state(2.0)
    _write_legacy(tmp_path / "old", state, {"learner": "x", "update": 2}, version)
    assert checkpoint.exists(tmp_path / "old") and checkpoint.updates(tmp_path / "old") == [2]
    assert checkpoint.load_meta(tmp_path / "old")["update"] == 2
    restored = checkpoint.load_state(tmp_path / "old", make_state())
    for x, y in zip(leaves(restored), leaves(state), strict=True):
        np.testing.assert_array_equal(x, y)
    # A damaged old checkpoint is reported as before.
    state_file = next((tmp_path / "old").glob("state*.msgpack"))
    state_file.write_bytes(state_file.read_bytes()[:-3])
    with pytest.raises(Learn2RLError, match="does not match its checksum"):
        checkpoint.load_state(tmp_path / "old", make_state())


def test_an_old_checkpoint_continues_in_the_new_format(tmp_path):
    directory = tmp_path / "old"
    _write_legacy(directory, make_state(2.0), {"update": 2}, 2)
    checkpoint.save(directory, make_state(4.0), {"update": 4})
    assert not list(directory.glob("*.msgpack")) and checkpoint.updates(directory) == [4]
    assert_identical(checkpoint.load_state(directory, make_state()), make_state(4.0))


_SAVE_FOREVER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from test_checkpoint import make_state
    from learn2rl import checkpoint

    with checkpoint.Checkpoints(sys.argv[1], keep=2) as checkpoints:
        update = checkpoint.updates(sys.argv[1])[-1] + 1 if checkpoint.exists(sys.argv[1]) else 0
        while True:
            checkpoints.save(make_state(update, big=1 << 20), {"update": update})
            print(update, flush=True)
            update += 1
    """
)


@pytest.mark.long
def test_kill_9_during_saves_always_leaves_a_loadable_checkpoint(tmp_path):
    """SIGKILL a process that does nothing but save (4 MB states), at random moments."""
    rng = np.random.default_rng(0)
    directory = tmp_path / "ckpt"
    env = {**os.environ, "LEARN2RL_CPU_DEVICES": "0"}
    tests_dir = os.path.dirname(__file__)
    for _ in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", _SAVE_FOREVER, str(directory), tests_dir],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        proc.stdout.readline()  # one save committed: the process is in its save loop
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        update = checkpoint.load_meta(directory)["update"]
        restored = checkpoint.load_state(directory, make_state(big=1 << 20))
        assert_identical(restored, make_state(update, big=1 << 20))


def _rl2_run(directory, hidden_size=8, saved_hidden_size=None):
    """A run directory whose checkpoint the runner could have written at update 0 (no training,
    so nothing is compiled). ``saved_hidden_size`` saves the state of another model."""
    from learn2rl import runner
    from learn2rl.learners.rl2 import RL2, Config
    from learn2rl.tasks import make

    config = Config(
        task="bandit/independent-2arm", num_episodes=10, hidden_size=hidden_size, num_tasks=8
    )
    saved = config.replace(hidden_size=saved_hidden_size or hidden_size)
    state = RL2(saved, make(saved.task)).init()
    meta = runner.checkpoint_meta("rl2", config, 0)
    checkpoint.save(directory / runner.CHECKPOINT_DIR, state, meta)
    return directory / runner.CHECKPOINT_DIR


@pytest.mark.slow
def test_the_cli_reports_corrupt_and_mismatched_checkpoints_in_one_line(tmp_path, capsys):
    from learn2rl.cli import main

    def error_of(*args):
        assert main(list(args)) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
        return err

    _rl2_run(tmp_path / "other", saved_hidden_size=4)
    out = ["--out", str(tmp_path / "out")]
    err = error_of("evaluate", "--checkpoint", str(tmp_path / "other"), *out)
    assert "does not match this model: params.params.core.hidden.bias is float32(12,)" in err
    ckpt = _rl2_run(tmp_path / "run")
    for path in (ckpt / "0" / "state").rglob("*"):
        if path.is_file() and path.stat().st_size:
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
    err = error_of("evaluate", "--checkpoint", str(tmp_path / "run"), *out)
    assert err.startswith("error: corrupt checkpoint")
    (ckpt / "0" / "meta" / checkpoint.META_FILE).write_text("{not json")
    err = error_of("train", "--out", str(tmp_path / "run"), "--resume", "--no-progress")
    assert "corrupt checkpoint metadata" in err


@pytest.mark.long
def test_a_damaged_checkpoint_is_one_line_on_stderr_of_the_real_command(tmp_path):
    """The whole stderr of ``learn2rl evaluate`` on damaged arrays, late tensorstore reports
    included."""
    ckpt = _rl2_run(tmp_path / "run")
    for path in (ckpt / "0" / "state" / "d").iterdir():
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    args = ["evaluate", "--checkpoint", str(tmp_path / "run"), "--out", str(tmp_path / "e")]
    done = subprocess.run(
        [sys.executable, "-m", "learn2rl.cli", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: corrupt checkpoint"), done.stderr
