"""Skills as tasks: a family whose task is a skill, rewarded by a frozen DIAYN discriminator.

Gupta, Eysenbach, Finn & Levine 2018, "Unsupervised Meta-Learning for Reinforcement Learning"
(arXiv 1806.04640): a task distribution proposed without any reward function, by training DIAYN
(``learn2rl.learners.diayn``) and turning each learned skill into a task. Here:

- a task is a skill index ``z`` (int32), uniform over the discriminator's ``num_skills`` skills,
  plus a draw of the base family's own task parameters (which its dynamics may read);
- the environment is the base family's dynamics: same observations, actions, action box, episode
  length and truncation; its reward and termination are dropped, as DIAYN dropped them;
- the reward of a step is DIAYN's pseudo-reward ``log q(z | s') - log p(z)`` of the frozen
  discriminator ``q`` (its parameters are fixed when the family is built);
- the skill is not part of the observation: a meta-learner (RL^2, MAML) has to infer which skill
  it is asked for from the rewards alone.

The family lives in the learners layer, not in ``tasks/``: its reward is the DIAYN
discriminator network, and task families may not import networks or learners.

The family compares by value like every family: the discriminator's parameters by their contents,
the base family by its own value.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.base import TaskFamily
from learn2rl.tasks.control.base import ControlFamily


@struct.dataclass
class SkillParams:
    skill: jax.Array  # int32 scalar: the skill z whose pseudo-reward is paid
    base: Any  # the base family's task parameters (only its dynamics read them)


class SkillRewardFamily(ControlFamily):
    """The base family's dynamics; reward ``log q(z | s') - log p(z)`` of a frozen discriminator
    for a hidden skill ``z``."""

    _derived_attributes = ("base", "discriminator")

    def __init__(
        self,
        base: TaskFamily,
        discriminator_params: Any,
        num_skills: int,
        hidden_sizes: tuple[int, ...],
    ):
        from learn2rl.learners.diayn import discriminator_network

        super().__init__()
        if not isinstance(base, TaskFamily) or not getattr(base, "continuous", False):
            raise Learn2RLError(
                f"SkillRewardFamily needs a continuous-control base family, got {base!r}"
            )
        if isinstance(num_skills, bool) or not isinstance(num_skills, int) or num_skills < 2:
            raise Learn2RLError(f"num_skills must be an integer >= 2, got {num_skills!r}")
        hidden_sizes = tuple(hidden_sizes)
        if not hidden_sizes or any(
            isinstance(h, bool) or not isinstance(h, int) or h <= 0 for h in hidden_sizes
        ):
            raise Learn2RLError(f"hidden_sizes must be positive integers, got {hidden_sizes!r}")
        self.base = base
        self.num_skills = num_skills
        self.hidden_sizes = hidden_sizes
        self.discriminator = discriminator_network(num_skills, hidden_sizes)
        # Plain nested dicts of numpy arrays: compared by content, never changed.
        params = jax.tree.map(
            lambda x: np.array(x, copy=True), jax.device_get(discriminator_params)
        )
        for leaf in jax.tree.leaves(params):
            leaf.flags.writeable = False
        self.discriminator_params = _plain(params)
        self._check_discriminator()
        self.continuous = True
        self.action_size = int(base.action_size)
        self.observation_size = int(base.observation_size)
        self.action_low = base.action_low
        self.action_high = base.action_high
        self.episode_length = int(base.episode_length)
        self.family_id = f"skills:{base.family_id}"

    def _check_discriminator(self) -> None:
        try:
            logits = self.discriminator.apply(
                self.discriminator_params, jnp.zeros((self.base.observation_size,), jnp.float32)
            )
        except Exception as err:  # flax names the missing or misshaped parameter
            raise Learn2RLError(
                f"discriminator_params do not fit an MLP of hidden sizes {self.hidden_sizes} with "
                f"{self.num_skills} skills: {str(err).splitlines()[0]}"
            ) from None
        if logits.shape != (self.num_skills,):
            raise Learn2RLError(
                f"the discriminator gives {logits.shape[-1]} logits, expected {self.num_skills}"
            )

    def _value(self) -> tuple:
        # The base family is compared by its own value (it is left out of the generic walk,
        # which would compare an object of unknown kind by identity).
        kind, items = super()._value()
        return (kind, (*items, ("base", self.base)))

    def discriminator_hash(self) -> str:
        """A BLAKE2b digest of the frozen discriminator's parameters (names, dtypes, shapes and
        bytes): equal before and after meta-training shows that it stayed frozen."""
        digest = hashlib.blake2b(digest_size=16)
        leaves = jax.tree_util.tree_leaves_with_path(self.discriminator_params)
        for path, leaf in leaves:
            data = np.ascontiguousarray(leaf)
            digest.update(jax.tree_util.keystr(path).encode())
            digest.update(f"{data.dtype.str}{data.shape}".encode())
            digest.update(data.tobytes())
        return digest.hexdigest()

    # --- the prior over tasks --------------------------------------------------------------
    def sample_params(self, key: jax.Array) -> SkillParams:
        k_skill, k_base = jax.random.split(key)
        skill = jax.random.randint(k_skill, (), 0, self.num_skills, dtype=jnp.int32)
        return SkillParams(skill=skill, base=self.base.sample_params(k_base))

    # --- dynamics and reward ---------------------------------------------------------------
    def reset_env(self, key: jax.Array, params: SkillParams):
        return self.base.reset_env(key, params.base)

    def step_env(self, key: jax.Array, state: Any, action: jax.Array, params: SkillParams):
        obs, state, _, _, info = self.base.step_env(key, state, action, params.base)
        reward = self.reward(jnp.asarray(obs, jnp.float32), params.skill)
        return obs, state, reward, jnp.asarray(False), info

    def reward(self, next_obs: jax.Array, skill: jax.Array) -> jax.Array:
        """``log q(skill | next_obs) - log p(skill)`` under the frozen discriminator."""
        from learn2rl.learners.diayn import pseudo_reward

        params = jax.tree.map(jnp.asarray, self.discriminator_params)
        return pseudo_reward(self.discriminator, params, next_obs, skill).astype(jnp.float32)

    def is_truncated(self, state: Any, params: SkillParams) -> jax.Array:
        return self.base.is_truncated(state, params.base)

    def observation_space(self, params=None):
        return self.base.observation_space()


def _plain(tree: Any) -> Any:
    """Mappings as plain dicts (flax may hand back FrozenDicts), leaves untouched."""
    if hasattr(tree, "items"):
        return {k: _plain(v) for k, v in tree.items()}
    return tree
