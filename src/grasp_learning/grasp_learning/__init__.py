"""Learner node: stores every experience from the replay topic on disk, runs DQN updates and announces versioned
checkpoints; hosts the pretraining command."""
