"""Shared helpers for the data-layer tests: small synthetic episodes written into real Zarr stores on disk."""

from __future__ import annotations

import numpy as np
import pytest

from data.store import EpisodeStore


def make_episode(rng: np.random.Generator, length: int, image: bool = False) -> dict[str, np.ndarray]:
    """A synthetic episode: action (T, 7) float32, robot0_eef_pos (T, 3) float32, optional 84x84 camera."""
    episode = {
        "action": rng.uniform(-1, 1, (length, 7)).astype(np.float32),
        "robot0_eef_pos": rng.normal(size=(length, 3)).astype(np.float32),
    }
    if image:
        episode["agentview_image"] = rng.integers(0, 256, (length, 84, 84, 3), dtype=np.uint8)
    return episode


def fill_store(path, lengths, zarr_format: int = 3, image: bool = False, seed: int = 0) -> list[dict]:
    """Create a store at ``path`` holding one episode per entry of ``lengths``; return the episodes written."""
    rng = np.random.default_rng(seed)
    store = EpisodeStore.create(path, zarr_format=zarr_format)
    episodes = [make_episode(rng, n, image) for n in lengths]
    for i, episode in enumerate(episodes):
        store.add_episode(episode, {"task": "Lift", "seed": i, "success": i % 2 == 0})
    return episodes


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
