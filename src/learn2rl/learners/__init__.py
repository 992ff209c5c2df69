"""Meta-learners. ``get(name)`` returns a learner's (Config class, learner class)."""

from __future__ import annotations

from learn2rl.errors import Learn2RLError
from learn2rl.learners import maesn, maml, reptile, rl2

_LEARNERS = {
    "rl2": (rl2.Config, rl2.RL2),
    "maml": (maml.Config, maml.MAML),
    "reptile": (reptile.Config, reptile.Reptile),
    "maesn": (maesn.Config, maesn.MAESN),
}
_DESCRIPTIONS = {
    "rl2": "RL^2 / learning to reinforcement learn: recurrent A2C or PPO (Duan 2016, Wang 2016)",
    "maml": "MAML: a policy one VPG step from every task; PPO outer loop (Finn 2017)",
    "reptile": "Reptile: move towards the policies VPG reaches on each task (Nichol 2018)",
    "maesn": "MAESN: MAML with per-task latent exploration noise (Gupta 2018)",
}


def get(name: str):
    if name not in _LEARNERS:
        raise Learn2RLError(
            f"unknown learner {name!r}; known learners: {', '.join(list_learners())}"
        )
    return _LEARNERS[name]


def list_learners() -> list[str]:
    return sorted(_LEARNERS)


def describe(name: str) -> str:
    return _DESCRIPTIONS[name]
