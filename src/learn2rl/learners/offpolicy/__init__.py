"""Off-policy learners: replay buffer, TD3, DDPG, DQN."""
