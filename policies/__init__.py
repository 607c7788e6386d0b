"""manip.policies: encoders, backbones, generative heads, policy classes, the trainer and checkpoints.

``manip.policies.load_policy(dir)`` loads any checkpoint directory (imported lazily so ``import manip.policies`` is cheap).
"""

from __future__ import annotations


def __getattr__(name: str):
    if name == "load_policy":
        from manip.policies.checkpoint import load_policy

        return load_policy
    raise AttributeError(f"module 'manip.policies' has no attribute {name!r}")
