"""learn2rl: meta-reinforcement learning in JAX.

The public API is what this module re-exports; everything else is internal.
"""

from learn2rl import baselines, tasks
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import EvalResult, evaluate
from learn2rl.learners.rl2 import RL2, Config
from learn2rl.tasks import TaskFamily, list_tasks, make
from learn2rl.trial import Trial
from learn2rl.types import Agent, TrialObs

__version__ = "0.1.0"

__all__ = [
    "RL2", "Agent", "Config", "EvalResult", "Learn2RLError", "TaskFamily", "Trial", "TrialObs",
    "baselines", "evaluate", "list_tasks", "make", "tasks",
]
