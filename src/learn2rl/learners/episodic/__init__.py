"""Episodic control: MFEC (Blundell et al. 2016, arXiv 1606.04460), NEC (Pritzel et al. 2017,
arXiv 1703.01988) and the DQN baseline NEC is compared with, on one discrete-action gymnax
environment. The key-value memory is ``learn2rl.ops.dnd``."""
