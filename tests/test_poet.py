"""POET (learners/poet.py): the minimal criterion, novelty against the archive, transfers that
never lower a target's score, admission and archiving, mutation, config errors, the contract."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import learners, runner
from learn2rl.errors import Learn2RLError
from learn2rl.learners.poet import (
    NO_SCORE,
    POET,
    Config,
    encoding_of,
    mutate,
    novelty,
    passes_minimal_criterion,
)
from learn2rl.tasks.obstacle_course import CAPS, KNOBS
from learn2rl.types import TrialObs

# Small enough to compile in seconds: 3 slots, 8 perturbations, 60-step episodes.
TINY = dict(
    capacity=3,
    population_size=8,
    hidden_sizes=(8,),
    episode_length=60,
    num_updates=8,
    updates_per_chunk=2,
    transfer_interval=2,
    mutation_interval=2,
    max_children=4,
)


@pytest.fixture(scope="module")
def tiny() -> POET:
    return POET(Config(**TINY))


def populated(learner: POET, knobs: list[tuple[float, float, float]], seed: int = 0):
    """A state whose first ``len(knobs)`` slots hold those courses, each with a random agent
    (admitted in order, so slot i holds knobs[i])."""
    state = learner.init(seed=seed)
    key = jax.random.PRNGKey(seed + 100)
    theta_size = learner.num_params
    state = state.replace(pairs=state.pairs.replace(knobs=state.pairs.knobs.at[0].set(knobs[0])))
    for i, k in enumerate(knobs[1:], start=1):
        theta = 0.5 * jax.random.normal(jax.random.fold_in(key, i), (theta_size,))
        score = learner.episode(theta, encoding_of(jnp.asarray(k, jnp.float32), jnp.int32(i)))
        state = learner._admit(state, jnp.asarray(k, jnp.float32), jnp.int32(i), theta, score, key)
    encodings = encoding_of(state.pairs.knobs, state.pairs.seeds)
    scores = learner.evaluate(state.pairs.es.mean, encodings)
    pairs = state.pairs.replace(score=jnp.where(state.pairs.active, scores, NO_SCORE))
    return state.replace(pairs=pairs)


# --- pure pieces -------------------------------------------------------------------------------
def test_minimal_criterion_is_the_closed_band():
    scores = jnp.array([-1.0, 25.0, 100.0, 340.0, 340.5])
    np.testing.assert_array_equal(
        passes_minimal_criterion(scores, 25.0, 340.0), [False, True, True, True, False]
    )


@pytest.mark.parametrize("count", [1, 3, 5, 9])
def test_novelty_is_the_mean_distance_to_the_k_nearest_archive_rows(count):
    rng = np.random.default_rng(count)
    archive = rng.uniform(0, 3, size=(12, 3)).astype(np.float32)
    archive[count:] = 0.01  # unused rows, close to the query: must be ignored
    knobs = np.float32([0.0, 0.0, 0.0])
    distances = np.sort(np.linalg.norm(archive[:count] - knobs, axis=1))
    expected = distances[: min(5, count)].mean()
    got = novelty(jnp.asarray(knobs), jnp.asarray(archive), jnp.int32(count), 5)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_an_encoding_already_in_the_archive_has_novelty_zero_against_it():
    archive = jnp.array([[0.5, 0.2, 1.2]] + [[0.0, 0.0, 0.0]] * 3, jnp.float32)
    assert float(novelty(archive[0], archive, jnp.int32(1), 5)) == 0.0


def test_mutation_moves_each_knob_by_a_bounded_step_and_stays_in_range():
    config = Config(**TINY)
    keys = jax.random.split(jax.random.PRNGKey(0), 400)
    parent = jnp.array([0.1, 2.9, 0.0], jnp.float32)
    children = np.asarray(jax.vmap(mutate, in_axes=(0, None, None))(keys, parent, config))
    caps = np.array([CAPS[name] for name in KNOBS])
    assert (children >= 0).all() and (children <= caps + 1e-6).all()
    assert np.abs(children[:, 0] - 0.1).max() <= config.roughness_step + 0.025 + 1e-6
    stumps = {round(float(v), 2) for v in children[:, 1]}
    assert stumps == {2.7, 2.9, 3.0}  # +0.2 clipped at the cap
    assert {round(float(v), 2) for v in children[:, 2]} == {0.0, 0.4}  # -0.4 clipped at 0
    assert len({tuple(c) for c in np.round(children, 2)}) > 10


# --- config, registry, contract -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("population_size", 7, "config.population_size must be even"),
        ("capacity", 0, "config.capacity must be a positive integer"),
        ("mc_lower", 400.0, "config.mc_lower (400.0) must not exceed config.mc_upper"),
        ("mutation_interval", -1, "config.mutation_interval must be an integer >= 0"),
        ("sigma_decay", 1.5, "config.sigma_decay must lie in (0, 1]"),
        ("start", (0.0, 0.0), "config.start must be 3 knobs"),
        ("start", (0.0, 4.0, 0.0), "config.start stump_height must lie in [0, 3]"),
        ("transfers", "yes", "config.transfers must be true or false"),
        ("seed", -1, "config.seed must be a non-negative integer"),
    ],
)
def test_bad_config_values_are_one_line_errors(field, value, message):
    with pytest.raises(Learn2RLError) as err:
        Config(**{**TINY, field: value})
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_registered_and_meets_the_learner_contract(tiny):
    assert learners.get("poet") == (Config, POET)
    assert Config.from_dict(Config(**TINY).to_dict()) == Config(**TINY)
    assert tiny.progress_metric == "score_mean"
    assert tiny.steps_per_update == 3 * 9 * 60
    assert Config(**TINY).archive_size == 1 + 8 // 2
    with pytest.raises(Learn2RLError, match="pair must lie in"):
        tiny.agent(tiny.init().params, pair=3)
    agent = tiny.agent(tiny.init().params)
    obs = TrialObs(jnp.zeros(16), jnp.zeros(2), jnp.float32(0), jnp.float32(0), jnp.int32(0))
    action, _ = agent.act(jax.random.PRNGKey(0), agent.init(jax.random.PRNGKey(0), None), obs)
    assert action.shape == (2,) and bool(jnp.all(jnp.abs(action) <= 1.0))


# --- admission, archive, transfers --------------------------------------------------------------
@pytest.mark.slow
def test_admission_fills_free_slots_then_archives_the_oldest(tiny):
    state = populated(tiny, [(0.0, 0.0, 0.0), (0.0, 0.2, 0.0), (0.0, 0.0, 0.4)])
    assert np.asarray(state.pairs.active).all() and int(state.archive.count) == 3
    theta = jnp.zeros((tiny.num_params,))
    knobs = jnp.array([0.3, 0.0, 0.0], jnp.float32)
    state = tiny._admit(state, knobs, jnp.int32(7), theta, jnp.float32(50.0), jax.random.PRNGKey(1))
    # The oldest pair (slot 0, the first course) made room; the archive keeps all four.
    np.testing.assert_allclose(np.asarray(state.pairs.knobs[0]), [0.3, 0.0, 0.0])
    assert int(state.archive.count) == 4
    np.testing.assert_allclose(np.asarray(state.archive.knobs[0]), [0.0, 0.0, 0.0])
    assert int(state.pairs.archive_index[0]) == 3 and float(state.archive.admission_score[3]) == 50
    # A fresh optimiser: the ES state restarts at the admitted agent with the initial noise.
    np.testing.assert_array_equal(np.asarray(state.pairs.es.mean[0]), np.zeros(tiny.num_params))
    assert int(state.pairs.es.generation_counter[0]) == 0


@pytest.mark.long
def test_transfer_never_lowers_a_target_score_on_the_same_evaluation(tiny):
    knobs = [(0.0, 0.0, 0.0), (0.2, 0.0, 0.0), (0.0, 0.0, 0.8)]
    for seed in range(3):
        state = populated(tiny, knobs, seed=seed)
        before = np.asarray(state.pairs.score)
        after_state = jax.jit(tiny._transfer_round)(state, jax.random.PRNGKey(seed))
        after = np.asarray(after_state.pairs.score)
        assert (after >= before).all()
        # The recorded score is the new agent's evaluation on its course, exactly.
        encodings = encoding_of(after_state.pairs.knobs, after_state.pairs.seeds)
        again = tiny.evaluate(after_state.pairs.es.mean, encodings)
        np.testing.assert_array_equal(again, after)
        replaced = after > before
        assert int(after_state.transfers) == int(replaced.sum())
        kept = ~replaced
        np.testing.assert_array_equal(
            np.asarray(after_state.pairs.es.mean)[kept], np.asarray(state.pairs.es.mean)[kept]
        )
        # A replaced agent restarts its optimiser.
        counters = np.asarray(after_state.pairs.es.generation_counter)
        assert (counters[replaced] == 0).all()


@pytest.mark.long
def test_children_outside_the_minimal_criterion_are_never_admitted():
    config = Config(**{**TINY, "reproduction_threshold": -1e9})
    learner = POET(config)
    state = populated(learner, [(0.0, 0.0, 0.0)])
    scores_seen = []
    for lower, upper in ((-1e9, 1e9), (1e6, 2e6)):
        band = POET(config.replace(mc_lower=lower, mc_upper=upper))
        out = jax.jit(band._mutation_round)(state, jax.random.PRNGKey(3))
        admitted = int(out.archive.count) - int(state.archive.count)
        scores = np.asarray(out.archive.admission_score)[
            int(state.archive.count) : int(out.archive.count)
        ]
        assert ((scores >= lower) & (scores <= upper)).all()
        scores_seen.append(admitted)
    # Everything passes the open band (one child, max_admitted = 1); nothing passes the others.
    assert scores_seen == [1, 0]


@pytest.mark.long
def test_a_run_admits_distinct_children_at_mutation_rounds_and_replays_from_its_seed():
    # 60-step toy episodes score little: an open band lets every child in.
    open_band = {"reproduction_threshold": -1e9, "mc_lower": -1e9, "mc_upper": 1e9}
    config = Config(**{**TINY, "num_updates": 8, **open_band})
    learner = POET(config)
    state, metrics = learner.train_chunk(learner.init(), 8)
    envs = learner.environments(state)
    assert len(envs["knobs"]) == int(state.archive.count) >= 2
    assert (envs["admitted_at"][1:] % config.mutation_interval == 0).all()
    # Novelty-ranked children are distinct from the active courses they joined.
    assert len({tuple(k) for k in np.round(envs["knobs"], 2)}) == len(envs["knobs"])
    for name in ("score_mean", "active", "environments", "solved", "rollouts"):
        assert np.asarray(metrics[name]).shape == (8,)
    again, _ = POET(config).train_chunk(POET(config).init(), 8)
    np.testing.assert_array_equal(np.asarray(state.pairs.es.mean), np.asarray(again.pairs.es.mean))
    # Counted episodes grow with every iteration.
    assert (np.diff(np.asarray(metrics["rollouts"])) > 0).all()
    # Empty slots hold finite values: the runner stops on a non-finite train state.
    assert runner.non_finite(0, metrics, jax.device_get(state)) is None


@pytest.mark.long
def test_the_population_split_over_two_devices_gives_the_one_device_run():
    if len(jax.devices()) < 2:
        pytest.skip("needs two devices (one per CPU core)")
    # Open bands: the six iterations include mutation rounds that admit and transfer rounds.
    config = Config(
        **{**TINY, "mutation_interval": 2, "transfer_interval": 2, "reproduction_threshold": -1e9,
           "mc_lower": -1e9, "mc_upper": 1e9}
    )  # fmt: skip
    one, two = POET(config, devices=jax.devices()[:1]), POET(config, devices=jax.devices()[:2])
    assert len(two.devices) == 2
    a, metrics = one.train_chunk(one.init(), 6)
    b, _ = two.train_chunk(two.init(), 6)
    assert int(metrics["environments"][-1]) > 1 and int(metrics["transfers"][-1]) > 0
    # Each device runs half of every population's episodes; the gathered returns are the ones
    # one device computes, so the runs agree bit for bit.
    for x, y in zip(
        jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b)), strict=True
    ):
        np.testing.assert_array_equal(x, y)
