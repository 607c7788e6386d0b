"""Fixtures: a small real Zarr store on disk (synthetic but learnable Lift-like episodes) and tiny configs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from manip.data.store import EpisodeStore
from tests.tiny_train import tiny_train_raw as _tiny_train_raw

OBS_KEYS = ["robot0_eef_pos", "object"]


def write_store(path: Path, episodes: int = 6, length: int = 24, seed: int = 0) -> Path:
    """Episodes where the action is a smooth function of the observation (so a policy can fit it)."""
    rng = np.random.default_rng(seed)
    store = EpisodeStore.create(path)
    for i in range(episodes):
        t = np.linspace(0, 1, length, dtype=np.float32)[:, None]
        start = rng.uniform(-0.2, 0.2, size=(1, 3)).astype(np.float32)
        eef = start + t * np.array([[0.1, -0.05, 0.2]], np.float32)
        obj = np.concatenate([np.repeat(start, length, 0), np.tile(rng.normal(size=(1, 7)), (length, 1))], 1)
        action = np.concatenate(
            [np.diff(eef, axis=0, append=eef[-1:]) * 10, np.zeros((length, 3)), np.sign(t - 0.5)], 1
        )
        store.add_episode(
            {"robot0_eef_pos": eef, "object": obj.astype(np.float32), "action": action.astype(np.float32)},
            {"success": True, "seed": i, "task": "Lift"},
        )
    return path


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> Path:
    return write_store(tmp_path_factory.mktemp("store") / "tiny.zarr")


@pytest.fixture(scope="session")
def tiny_train_raw():
    """``tiny_train_raw(store, head, **trainer)``: a complete raw TrainConfig with a tiny UNet."""
    return _tiny_train_raw
