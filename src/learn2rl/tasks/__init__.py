"""Task families and their registry."""

from learn2rl.tasks.bandits import BanditParams, BernoulliBandit, DependentBandit, GaussianBandit
from learn2rl.tasks.base import SPLITS, TaskFamily
from learn2rl.tasks.registry import describe, list_tasks, make, register

__all__ = [
    "SPLITS",
    "BanditParams",
    "BernoulliBandit",
    "DependentBandit",
    "GaussianBandit",
    "TaskFamily",
    "describe",
    "list_tasks",
    "make",
    "register",
]
