"""The Harlow task family, its reference agents, the per-presentation accuracy analysis and the
``wang2016-harlow`` experiment (tiny settings)."""

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.experiments import pipeline
from learn2rl.experiments import wang2016_harlow as exp
from learn2rl.experiments.spec import Learned
from learn2rl.tasks import make
from learn2rl.tasks.harlow import HarlowParams, HarlowState, HarlowTask
from learn2rl.trial import Trial
from tests.conftest import TINY_CONFIG
from tests.reference import harlow_reference as ref

NUM_EVAL_TASKS = 400


# --- tier 1 + 2: dynamics against the plain-Python reference, with and without jit --------------
@pytest.mark.parametrize("jit", [True, False], ids=["jit", "nojit"])
@pytest.mark.parametrize("incorrect", [0.0, -1.0])
def test_trial_matches_reference_presentation_by_presentation(jit, incorrect):
    family = HarlowTask(num_features=3, incorrect_reward=incorrect)
    objects = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], np.float32)
    params = HarlowParams(objects=jnp.asarray(objects))
    trial = Trial(family, num_episodes=6)
    num_steps = trial.max_steps + 2  # two steps past the end: no-ops
    actions = np.random.default_rng(3).integers(0, 2, size=num_steps)
    keys = jax.random.split(jax.random.PRNGKey(11), num_steps)
    reset_key = jax.random.PRNGKey(0)
    # The first presentation is placed with Trial.reset's key; each later one with the reset half
    # of the previous step's key (Trial.step splits its key into environment step, reset).
    placement_keys = [reset_key] + [jax.random.split(k)[1] for k in keys]
    uniforms = [float(jax.random.uniform(k)) for k in placement_keys[:6]]
    expected = ref.harlow_trial(objects, uniforms, actions[:6], incorrect=incorrect)
    assert {r["correct"] for r in expected} == {True, False}
    step = jax.jit(trial.step) if jit else trial.step
    with jax.disable_jit(not jit):
        obs, state = trial.reset(reset_key, params)
        for t in range(num_steps):
            obs_before = np.asarray(obs.obs)
            obs, state, reward, episode_done, trial_done = step(keys[t], state, actions[t], params)
            if t < 6:
                np.testing.assert_allclose(obs_before, expected[t]["obs"], rtol=0, atol=0)
                assert float(reward) == expected[t]["reward"]
                assert bool(episode_done) and bool(trial_done) == (t == 5)
            else:
                assert float(reward) == 0.0 and not bool(episode_done)


@pytest.mark.slow
def test_placements_are_fair_and_objects_standard_normal():
    family = make("harlow/vectors")
    tasks = family.tasks(4000, "test")
    objects = np.asarray(tasks.objects)
    assert objects.shape == (4000, 2, 8)
    assert abs(objects.mean()) < 0.02 and abs(objects.std() - 1) < 0.02
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    _, states = jax.vmap(family.reset_env)(keys, tasks)
    assert abs(float(states.left.mean()) - 0.5) < 0.03
    np.testing.assert_array_equal(np.asarray(family.tasks(3, "test").objects), objects[:3])


def test_expected_reward_is_the_reward_of_the_chosen_object():
    family = HarlowTask(incorrect_reward=-1.0)
    params = family.task(0)
    for left in (0, 1):
        state = HarlowState(time=jnp.int32(0), left=jnp.int32(left))
        rewarded_side = 0 if left == 0 else 1
        assert float(family.expected_reward(params, state, rewarded_side)) == 1.0
        assert float(family.expected_reward(params, state, 1 - rewarded_side)) == -1.0
        assert float(family.best_expected_reward(params, state)) == 1.0


# --- tier 3: registered id under vmap ------------------------------------------------------------
@pytest.mark.slow
def test_registered_id_resets_and_steps_under_vmap():
    family = make("harlow/vectors")
    assert family.episode_length == 1 and family.num_actions == 2
    tasks = family.tasks(8, "test")
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    obs, states = jax.vmap(family.reset)(keys, tasks)
    assert obs.shape == (8, 16)
    _, _, rewards, _, truncated, _ = jax.vmap(family.step)(
        keys, states, jnp.zeros(8, jnp.int32), tasks
    )
    assert set(np.unique(np.asarray(rewards))) <= {0.0, 1.0} and np.all(np.asarray(truncated))


# --- tier 4: bad parameters ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_features": 0}, "num_features .* positive integer"),
        ({"num_features": 4.0}, "num_features .* positive integer"),
        ({"correct_reward": 0.0, "incorrect_reward": 1.0}, "correct_reward must exceed"),
        ({"incorrect_reward": "nothing"}, "incorrect_reward must be a number"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(Learn2RLError, match=message):
        HarlowTask(**kwargs)


# --- the experiment end to end, and the analysis on its hand-written agents ----------------------
TINY = TINY_CONFIG.replace(task="harlow/vectors", num_episodes=6, num_updates=2, gamma=0.9)


def _tiny_spec():
    return dataclasses.replace(
        exp.SPEC, learned=(Learned("rl2", "rl2", TINY, TINY),), quick_test_tasks=NUM_EVAL_TASKS
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The spec through the pipeline with a tiny RL^2 config: stops at update 0 (of ``STOPS``)
    and at the end (2)."""
    out = tmp_path_factory.mktemp("harlow")
    returned = pipeline.run(_tiny_spec(), out, quick=True, progress=False)
    return out, returned


@pytest.mark.long
def test_tiny_run_writes_report_results_plots_and_curve(tiny_run):
    out, returned = tiny_run
    results = json.loads((out / "results.json").read_text())
    rows = {row["agent"]: row for row in results["results"]}
    assert set(rows) == {"rl2", "wsls-objects", "wsls-sides", "random"}
    presentations = results["analyses"]["presentations"]
    for name, row in rows.items():
        assert {"agent", "task", "mean_total_reward", "ci95", "mean_regret", "num_tasks"} <= set(
            row
        )
        assert row["num_tasks"] == NUM_EVAL_TASKS and len(presentations[name]["accuracy"]) == 6
    curve = results["analyses"]["learning_curve"]
    assert [p["update"] for p in curve] == [0, 2]
    # The last point is the trained agent of the table, on the same pairs and draws.
    assert curve[-1]["accuracy"] == presentations["rl2"]["accuracy"]
    assert len(returned["findings"]) == 3
    for name in ["report.md", "presentations.png", "learning_curve.png"]:
        assert (out / name).exists(), name
    report = (out / "report.md").read_text()
    assert "## Findings (tested)" in report and "Exact optimum: 5.5" in report


@pytest.mark.long
def test_a_second_run_keeps_the_stops_instead_of_retraining(tiny_run, tmp_path):
    out, returned = tiny_run
    run_dir = out / "rl2" / "seed-0"
    metrics_before = (run_dir / "metrics.jsonl").read_text()
    again = pipeline.run(_tiny_spec(), out, quick=True, progress=False)
    curve = again["outcome"].analyses["learning_curve"]
    assert curve == returned["outcome"].analyses["learning_curve"]
    assert (run_dir / "metrics.jsonl").read_text() == metrics_before
    # A stop the finished run passed without keeping is skipped, not faked.
    shutil.move(run_dir / exp.STOPS_DIR / "0", tmp_path / "0")
    try:
        exp.train_in_stages("rl2", TINY, run_dir, progress=False)
        assert sorted(p.name for p in (run_dir / exp.STOPS_DIR).iterdir()) == ["2"]
    finally:
        shutil.move(tmp_path / "0", run_dir / exp.STOPS_DIR / "0")


@pytest.mark.slow
def test_reference_agents_have_their_known_accuracies(tiny_run):
    rows = {row["agent"]: row for row in tiny_run[1]["rows"]}
    accuracy = tiny_run[1]["outcome"].analyses["presentations"]
    optimal = accuracy["wsls-objects"]
    # The optimum: a coin flip on presentation 1, then always right (5.5 expected in total).
    assert optimal["accuracy"][1:] == [1.0] * 5 and optimal["rest_ci95"] == 0.0
    assert abs(optimal["first"] - 0.5) < 2 * optimal["first_ci95"]
    total, half = rows["wsls-objects"]["mean_total_reward"], rows["wsls-objects"]["ci95"]
    assert abs(total - 5.5) < 2 * half
    assert rows["wsls-objects"]["mean_regret"] == pytest.approx(0.5, abs=2 * half)
    # Position habits and coin flips stay at chance on every presentation.
    for name in ("wsls-sides", "random"):
        acc = accuracy[name]
        assert abs(acc["rest"] - 0.5) < 2 * acc["rest_ci95"], name
        assert all(abs(a - 0.5) < 0.1 for a in acc["accuracy"]), name
