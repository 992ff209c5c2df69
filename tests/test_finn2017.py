"""finn2017 reproductions: the analysis functions on known answers, and a tiny end-to-end run."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl.evaluation import EvalResult
from learn2rl.experiments import finn2017
from learn2rl.learners import maml
from learn2rl.rollout import rollout_episodes
from learn2rl.tasks import make


def test_batch_returns_groups_episodes_into_adaptation_batches():
    length, per_batch = 3, 2
    # One task, 4 episodes of 3 steps; episode e earns e+1 per step, the last step of episode 3
    # is padding (not valid).
    rewards = np.repeat(np.arange(1.0, 5.0), length)[None]
    valid = np.ones_like(rewards, bool)
    valid[0, -1] = False
    result = EvalResult("a", "t", rewards, rewards * np.nan, valid, rewards, 1, 1)
    got = finn2017.batch_returns(result, length, per_batch)
    np.testing.assert_allclose(got, [[(3 + 6) / 2, (9 + 8) / 2]])


def test_point_oracle_matches_a_rollout_of_the_straight_line_policy():
    family = make("control/point-goal")
    tasks = family.tasks(20, "test")
    want = finn2017.point_oracle_returns(family, tasks)

    def one(task, key):
        def act(key, context, obs):
            return jnp.clip(task.goal - obs, -family.max_step, family.max_step)

        return rollout_episodes(family, act, key, task, 1).returns[0]

    got = jax.vmap(one)(tasks, jax.random.split(jax.random.PRNGKey(0), 20))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    assert np.all(want > -1.5) and np.all(want <= 0)


@pytest.mark.slow
def test_tiny_pointnav_reproduction_writes_its_outputs(tmp_path):
    config = maml.Config(
        hidden_sizes=(8,),
        num_tasks=2,
        episodes_per_step=2,
        num_updates=2,
        updates_per_chunk=1,
        ppo_epochs=1,
    )
    result = finn2017.run_pointnav(
        tmp_path, configs={"maml": config}, num_test_tasks=3, progress=False, names=("maml",)
    )
    for name in ("report.md", "results.json", "adaptation.png", "training.png", "trajectories.png"):
        assert (tmp_path / name).exists(), name
    payload = json.loads((tmp_path / "results.json").read_text())
    agents = [row["agent"] for row in payload["results"]]
    assert agents == ["maml", "random-init", "oracle"]
    assert len(payload["results"][0]["returns"]) == finn2017.ADAPT_STEPS + 1
    assert payload["paper"]["MAML (paper)"][1] == -11.68
    report = (tmp_path / "report.md").read_text()
    assert "MAML after one gradient step" in report and "-11.68" in report
    assert {f["claim"][:4] for f in result["findings"]}
