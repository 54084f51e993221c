"""The training engine: train state and optimizer, the jitted train step, the training
loop, checkpoints and preemption, metric writing."""
