"""The informative-arm ("11-armed") bandit of Wang et al. 2016 (arXiv 1611.05763, Sec. 3.1.2).

There are ``num_arms`` ordinary arms plus one informative arm (the last action). One ordinary arm,
the *target*, drawn uniformly per task, pays ``target_reward`` (5 in the paper); the others pay
``other_reward`` (1). The informative arm pays ``(target index + 1) / num_arms``: with 10 ordinary
arms, 0.1 for arm 0 up to 1.0 for arm 9, so it reveals the target at the cost of a small reward.
Rewards are deterministic. An episode has ``pulls_per_episode`` pulls (5 in the paper).

With 10 arms and 5 pulls the Bayes-optimal policy pulls the informative arm first (expected 0.55)
and then the target four times (20), 20.55 per episode; searching the ordinary arms instead earns
11 (``learn2rl.experiments.wang2016_informative`` computes both exactly). An agent can only decode
the target if it sees the reward *value*: RL^2 gets it as the ``prev_reward`` input of the trial.

The task parameter is just the target index, so ``tasks(n, "test")`` is a fixed list of targets.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import TaskFamily


@struct.dataclass
class InformativeParams:
    """One task: the index (0-based) of the ordinary arm that pays ``target_reward``."""

    target: jax.Array  # int32 scalar in [0, num_arms)


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise Learn2RLError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class InformativeBandit(TaskFamily):
    """``num_arms`` ordinary arms (one target) plus an informative arm, which is action
    ``num_arms``."""

    has_expected_reward = True

    def __init__(
        self,
        num_arms: int = 10,
        pulls_per_episode: int = 5,
        target_reward: float = 5.0,
        other_reward: float = 1.0,
    ):
        super().__init__()
        self.num_arms = _positive_int("num_arms", num_arms, minimum=2)
        self.episode_length = _positive_int("pulls_per_episode", pulls_per_episode)
        if not target_reward > other_reward:
            raise Learn2RLError(
                f"target_reward must exceed other_reward, got {target_reward} <= {other_reward}"
            )
        self.target_reward = float(target_reward)
        self.other_reward = float(other_reward)
        self.family_id = f"bandit/informative-{num_arms + 1}arm"

    @property
    def num_actions(self) -> int:
        return self.num_arms + 1

    @property
    def informative_arm(self) -> int:
        return self.num_arms

    def sample_params(self, key: jax.Array) -> InformativeParams:
        return InformativeParams(target=jax.random.randint(key, (), 0, self.num_arms, jnp.int32))

    def arm_rewards(self, params: InformativeParams) -> jax.Array:
        """The (deterministic) reward of every action, informative arm last: [num_actions]."""
        ordinary = jnp.where(
            jnp.arange(self.num_arms) == params.target, self.target_reward, self.other_reward
        )
        informative = (params.target + 1).astype(jnp.float32) / self.num_arms
        return jnp.concatenate([ordinary, informative[None]]).astype(jnp.float32)

    def reset_env(self, key: jax.Array, params: InformativeParams):
        return jnp.zeros((0,), jnp.float32), environment.EnvState(time=jnp.int32(0))

    def step_env(self, key: jax.Array, state, action: jax.Array, params: InformativeParams):
        reward = self.arm_rewards(params)[action]
        new_state = environment.EnvState(time=state.time + 1)
        return jnp.zeros((0,), jnp.float32), new_state, reward, jnp.asarray(False), {}

    def expected_reward(self, params: InformativeParams, state, action: jax.Array) -> jax.Array:
        return self.arm_rewards(params)[action]

    def best_expected_reward(self, params: InformativeParams, state) -> jax.Array:
        return jnp.float32(self.target_reward)

    def action_space(self, params=None):
        return spaces.Discrete(self.num_actions)

    def observation_space(self, params=None):
        return spaces.Box(0.0, 1.0, (0,), jnp.float32)


TASKS: list = [
    (
        "bandit/informative-11arm",
        InformativeBandit,
        "10 arms (target pays 5, others 1) + an informative arm paying target/10; 5 pulls "
        "(Wang et al. 2016)",
        {"num_arms": 10, "pulls_per_episode": 5},
    ),
]
