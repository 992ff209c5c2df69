"""The Learner contract (``types.Learner``): every registered learner meets it, is built from its
config alone, and trains a tiny chunk with the metrics the runner reads."""

import dataclasses

import jax
import numpy as np
import pytest

from learn2rl import learners, runner, sweep
from learn2rl.types import Learner
from tests.conftest import TINY_METAGENRL, relative_distance

TINY_OFFPOLICY = dict(
    hidden_sizes=(8,), num_updates=2, steps_per_update=20, random_steps=10, batch_size=4,
    buffer_size=100, eval_episodes=1,
)  # fmt: skip
TINY_EPISODIC = dict(env="Catch-bsuite", key_size=8, num_updates=2, updates_per_chunk=2)
TINY_REPLAY = dict(hidden_sizes=(8,), replay_size=64, learning_starts=8, batch_size=4)
TINY_EPG = dict(
    population_size=2, tasks_per_member=1, steps_per_epoch=20, epochs=2, buffer_size=40,
    minibatch_size=10, policy_hidden_sizes=(8,), conv_channels=(4, 4), context_size=4,
    head_size=4, fitness_episodes=1, num_updates=2, updates_per_chunk=2,
)  # fmt: skip
TINY_EPISODIC_LSTM = dict(
    task="bandit/recurring-context[num_arms=3,pulls_per_episode=2,num_episodes=4,num_contexts=2]",
    hidden_size=8, num_tasks=4, num_updates=2, updates_per_chunk=2,
)  # fmt: skip
# Tiny settings per learner (a few seconds of compilation each).
TINY = {
    "rl2": dict(num_episodes=4, hidden_size=8, num_tasks=4, num_updates=2, updates_per_chunk=2),
    "maml": dict(
        hidden_sizes=(8,), num_tasks=2, episodes_per_step=2, num_updates=2, updates_per_chunk=2
    ),
    "reptile": dict(
        hidden_sizes=(8,), num_tasks=2, episodes_per_step=2, inner_steps=2, num_updates=2
    ),
    "maesn": dict(
        hidden_sizes=(8,), num_tasks=2, episodes_per_step=2, num_train_tasks=3, num_updates=2
    ),
    "hochreiter2001": dict(num_examples=5, hidden_size=8, num_functions=4, num_updates=2),
    "td3": TINY_OFFPOLICY,
    "ddpg": TINY_OFFPOLICY,
    "metagenrl": TINY_METAGENRL,
    "metagradient": dict(
        num_envs=4, rollout_length=8, hidden_sizes=(16,), num_updates=2, updates_per_chunk=2
    ),
    "epg": TINY_EPG,
    "episodic_lstm": TINY_EPISODIC_LSTM,
    "mfec": dict(TINY_EPISODIC, capacity=64),
    "nec": dict(TINY_EPISODIC, **TINY_REPLAY, capacity=64, num_neighbours=4, n_step=4),
    "dqn": dict(TINY_EPISODIC, **TINY_REPLAY),
    "diayn": dict(
        task="control/point-goal[episode_length=20]",
        num_skills=4,
        num_envs=8,
        hidden_sizes=(8,),
        discriminator_hidden_sizes=(8,),
        ppo_minibatches=2,
        num_updates=2,
        updates_per_chunk=2,
    ),
    "poet": dict(
        capacity=2,
        population_size=4,
        hidden_sizes=(4,),
        episode_length=20,
        num_updates=2,
        updates_per_chunk=2,
        transfer_interval=1,
        mutation_interval=1,
        max_children=2,
    ),
}


def tiny_config(name):
    config_cls, _ = learners.get(name)
    return config_cls(**TINY[name])


def test_every_registered_learner_has_tiny_settings_here():
    assert sorted(TINY) == learners.list_learners()


@pytest.mark.parametrize("name", learners.list_learners())
def test_configs_meet_the_contract(name):
    config = tiny_config(name)
    assert dataclasses.is_dataclass(config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 3
    assert type(config).from_dict(config.to_dict()) == config
    assert config.replace(seed=5).seed == 5
    for field in ("num_updates", "updates_per_chunk", "seed"):
        assert isinstance(getattr(config, field), int)


@pytest.mark.parametrize("name", learners.list_learners())
@pytest.mark.slow
def test_learners_are_built_from_their_config_and_meet_the_protocol(name):
    learner = runner.build(name, tiny_config(name))
    assert isinstance(learner, Learner)
    assert learner.config == tiny_config(name)
    assert isinstance(learner.steps_per_update, int) and learner.steps_per_update > 0
    assert isinstance(learner.progress_metric, str)
    assert len(learner.devices) >= 1


@pytest.mark.parametrize("name", learners.list_learners())
@pytest.mark.long
def test_a_tiny_chunk_gives_one_metric_row_per_update(name):
    learner = runner.build(name, tiny_config(name))
    state = learner.init()
    assert int(state.update) == 0
    placed = learner.place(jax.device_get(state))
    assert int(placed.update) == 0
    state, metrics = learner.train_chunk(state, 2)
    assert int(state.update) == 2
    assert learner.progress_metric in metrics
    for value in metrics.values():
        value = np.asarray(value)
        assert value.shape[0] == 2 and np.isfinite(value).all()
    assert learner.agent(state.params) is not None


@pytest.mark.parametrize("name", learners.list_learners())
@pytest.mark.long
def test_seeds_trained_side_by_side_train_as_their_own_runs(name):
    learner = runner.build(name, tiny_config(name))
    seeds = [0, 1]
    members = sweep.Members(learner, seeds)
    state, metrics = members.train_chunk(members.init(), 2)
    for i, seed in enumerate(seeds):
        alone, alone_metrics = learner.train_chunk(learner.place(learner.init(seed)), 2)
        np.testing.assert_allclose(
            metrics[f"{learner.progress_metric}/seed{seed}"],
            alone_metrics[learner.progress_metric],
            rtol=1e-4,
            atol=1e-5,
        )
        # vmap may order a reduction differently: float rounding, which MetaGenRL's summed
        # second-order steps amplify (to about 1e-3 of single entries); another seed or a
        # mixed-up member would be O(1) away.
        assert relative_distance(members.member(state, i), jax.device_get(alone)) < 1e-4
