"""One-goal gridworld (tasks/navigation.py) and the wang2016-navigation experiment."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import baselines
from learn2rl.analysis.episodes import drops_after_first
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import EvalResult, evaluate
from learn2rl.experiments import pipeline
from learn2rl.experiments import wang2016_navigation as nav
from learn2rl.experiments.pipeline import Outcome
from learn2rl.tasks import list_tasks, make
from learn2rl.tasks.navigation import GridParams, OneGoalGridworld
from learn2rl.trial import Trial
from tests.reference import navigation_reference as ref
from tests.trial_scan import scan_trial

GRID_IDS = [task_id for task_id in list_tasks() if task_id.startswith("gridworld/onegoal-")]


# --- the task family ---------------------------------------------------------------------------
def _reset_draw(family, key):
    """The integer ``reset_env`` draws from ``key`` (index among the non-goal cells)."""
    return int(jax.random.randint(key, (), 0, family.num_cells - 1, dtype=jnp.int32))


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "nojit"])
@pytest.mark.parametrize(
    "size,goal,episode_length,step_penalty,seed",
    [(3, 4, 6, 0.0, 0), (4, 0, 5, 0.05, 1), (5, 17, 9, 0.0, 2), (2, 3, 3, 0.1, 3)],
)
@pytest.mark.slow
def test_trial_matches_plain_python_reference(jit, size, goal, episode_length, step_penalty, seed):
    family = OneGoalGridworld(size, episode_length=episode_length, step_penalty=step_penalty)
    num_episodes = 6
    trial = Trial(family, num_episodes)
    params = GridParams(goal=jnp.int32(goal))
    rng = np.random.default_rng(seed)
    num_steps = trial.max_steps + 3  # steps past the end of the trial must be no-ops
    actions = [int(a) for a in rng.integers(0, 4, size=num_steps)]
    reset_key = jax.random.PRNGKey(100 + seed)
    keys = jax.random.split(jax.random.PRNGKey(seed), num_steps)
    # Trial.step splits its key into (env step, reset); the new start comes from the reset key.
    reset_draws = [_reset_draw(family, jax.random.split(k)[1]) for k in keys]
    expected = ref.gridworld_trial(
        size,
        goal,
        episode_length,
        num_episodes,
        step_penalty,
        _reset_draw(family, reset_key),
        reset_draws,
        actions,
    )
    step = jax.jit(trial.step) if jit else trial.step
    with jax.disable_jit(not jit):
        obs, state = trial.reset(reset_key, params)
        for t in range(num_steps):
            want = expected[t]
            np.testing.assert_array_equal(obs.obs, np.eye(size * size)[want["cell"]])
            assert int(obs.step) == want["step"]
            assert int(obs.prev_action) == want["prev_action"]
            assert float(obs.prev_reward) == pytest.approx(want["prev_reward"])
            assert float(obs.prev_done) == want["prev_done"]
            obs, state, reward, episode_done, trial_done = step(keys[t], state, actions[t], params)
            assert float(reward) == pytest.approx(want["reward"])
            assert bool(episode_done) == want["episode_done"]
            assert bool(trial_done) == want["trial_done"]
    # The sequences exercise borders, goal hits and step limits, or the test proves little.
    assert not expected[-1]["active"]
    assert any(row["reached"] for row in expected)
    assert any(row["episode_done"] and not row["reached"] for row in expected)


@pytest.mark.slow
def test_jit_and_nojit_trials_are_identical():
    family = OneGoalGridworld(4, episode_length=6, step_penalty=0.01)
    trial = Trial(family, 3)
    params = family.task(11)
    actions = jnp.asarray(np.random.default_rng(0).integers(0, 4, size=trial.max_steps))
    fast, slow = scan_trial(trial, params, actions, extract=lambda s: s.position)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("task_id", GRID_IDS)
@pytest.mark.slow
def test_registered_grids_reset_and_step_under_vmap(task_id):
    family = make(task_id)
    tasks = family.tasks(64, "test")
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    obs, state = jax.vmap(family.reset)(keys, tasks)
    assert obs.shape == (64, family.num_cells) and obs.dtype == jnp.float32
    np.testing.assert_array_equal(obs.sum(axis=1), 1.0)
    assert not np.any(np.asarray(state.position) == np.asarray(tasks.goal))
    actions = jnp.arange(64) % 4
    obs, state, reward, terminated, truncated, _ = jax.vmap(family.step)(
        keys, state, actions, tasks
    )
    assert reward.shape == (64,) and set(np.unique(np.asarray(reward))) <= {0.0, 1.0}
    # A step that ends on the goal is +1 and terminal, every other step 0 and not terminal.
    np.testing.assert_array_equal(np.asarray(terminated), np.asarray(reward) == 1.0)
    assert not np.any(np.asarray(truncated))
    assert family.observation_space().shape == (family.num_cells,)
    assert family.action_space().n == 4


@pytest.mark.slow
def test_goals_and_starts_are_uniform():
    family = OneGoalGridworld(3)
    goals = np.asarray(
        jax.vmap(family.sample_params)(jax.random.split(jax.random.PRNGKey(0), 9000)).goal
    )
    assert np.abs(np.bincount(goals, minlength=9) / 9000 - 1 / 9).max() < 0.015
    params = GridParams(goal=jnp.int32(4))
    _, state = jax.vmap(family.reset, in_axes=(0, None))(
        jax.random.split(jax.random.PRNGKey(1), 8000), params
    )
    counts = np.bincount(np.asarray(state.position), minlength=9) / 8000
    assert counts[4] == 0.0
    assert np.abs(np.delete(counts, 4) - 1 / 8).max() < 0.015
    # Held-out goals are a fixed, reproducible set.
    np.testing.assert_array_equal(family.tasks(20).goal, family.tasks(20).goal)


def test_xy_observation_and_cell_decoding():
    family = OneGoalGridworld(4, observation="xy")
    cells = jnp.arange(16)
    obs = jax.vmap(family.observe_cell)(cells)
    np.testing.assert_allclose(obs[5], [1 / 3, 1 / 3])
    np.testing.assert_allclose(obs[15], [1.0, 1.0])
    np.testing.assert_array_equal(family.cell_of(obs), cells)
    onehot = OneGoalGridworld(4)
    np.testing.assert_array_equal(onehot.cell_of(jax.vmap(onehot.observe_cell)(cells)), cells)
    # Manhattan distance on a 4x4 grid: cell 0 is (0, 0), cell 14 is (3, 2).
    assert int(family.shortest_path(jnp.int32(0), jnp.int32(14))) == 5


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"size": 1}, "size must be an integer >= 2, got 1"),
        ({"size": 4.0}, "size must be an integer >= 2, got 4.0"),
        ({"size": True}, "size must be an integer >= 2"),
        ({"episode_length": 0}, "episode_length must be an integer >= 1, got 0"),
        ({"step_penalty": -0.1}, "step_penalty must be a finite number >= 0, got -0.1"),
        ({"step_penalty": float("nan")}, "step_penalty must be a finite number >= 0"),
        ({"step_penalty": "0.1"}, "step_penalty must be a number >= 0"),
        ({"observation": "pixels"}, "unknown observation 'pixels'; known: onehot, xy"),
    ],
)
def test_bad_parameters_are_rejected(kwargs, message):
    with pytest.raises(Learn2RLError, match=message.replace("(", r"\(").replace(")", r"\)")):
        OneGoalGridworld(**kwargs)
    with pytest.raises(Learn2RLError):
        make("gridworld/onegoal-5x5", **kwargs)


# --- the analysis, on agents whose answer is known ----------------------------------------------
def _outcome(family, tasks, num_episodes, results=None):
    return Outcome(results or {}, 1, family, tasks, num_episodes)


def test_episode_table_on_a_hand_written_result():
    family = OneGoalGridworld(3)
    eye = np.eye(9, dtype=np.float32)
    # One trial, goal 2 (row 0, column 2). Episode 0 starts at cell 0: right, right (goal).
    # Episode 1 starts at cell 6 (distance 4) and takes 3 steps without the goal before the
    # trial ends (an episode cut by the step limit). Then two no-op steps.
    cells = [0, 1, 6, 7, 8, 8, 8]
    rewards = [0, 1, 0, 0, 0, 0, 0]
    episodes = [0, 0, 1, 1, 1, 2, 2]
    valid = [True] * 5 + [False] * 2
    result = EvalResult(
        agent="hand",
        task=family.family_id,
        rewards=np.asarray([rewards], np.float32),
        regrets=np.full((1, 7), np.nan),
        valid=np.asarray([valid]),
        actions=np.zeros((1, 7), np.int32),
        num_tasks=1,
        num_seeds=1,
        episodes=np.asarray([episodes]),
        observations=eye[cells][None],
    )
    table = nav.episode_table(_outcome(family, GridParams(goal=np.asarray([2])), 2), result)
    np.testing.assert_array_equal(table["steps"], [[2, 3]])
    np.testing.assert_array_equal(table["success"], [[True, False]])
    np.testing.assert_array_equal(table["shortest"], [[2, 4]])
    np.testing.assert_array_equal(table["excess"], [[0, -1]])


def test_the_analysis_refuses_a_task_that_is_not_a_gridworld():
    family = make("bandit/independent-2arm")
    with pytest.raises(Learn2RLError, match="needs a gridworld/onegoal-\\* task"):
        nav.episode_table(_outcome(family, family.tasks(2), 2), None)


@pytest.fixture(scope="module")
def reference_outcome():
    family = make("gridworld/onegoal-4x4")
    tasks = family.tasks(300, "test")
    key = jax.random.PRNGKey(0)
    results = {
        name: [evaluate(baselines.get(name, family, 4), family, tasks, 4, key, record_obs=True)]
        for name in ("search-return", "oracle", "random")
    }
    outcome = _outcome(family, tasks, 4, results)
    outcome.analyses["episodes"] = nav.SPEC.analyses[0].compute(outcome)
    return outcome


@pytest.mark.long
def test_oracle_walks_shortest_paths_and_shows_no_drop(reference_outcome):
    oracle = reference_outcome.analyses["episodes"]["oracle"]
    assert oracle["success_rate"] == 1.0
    assert oracle["later_excess"] == 0.0 and max(oracle["excess_per_episode"]) == 0.0
    assert oracle["steps_per_episode"] == oracle["shortest_per_episode"]
    assert not drops_after_first(oracle, nav.DROP_RATIO)
    regret = nav.SPEC.regret(reference_outcome, reference_outcome.results["oracle"][0])
    np.testing.assert_array_equal(regret, 0)


@pytest.mark.slow
def test_search_then_return_drops_to_the_shortest_path(reference_outcome):
    search = reference_outcome.analyses["episodes"]["search-return"]
    assert drops_after_first(search, nav.DROP_RATIO) and search["later_excess"] == 0.0
    # A sweep of 15 candidate cells: about half of them on average, never the whole limit.
    assert 6.0 < search["first_steps"] < 10.0
    assert search["success_rate"] == 1.0


def test_random_walk_neither_drops_nor_finds_short_paths(reference_outcome):
    walk = reference_outcome.analyses["episodes"]["random"]
    assert not drops_after_first(walk, nav.DROP_RATIO)
    assert walk["later_excess"] > nav.EXCESS_TOLERANCE
    assert walk["success_rate"] < 0.9


def test_findings_pass_for_search_then_return_and_fail_for_a_random_walk(reference_outcome):
    summaries = reference_outcome.analyses["episodes"]
    for learner, expected in (("search-return", True), ("random", False)):
        outcome = _outcome(None, None, 4)
        outcome.analyses["episodes"] = dict(summaries, rl2=summaries[learner])
        passed = [f.holds(f.measure(outcome)[0]) for f in nav.SPEC.findings]
        assert passed == [expected] * 4


# --- the experiment end to end ------------------------------------------------------------------
@pytest.mark.long
def test_spec_writes_report_results_and_plots(tmp_path):
    tiny = ["task=gridworld/onegoal-4x4", "num_episodes=2", "num_updates=4", "num_tasks=8",
            "updates_per_chunk=2", "hidden_size=8"]  # fmt: skip
    outcome = pipeline.run(
        nav.SPEC, tmp_path, quick=True, overrides=tiny, progress=False, num_test_tasks=32
    )
    results = json.loads((tmp_path / "results.json").read_text())
    rows = {row["agent"]: row for row in results["results"]}
    assert set(rows) == {"rl2", "search-return", "oracle", "random"}
    assert all(row["num_tasks"] == 32 for row in rows.values())
    assert len(results["analyses"]["episodes"]["rl2"]["steps_per_episode"]) == 2
    # The table's regret is the steps beyond the shortest paths: none for the oracle.
    assert rows["oracle"]["mean_regret"] == 0.0 and rows["oracle"]["mean_total_reward"] == 2.0
    assert len(results["findings"]) == len(outcome["findings"]) == 4
    for name in ["report.md", "steps_by_episode.png", "trajectories.png", "training.png"]:
        assert (tmp_path / name).exists(), name
    report = (tmp_path / "report.md").read_text()
    assert "learn2rl reproduce wang2016-navigation" in report and "| holds |" in report
