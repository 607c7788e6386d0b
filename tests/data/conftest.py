"""Shared helpers for the data-layer tests: small synthetic episodes written into real Zarr stores on disk."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from manip.data.store import EpisodeStore


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


def write_dp_v2_store(path, episodes: list[dict[str, np.ndarray]], image_compressor=None) -> None:
    """Write ``episodes`` the way Diffusion Policy's ReplayBuffer does: zarr v2, data/<key>, meta/episode_ends."""
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    data, meta = root.require_group("data"), root.require_group("meta")
    for key in episodes[0]:
        value = np.concatenate([e[key] for e in episodes])
        image = value.ndim == 4
        chunks = (1, *value.shape[1:]) if image else (min(len(value), 100), *value.shape[1:])
        extra = {"compressors": image_compressor} if image and image_compressor is not None else {}
        array = data.create_array(key, shape=value.shape, chunks=chunks, dtype=value.dtype, **extra)
        array[:] = value
    ends = np.cumsum([len(next(iter(e.values()))) for e in episodes]).astype(np.int64)
    meta.create_array("episode_ends", shape=ends.shape, chunks=ends.shape, dtype="int64")[:] = ends


def zip_store(directory, zip_path) -> None:
    """Zip a directory store with stored (uncompressed) entries, like zarr's ZipStore."""
    import os
    import zipfile

    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_STORED) as archive:
        for root, _dirs, files in os.walk(directory):
            for name in files:
                full = os.path.join(root, name)
                archive.write(full, os.path.relpath(full, directory))


def run_on_a_tty(*args: str) -> tuple[int, str]:
    """Run ``manip ARGS`` with stderr on a pseudo-terminal (progress enabled); return (exit code, stderr)."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    env = {k: v for k, v in os.environ.items() if k != "MANIP_NO_PROGRESS"}
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns wide
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "manip.cli.main", *args],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        cwd=Path(__file__).resolve().parents[2],
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=300), b"".join(chunks).decode(errors="replace")
