"""learn2rl: meta-reinforcement learning in JAX.

The public API is what this module re-exports; everything else is internal.

Importing learn2rl asks XLA for one CPU device per core (``learn2rl.devices``) unless JAX has
already started or ``LEARN2RL_CPU_DEVICES=0`` is set: training shards its task batch over them.
It also turns off XLA's concurrency-optimised CPU scheduler, under which batched LAPACK calls can
deadlock (``devices.avoid_cpu_lapack_deadlock``), and joins a multi-process run when the
``learn2rl`` command line or the ``LEARN2RL_*`` variables name one
(``distributed.initialize_early``). All three have to happen here, first, because importing
gymnax starts JAX's backends.
"""

from learn2rl.devices import avoid_cpu_lapack_deadlock, use_cpu_cores
from learn2rl.distributed import initialize_early

avoid_cpu_lapack_deadlock()
use_cpu_cores()
initialize_early()

from learn2rl import baselines, tasks  # noqa: E402
from learn2rl.errors import Learn2RLError  # noqa: E402
from learn2rl.evaluation import EvalResult, evaluate  # noqa: E402
from learn2rl.learners.rl2 import RL2, Config  # noqa: E402
from learn2rl.tasks import TaskFamily, list_tasks, make  # noqa: E402
from learn2rl.trial import Trial  # noqa: E402
from learn2rl.types import Agent, TrialObs  # noqa: E402
from learn2rl.version import __version__  # noqa: E402

__all__ = [
    "RL2",
    "__version__",
    "Agent",
    "Config",
    "EvalResult",
    "Learn2RLError",
    "TaskFamily",
    "Trial",
    "TrialObs",
    "baselines",
    "evaluate",
    "list_tasks",
    "make",
    "tasks",
]
