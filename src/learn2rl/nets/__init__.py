"""Networks (flax linen)."""

from learn2rl.nets.recurrent import RecurrentActorCritic, trial_features

__all__ = ["RecurrentActorCritic", "trial_features"]
