"""The training loop: a run records what it is before its first chunk, stops cleanly when training
diverges (keeping the last good checkpoint resumable), keeps the last K checkpoints, and resumes
old-format checkpoints to the same result as an uninterrupted run."""

import hashlib
import json
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import serialization

from learn2rl import checkpoint, runner
from learn2rl.errors import Learn2RLError
from learn2rl.learners.rl2 import RL2
from learn2rl.logging import read_metrics
from tests.conftest import TINY_CONFIG

CONFIG = TINY_CONFIG


class Killed(Exception):
    """Stands in for a SIGKILL in the middle of a chunk."""


_LEARNERS = {}
_build = runner.build


def _shared_build(name, config):
    """Every run of CONFIG in this file shares one learner and so one compiled chunk: what is
    tested is the loop around the chunks, and compiling takes most of a tiny run's time. (The
    kill-and-resume test in test_cli.py resumes in a fresh process.)"""
    if (name, config) not in _LEARNERS:
        _LEARNERS[name, config] = _build(name, config)
    return _LEARNERS[name, config]


@pytest.fixture(autouse=True)
def one_learner_per_config(monkeypatch):
    monkeypatch.setattr(runner, "build", _shared_build)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: its final state and metrics.jsonl rows."""
    out = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "build", _shared_build)
        _, state = runner.train("rl2", CONFIG, out, progress=False)
    return jax.device_get(state), read_metrics(out / "metrics.jsonl")


def assert_same_run(out, reference):
    _, state, _ = runner.load_learner(out / runner.CHECKPOINT_DIR)
    for a, b in zip(jax.tree.leaves(reference[0]), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(a, b)
    assert read_metrics(out / "metrics.jsonl") == reference[1]


def patch_chunks(monkeypatch, change):
    """Run ``change(first_update, state, metrics)`` on every chunk's output; returns the undo."""
    original = RL2.train_chunk

    def train_chunk(self, state, n):
        first = int(state.update)
        state, metrics = original(self, state, n)
        return change(first, state, {k: np.array(v) for k, v in metrics.items()})

    monkeypatch.setattr(RL2, "train_chunk", train_chunk)
    return lambda: monkeypatch.setattr(RL2, "train_chunk", original)


@pytest.mark.slow
def test_a_run_records_what_it_is_before_its_first_chunk(tmp_path, monkeypatch, reference):
    out = tmp_path / "run"
    seen = {}

    def die_in_the_first_chunk(first, state, metrics):
        seen["meta"] = checkpoint.load_meta(out / runner.CHECKPOINT_DIR)
        raise Killed

    unpatch = patch_chunks(monkeypatch, die_in_the_first_chunk)
    with pytest.raises(Killed):
        runner.train("rl2", CONFIG, out, progress=False)
    meta = seen["meta"]
    assert meta["update"] == 0 and meta["learner"] == "rl2"
    assert meta["config"] == CONFIG.to_dict()
    from learn2rl import __version__

    (segment,) = meta["provenance"]
    assert segment["from_update"] == 0 and segment["learn2rl_version"] == __version__
    assert "git_revision" in segment
    unpatch()
    runner.train("rl2", CONFIG, out, resume=True, progress=False)
    assert_same_run(out, reference)


def test_divergence_stops_at_the_first_bad_update_and_keeps_the_last_good_checkpoint(
    tmp_path, monkeypatch, reference
):
    out = tmp_path / "run"

    def nan_at_update_5(first, state, metrics):
        if first == 4:  # the chunk of updates 5 and 6
            metrics["value_loss"][0] = np.nan
            metrics["trial_return"][1] = np.inf
        return state, metrics

    unpatch = patch_chunks(monkeypatch, nan_at_update_5)
    with pytest.raises(Learn2RLError) as err:
        runner.train("rl2", CONFIG, out, progress=False)
    ckpt = out / runner.CHECKPOINT_DIR
    assert str(err.value) == (
        "training diverged at update 5: value_loss is nan; "
        f"the last good checkpoint (update 4) is in {ckpt}"
    )
    assert checkpoint.updates(ckpt) == [0, 2, 4]
    assert read_metrics(out / "metrics.jsonl")[-1]["update"] == 4
    # The last good checkpoint resumes to the uninterrupted run (once the cause is gone).
    unpatch()
    runner.train("rl2", CONFIG, out, resume=True, progress=False)
    assert_same_run(out, reference)


def test_a_non_finite_train_state_is_divergence_too(tmp_path, monkeypatch):
    def inf_in_the_parameters(first, state, metrics):
        if first == 2:
            state = state.replace(
                params=jax.tree.map(lambda p: p.at[..., 0].set(-np.inf), state.params)
            )
        return state, metrics

    patch_chunks(monkeypatch, inf_in_the_parameters)
    with pytest.raises(
        Learn2RLError, match=r"diverged by update 4: the train state's \.params"
    ) as err:
        runner.train("rl2", CONFIG, tmp_path, progress=False)
    assert "is -inf; the last good checkpoint (update 2)" in str(err.value)
    assert checkpoint.load_meta(tmp_path / runner.CHECKPOINT_DIR)["update"] == 2


def test_non_finite_pins_each_problem_to_its_update():
    metrics = {"loss": np.array([1.0, 2.0, np.inf]), "count": np.array([1, 2, 3])}
    state = {"w": np.ones(2, np.float32)}
    assert runner.non_finite(10, metrics, state) == "at update 13: loss is inf"
    metrics["grads"] = np.array([[0.0, 1.0], [np.nan, 0.0], [0.0, 0.0]])
    assert runner.non_finite(10, metrics, state) == "at update 12: grads is nan"
    clean = {"loss": np.ones(3)}
    assert runner.non_finite(10, clean, state) is None
    assert runner.non_finite(10, clean, {"w": np.array([np.nan])}) == (
        "by update 13: the train state's ['w'] is nan"
    )


@pytest.mark.long
def test_the_cli_reports_divergence_in_one_line_with_exit_status_2(tmp_path):
    """A learning rate of 1e38 overflows Adam's first step: the entropy is NaN at update 2."""
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--updates", "6", "--no-progress"]
    for setting in ["num_episodes=10", "hidden_size=8", "num_tasks=8", "updates_per_chunk=2"]:
        args += ["--set", setting]
    args += ["--set", "learning_rate=1e38", "--set", "final_learning_rate=1e38"]
    done = subprocess.run(
        [sys.executable, "-m", "learn2rl.cli", *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: training diverged at update 2: ")
    assert "is nan; the last good checkpoint (update 0)" in lines[0]
    assert checkpoint.updates(out / runner.CHECKPOINT_DIR) == [0]


def test_keep_and_provenance_across_a_resume_with_other_code(tmp_path, monkeypatch, reference):
    runner.train("rl2", CONFIG, tmp_path, progress=False, stop_at=2, keep=2)
    other = {"learn2rl_version": "9.9.9", "git_revision": "f" * 40 + "-dirty"}
    monkeypatch.setattr(runner, "run_info", lambda: dict(other))
    runner.train("rl2", CONFIG, tmp_path, resume=True, progress=False, keep=2)
    ckpt = tmp_path / runner.CHECKPOINT_DIR
    assert checkpoint.updates(ckpt) == [4, 6]
    first, second = checkpoint.load_meta(ckpt)["provenance"]
    assert first["from_update"] == 0 and first["learn2rl_version"] != "9.9.9"
    assert second == {"from_update": 2, **other}
    assert_same_run(tmp_path, reference)


def test_a_format_2_run_resumes_to_the_uninterrupted_result(tmp_path, reference):
    """A run cut at update 2 whose checkpoint the old code wrote (msgpack + meta.json)."""
    out = tmp_path / "run"
    runner.train("rl2", CONFIG, out, progress=False, stop_at=2)
    ckpt = out / runner.CHECKPOINT_DIR
    _, state, meta = runner.load_learner(ckpt)
    shutil.rmtree(ckpt)
    ckpt.mkdir()
    data = serialization.to_bytes(jax.device_get(state))
    digest = hashlib.sha256(data).hexdigest()
    (ckpt / f"state-{digest[:16]}.msgpack").write_bytes(data)
    old_meta = {k: meta[k] for k in ("learner", "config", "update", "train_seconds")}
    old_meta |= {"format_version": 2, "state_file": f"state-{digest[:16]}.msgpack"}
    old_meta["state_sha256"] = digest
    (ckpt / "meta.json").write_text(json.dumps(old_meta, indent=2))
    runner.train("rl2", CONFIG, out, resume=True, progress=False)
    assert checkpoint.updates(ckpt) == [4, 6]
    assert not list(ckpt.glob("*.msgpack"))
    assert checkpoint.load_meta(ckpt)["provenance"][0]["learn2rl_version"] is None
    assert_same_run(out, reference)


@pytest.fixture
def fresh_provenance():
    from learn2rl import provenance

    provenance._git_revision.cache_clear()
    yield provenance
    provenance._git_revision.cache_clear()


def test_run_info_names_the_version_and_the_revision_of_a_tracked_tree(
    tmp_path, monkeypatch, fresh_provenance
):
    import learn2rl

    assert fresh_provenance.run_info()["learn2rl_version"] == learn2rl.__version__
    if shutil.which("git") is None:
        pytest.skip("git is not installed")

    def git(*args):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    monkeypatch.setattr(fresh_provenance, "__file__", str(package / "provenance.py"))
    fresh_provenance._git_revision.cache_clear()
    assert fresh_provenance.run_info()["git_revision"] is None  # not a git checkout
    git("init", "-q")
    fresh_provenance._git_revision.cache_clear()
    assert fresh_provenance.run_info()["git_revision"] is None  # a checkout, but not tracked
    git("add", ".")
    git("commit", "-q", "-m", "x")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    fresh_provenance._git_revision.cache_clear()
    assert fresh_provenance.run_info()["git_revision"] == head
    (package / "__init__.py").write_text("x = 1\n")
    fresh_provenance._git_revision.cache_clear()
    assert fresh_provenance.run_info()["git_revision"] == head + "-dirty"
    monkeypatch.setenv("PATH", str(tmp_path / "no-git-here"))
    fresh_provenance._git_revision.cache_clear()
    assert fresh_provenance.run_info()["git_revision"] is None  # git missing: no error


def test_results_json_says_which_code_produced_it(tmp_path):
    from learn2rl.provenance import run_info
    from learn2rl.report import write_results_json

    path = write_results_json([{"agent": "a"}], tmp_path / "results.json", {"config": {"x": 1}})
    payload = json.loads(path.read_text())
    assert payload["provenance"] == run_info() and payload["config"] == {"x": 1}
    # Rewritten whole through a temporary file renamed into place, which is not left behind.
    write_results_json([{"agent": "b"}], path)
    assert json.loads(path.read_text())["results"] == [{"agent": "b"}]
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def _skill_rl2(config):
    """RL^2 on the skills of an untrained DIAYN discriminator: a learner no task id names."""
    from learn2rl.learners.diayn import DIAYN
    from learn2rl.learners.diayn import Config as DIAYNConfig

    diayn = DIAYN(
        DIAYNConfig(task=config.task, num_skills=3, hidden_sizes=(4,),
                    discriminator_hidden_sizes=(4,), num_envs=4, ppo_minibatches=2)
    )  # fmt: skip
    return RL2(config, family=diayn.skill_family(diayn.init().params))


@pytest.mark.slow
def test_a_prebuilt_learner_resumes_to_the_uninterrupted_result(tmp_path):
    from learn2rl.learners.rl2 import Config

    config = Config(
        task="control/point-goal[episode_length=3]", num_episodes=2, hidden_size=4, num_tasks=4,
        num_updates=4, updates_per_chunk=2,
    )  # fmt: skip
    learner = _skill_rl2(config)
    _, reference = runner.train("rl2", config, tmp_path / "whole", progress=False, learner=learner)
    cut = tmp_path / "cut"
    runner.train("rl2", config, cut, progress=False, stop_at=2, learner=learner)
    resumed_by, state = runner.train(
        "rl2", config, cut, resume=True, progress=False, learner=_skill_rl2(config)
    )
    assert int(state.update) == 4 and resumed_by.family == learner.family
    for a, b in zip(jax.tree.leaves(reference.params), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_array_equal(a, b)
    whole, resumed = (read_metrics(d / "metrics.jsonl") for d in (tmp_path / "whole", cut))
    assert resumed == whole
    other = config.replace(hidden_size=5)
    with pytest.raises(Learn2RLError, match="different config"):
        runner.train("rl2", other, cut, resume=True, progress=False, learner=_skill_rl2(other))
    with pytest.raises(Learn2RLError, match="built with another config"):
        runner.train("rl2", other, tmp_path / "new", progress=False, learner=learner)
