"""Meta-learners. ``get(name)`` returns a learner's (Config class, learner class).

Every learner class meets ``learn2rl.types.Learner``: ``cls(config)`` builds it (a learner of a
task family builds the family from ``config.task``), and the runner, checkpoints, the CLI and
the experiments use only that contract.
"""

from __future__ import annotations

from learn2rl.errors import Learn2RLError
from learn2rl.learners import (
    diayn,
    epg,
    hochreiter2001,
    maesn,
    maml,
    metagradient,
    poet,
    reptile,
    rl2,
)
from learn2rl.learners.episodic import episodic_lstm, mfec, nec
from learn2rl.learners.objectives import metagenrl
from learn2rl.learners.offpolicy import dqn, td3

_LEARNERS = {
    "rl2": (rl2.Config, rl2.RL2),
    "maml": (maml.Config, maml.MAML),
    "reptile": (reptile.Config, reptile.Reptile),
    "maesn": (maesn.Config, maesn.MAESN),
    "hochreiter2001": (hochreiter2001.Config, hochreiter2001.FunctionLearner),
    "td3": (td3.Config, td3.OffPolicy),
    "ddpg": (td3.DDPGConfig, td3.OffPolicy),
    "metagenrl": (metagenrl.Config, metagenrl.MetaGenRL),
    "metagradient": (metagradient.Config, metagradient.MetaGradient),
    "mfec": (mfec.Config, mfec.MFEC),
    "nec": (nec.Config, nec.NEC),
    "dqn": (dqn.Config, dqn.DQN),
    "epg": (epg.Config, epg.EPG),
    "episodic_lstm": (episodic_lstm.Config, episodic_lstm.EpisodicLSTM),
    "diayn": (diayn.Config, diayn.DIAYN),
    "poet": (poet.Config, poet.POET),
}
_DESCRIPTIONS = {
    "rl2": "RL^2 / learning to reinforcement learn: recurrent A2C or PPO (Duan 2016, Wang 2016)",
    "maml": "MAML: a policy one VPG step from every task; PPO outer loop (Finn 2017)",
    "reptile": "Reptile: move towards the policies VPG reaches on each task (Nichol 2018)",
    "maesn": "MAESN: MAML with per-task latent exploration noise (Gupta 2018)",
    "hochreiter2001": "LSTM that fits new quadratics in its activations (Hochreiter 2001)",
    "td3": "TD3 on one continuous-control environment; or a policy trained by a learned objective",
    "ddpg": "DDPG on one continuous-control environment (TD3 with one critic, no delay)",
    "metagenrl": "MetaGenRL: an LSTM objective meta-learned through agents' critics (Kirsch 2020)",
    "metagradient": "Meta-gradient RL: actor-critic learning its gamma, lambda online (Xu 2018)",
    "mfec": "Model-free episodic control: k-NN tables of best returns (Blundell 2016)",
    "nec": "Neural episodic control: embedding + differentiable neural dictionaries (Pritzel 2017)",
    "dqn": "DQN with NEC's torso and update budget, the episodic-control baseline (Mnih 2015)",
    "epg": "Evolved Policy Gradients: a temporal-conv loss evolved by ES (Houthooft 2018)",
    "episodic_lstm": "Episodic LSTM: RL^2 plus cell-state reinstatement from a DND (Ritter 2018)",
    "diayn": "DIAYN: skills without a reward, told apart by a discriminator (Eysenbach 2019)",
    "poet": "POET: obstacle courses and their ES-trained runners co-evolved (Wang 2019)",
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
