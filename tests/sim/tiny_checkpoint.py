"""A tiny untrained low-dim policy checkpoint with Lift's observation and action specs (no data, no training)."""

from __future__ import annotations

from pathlib import Path


def lift_checkpoint(path: str | Path, seed: int = 0, **policy) -> Path:
    """Save an untrained flow policy for Lift's low-dim observations at ``path``; ``seed`` picks its weights,
    ``policy`` overrides policy-config keys (e.g. another ``head``)."""
    import numpy as np
    import torch

    from manip.core.specs import FeatureSpec, Spec
    from manip.data.normalizer import Normalizer
    from manip.policies.config import POLICY_TYPES, parse_policy_config

    shapes = {"robot0_eef_pos": (3,), "robot0_eef_quat": (4,), "robot0_gripper_qpos": (2,), "object": (10,)}
    obs_spec = Spec(tuple(FeatureSpec(k, s) for k, s in shapes.items()))
    rng = np.random.default_rng(seed)
    data = {k: rng.normal(size=(32, *s)).astype(np.float32) for k, s in shapes.items()}
    data["action"] = rng.uniform(-0.1, 0.1, size=(32, 7)).astype(np.float32)
    config = parse_policy_config(
        {
            "obs_keys": list(shapes),
            "horizon": 8,
            "n_action_steps": 4,
            "backbone": {"name": "unet1d", "down_dims": [16, 32], "time_embed_dim": 16},
            "head": {"name": "flow", "default_steps": 1},
            **policy,
        }
    )
    normalizer = Normalizer.fit([data], dict.fromkeys(data, "minmax"))
    torch.manual_seed(seed)
    policy = POLICY_TYPES.get(config.type).cls(
        config, obs_spec, Spec((FeatureSpec("action", (7,)),)), normalizer
    )
    policy.save_pretrained(path)
    return Path(path)
