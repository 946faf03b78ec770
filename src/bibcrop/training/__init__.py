"""Training: DeepLab's loss, LR schedule and optimizer recipe, checkpoints and resume."""
