"""A complete raw training config with a tiny 1-D UNet: the one that the tests of every layer train from."""

from __future__ import annotations

from pathlib import Path


def tiny_train_raw(
    store: str | Path,
    head: str = "diffusion",
    *,
    task: str = "Lift",
    obs_keys: list[str] | None = None,
    **trainer,
) -> dict:
    """A raw TrainConfig for ``store`` (``obs_keys`` default: robot0_eef_pos and object), ``trainer`` overriding
    the short schedule."""
    return {
        "task": task,
        "data": {"path": str(store)},
        "policy": {
            "obs_keys": ["robot0_eef_pos", "object"] if obs_keys is None else obs_keys,
            "n_obs_steps": 2,
            "horizon": 8,
            "n_action_steps": 4,
            "encoders": {"lowdim": {"hidden": [32], "out_dim": 16}},
            "backbone": {"name": "unet1d", "down_dims": [16, 32], "time_embed_dim": 16, "n_groups": 4},
            "head": {"name": head},
        },
        "trainer": {
            "steps": 6,
            "batch_size": 8,
            "warmup_steps": 2,
            "log_every": 2,
            "save_every": 3,
            **trainer,
        },
    }
