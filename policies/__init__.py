"""manip.policies: encoders, backbones, generative heads, policy classes, the trainer and checkpoints."""
