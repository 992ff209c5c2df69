"""Pure maths over one unbatched stream of a trial; callers vmap over tasks."""

from learn2rl.ops.losses import categorical_entropy, ppo_clip_objective
from learn2rl.ops.returns import discounted_returns, generalized_advantage_estimation

__all__ = [
    "categorical_entropy",
    "discounted_returns",
    "generalized_advantage_estimation",
    "ppo_clip_objective",
]
