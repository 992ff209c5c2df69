"""The baselines registry over every registered task family: what applies, that it builds, that it
runs under ``evaluate``, and the generic random agent."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from learn2rl import baselines
from learn2rl.baselines.generic import random_agent
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import evaluate
from learn2rl.tasks import list_tasks, make
from learn2rl.tasks.bandits import BernoulliBandit
from learn2rl.tasks.control.base import ControlFamily
from learn2rl.types import Agent

# Every family whose task parameters determine an optimal policy we can compute has an oracle,
# except these: the locomotion families (no computable optimum), the point-direction family (its
# best return is computed, but no oracle agent is written yet), the recurring-context bandit
# (no oracle agent yet), the randomized gymnax environments and the POET obstacle courses (no
# computable optimum).
NO_ORACLE = (
    "bandit/recurring-context",
    "control/ant-dir",
    "control/cheetah-dir",
    "control/cheetah-dynamics",
    "control/cheetah-vel",
    "control/gym-ant-dir",
    "control/gym-halfcheetah-dir",
    "control/gym-halfcheetah-vel",
    "control/point-dir",
    "dr/cartpole",
    "dr/pendulum",
    "poet/course",
    "poet/flat",
)
KEY = jax.random.PRNGKey(0)


def _trial_length(family) -> int:
    """Episodes of a short trial: five one-step episodes (bandit pulls, Harlow presentations), or
    one longer episode."""
    return 5 if family.episode_length == 1 else 1


@pytest.mark.parametrize("task_id", list_tasks())
def test_every_family_has_random_and_its_oracle_and_every_baseline_builds(task_id):
    family = make(task_id)
    usable = baselines.applicable(family)
    assert usable[0] == "random"
    assert ("oracle" in usable) == (task_id not in NO_ORACLE)
    assert set(usable) <= set(baselines.list_baselines(family))
    assert baselines.kind_of(family) is not None
    num_episodes = _trial_length(family)
    for name in usable:
        agent = baselines.get(name, family, num_episodes)
        assert isinstance(agent, Agent) and agent.name == name
        assert agent.privileged == (name == "oracle"), name


def _evaluation_cases() -> list[tuple[str, str]]:
    """Each baseline of each kind once, on the first task id that offers it."""
    cases, seen = [], set()
    for kind, rows in baselines.applicable_by_kind():
        for task_id, names in rows:
            for name in names:
                if (kind, name) not in seen:
                    seen.add((kind, name))
                    cases.append((task_id, name))
    return cases


CASES = _evaluation_cases()


def _check_runs(task_id: str, name: str):
    family = make(task_id)
    num_episodes = _trial_length(family)
    tasks = family.tasks(4, "test")
    result = evaluate(baselines.get(name, family, num_episodes), family, tasks, num_episodes, KEY)
    assert result.agent == name and result.rewards.shape[0] == 4
    assert np.all(np.isfinite(result.total_rewards))
    actions = np.asarray(result.actions)[np.asarray(result.valid)]
    if isinstance(family, ControlFamily):
        assert np.all((actions >= family.action_low) & (actions <= family.action_high))
    else:
        assert np.all((actions >= 0) & (actions < family.num_actions))
    return family, tasks, result


# Every (kind, baseline) pair compiles a trial of its own, 1-15 s each (the MJX locomotion families
# tens of seconds), so the full sweep is slow. The agents it runs are tested under jit elsewhere
# (test_baselines, test_mdp_baselines, test_wang2016_*, test_maze); the fast tests below run the
# agents that exist only here.
@pytest.mark.parametrize("task_id, name", CASES, ids=[f"{t}-{n}" for t, n in CASES])
@pytest.mark.long
def test_every_baseline_runs_under_evaluate(task_id, name):
    _check_runs(task_id, name)


def test_random_agent_runs_on_a_discrete_and_a_continuous_family():
    _check_runs("harlow/vectors", "random")
    _check_runs("control/point-goal", "random")


def test_harlow_oracle_is_right_from_the_first_presentation():
    family, _, result = _check_runs("harlow/vectors", "oracle")
    assert np.all(result.total_rewards == _trial_length(family) * family.correct_reward)


def test_point_oracle_earns_the_exact_optimal_return():
    from learn2rl.analysis.adaptation import point_oracle_returns

    family, tasks, result = _check_runs("control/point-goal", "oracle")
    np.testing.assert_allclose(result.total_rewards, point_oracle_returns(family, tasks), rtol=1e-4)


@pytest.mark.long
def test_mdp_oracle_plans_with_the_optimal_values_and_follows_the_plan():
    from learn2rl.tasks.tabular_mdp import optimal_values
    from learn2rl.types import TrialObs

    family = make("mdp/tabular-10s5a")
    tasks = family.tasks(10, "test")
    agent = baselines.get("oracle", family, 3)
    q = jax.vmap(agent.init, (None, 0))(KEY, tasks)  # [tasks, horizon, states, actions]
    optimum = jax.vmap(optimal_values, (0, None))(tasks, family.episode_length)
    np.testing.assert_allclose(q[:, 0, 0].max(axis=-1), optimum, rtol=1e-5)
    # At step 13 (step 3 of the second episode) in state 4 it takes the best action of Q[3, 4].
    obs = TrialObs(
        obs=family.observe(jnp.int32(4)),
        prev_action=jnp.int32(0),
        prev_reward=jnp.float32(0.0),
        prev_done=jnp.float32(0.0),
        step=jnp.int32(13),
    )
    actions = jax.vmap(lambda table: agent.act(KEY, table, obs)[0])(q)
    np.testing.assert_array_equal(actions, np.argmax(q[:, 3, 4], axis=-1))


# ---------------------------------------------------------------------------------------------
# The generic random agent
# ---------------------------------------------------------------------------------------------


def test_random_agent_is_uniform_over_discrete_actions_and_the_continuous_box():
    family = make("twostep/daw2011")
    agent = random_agent(family)
    keys = jax.random.split(KEY, 4000)
    state = agent.init(KEY, None)
    actions = jax.vmap(lambda k: agent.act(k, state, None)[0])(keys)
    assert actions.dtype == jnp.int32
    assert np.bincount(np.asarray(actions), minlength=2).min() > 1800
    # The draw is the one every family's own random agent made: randint with the step's key.
    np.testing.assert_array_equal(
        actions, jax.vmap(lambda k: jax.random.randint(k, (), 0, 2, jnp.int32))(keys)
    )
    point = make("control/point-goal")
    vectors = jax.vmap(lambda k: random_agent(point).act(k, state, None)[0])(keys)
    assert vectors.shape == (4000, 2) and vectors.dtype == jnp.float32
    assert np.all(np.abs(vectors) <= point.max_step) and np.abs(vectors).max() > 0.09
    with pytest.raises(Learn2RLError, match="num_actions"):
        random_agent(object())


# ---------------------------------------------------------------------------------------------
# Registry messages
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: baselines.get("psychic", make("maze/5x5"), 2), "known maze baselines: random"),
        (
            lambda: baselines.get("search-return", make("maze/5x5"), 2),
            "'search-return' is a gridworld baseline; for the mazes of maze/5x5 use one of: "
            "random, oracle",
        ),
        (
            lambda: baselines.get("bayes-optimal", make("bandit/restless-2arm-independent"), 1),
            "exact only for dependent arms (p, 1 - p); for bandit/restless-2arm-independent use "
            "one of: random, oracle, ucb1",
        ),
        (
            lambda: baselines.get("model-free", make("twostep/daw2011"), 1, gamma=0.5),
            "unknown option(s) gamma; accepted: alpha, beta",
        ),
        (lambda: baselines.get("oracle", make("harlow/vectors"), 0), "num_episodes must be"),
        (lambda: baselines.get("random", object(), 1), "need a task family"),
        (
            lambda: baselines.get("oracle", make("control/cheetah-vel"), 1),
            "'oracle' has no version for the continuous-control families of control/cheetah-vel; "
            "use one of: random",
        ),
    ],
)
def test_registry_errors_are_one_line_and_name_the_choices(call, message):
    with pytest.raises(Learn2RLError) as error:
        call()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_registry_options_and_listings():
    family = make("twostep/daw2011")
    assert baselines.get("model-free", family, 1, alpha=0.2, beta=3.0).name == "model-free"
    assert baselines.list_baselines() == baselines.list_baselines(BernoulliBandit(2))
    assert baselines.kind_of(object()) is None and baselines.applicable(object()) == []
    kinds = dict(baselines.applicable_by_kind(["maze/9x9", "bandit/restless-2arm"]))
    assert kinds == {
        "restless bandits": [
            ("bandit/restless-2arm", ["random", "oracle", "ucb1", "bayes-optimal"])
        ],
        "mazes": [("maze/9x9", ["random", "oracle"])],
    }


def test_cli_list_shows_the_baselines_per_kind(capsys):
    from learn2rl.cli import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for text in ("Harlow tasks", "search-return", "ideal-observer", "continuous-control families"):
        assert text in out
