"""``reproduce houthooft2018`` end to end at toy size: every row, the findings, the figure, and
the meta-test of the best-validated loss (not the last ES mean)."""

import json

import jax
import numpy as np
import pytest

from learn2rl import runner
from learn2rl.experiments import houthooft2018, pipeline
from learn2rl.experiments.common import EVAL_SEED

TINY = [
    "num_updates=3",
    "updates_per_chunk=3",
    "population_size=4",
    "tasks_per_member=1",
    "steps_per_epoch=20",
    "epochs=4",
    "buffer_size=40",
    "minibatch_size=10",
    "policy_hidden_sizes=8",
    "context_size=2",
    "head_size=4",
    "fitness_episodes=1",
    "validation_every=2",
    "validation_tasks=2",
]


@pytest.mark.long
def test_the_reproduction_meta_tests_the_best_validated_loss(tmp_path):
    result = pipeline.run(
        houthooft2018.SPEC, tmp_path, quick=True, overrides=TINY, progress=False, num_test_tasks=8
    )
    payload = json.loads((tmp_path / "results.json").read_text())
    rows = {row["agent"] for row in payload["results"]}
    assert rows == {
        "epg",
        "ppo",
        "random loss",
        "epg (out of distribution)",
        "ppo (out of distribution)",
    }
    assert len(result["findings"]) == len(houthooft2018.SPEC.findings)
    assert (tmp_path / "houthooft2018-curves.png").is_file()
    learner, state, _ = runner.load_learner(tmp_path / "epg" / "seed-0" / runner.CHECKPOINT_DIR)
    tasks = learner.family.tasks(8, "test")
    out = learner.train_policies(state.params["loss"], tasks, jax.random.PRNGKey(EVAL_SEED))
    measured = payload["analyses"]["final"]["epg"][0]
    np.testing.assert_allclose(float(np.mean(out["final_return"])), measured, rtol=1e-5)
