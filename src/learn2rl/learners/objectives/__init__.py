"""Learned objectives: MetaGenRL (and the policy losses it is compared with)."""
