"""ChunkDataset: a torch ``Dataset`` of (observation history, action chunk) windows from an EpisodeStore.

Item ``i`` is ``{"obs": {key: (n_obs_steps, ...)}, "action": (horizon, A)}`` as torch tensors: the first
``n_obs_steps`` observations of a window and the ``horizon`` actions starting ``n_latency_steps`` after the
window's first step. Images stay uint8 HWC (augmentation and scaling are the policy's job). Episodes are split
into train/validation by a seeded draw (:func:`validation_mask`), the same way for every run with that seed.

This is the only module of ``data/`` that imports torch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from manip.core.errors import ManipError
from manip.data.sampler import FRAME_MEMORY_BYTES, SequenceSampler
from manip.data.store import EpisodeStore


def validation_mask(num_episodes: int, val_ratio: float, seed: int) -> np.ndarray:
    """Boolean mask of validation episodes: ``round(n * val_ratio)`` of them (at least 1, at most n-1), drawn by seed."""
    if not 0.0 <= val_ratio < 1.0:
        raise ManipError(f"val_ratio must be in [0, 1), got {val_ratio}")
    mask = np.zeros(num_episodes, bool)
    if val_ratio == 0.0 or num_episodes < 2:
        return mask
    n_val = min(max(1, round(num_episodes * val_ratio)), num_episodes - 1)
    mask[np.random.default_rng(seed).choice(num_episodes, size=n_val, replace=False)] = True
    return mask


class ChunkDataset(torch.utils.data.Dataset):
    """Training windows of one store (see the module docstring)."""

    def __init__(
        self,
        store: EpisodeStore | str | Path,
        obs_keys: Sequence[str],
        horizon: int,
        n_obs_steps: int,
        n_action_steps: int,
        n_latency_steps: int = 0,
        action_key: str = "action",
        val_ratio: float = 0.0,
        seed: int = 0,
        max_train_episodes: int | None = None,
        frame_memory_bytes: int = FRAME_MEMORY_BYTES,
        filter_key: str | None = None,
        _validation: bool = False,
    ):
        self.store = store if isinstance(store, EpisodeStore) else EpisodeStore.open(store)
        if self.store.num_episodes == 0:
            raise ManipError(f"{self.store.path}: has no episodes to train on")
        missing = [k for k in [*obs_keys, action_key] if k not in self.store.keys]
        if missing:
            raise ManipError(
                f"{self.store.path}: missing key(s) {', '.join(missing)} (store keys: {', '.join(self.store.keys)})"
            )
        self.obs_keys = list(obs_keys)
        self.action_key = action_key
        self.n_obs_steps = int(n_obs_steps)
        self.horizon = int(horizon)
        self.n_latency_steps = int(n_latency_steps)
        self._settings = dict(
            obs_keys=self.obs_keys,
            horizon=horizon,
            n_obs_steps=n_obs_steps,
            n_action_steps=n_action_steps,
            n_latency_steps=n_latency_steps,
            action_key=action_key,
            val_ratio=val_ratio,
            seed=seed,
            frame_memory_bytes=frame_memory_bytes,
            filter_key=filter_key,
        )
        val = validation_mask(self.store.num_episodes, val_ratio, seed)
        if filter_key is not None:  # only the episodes the filter key selects, in both splits
            from manip.data.filter_keys import filter_key_mask

            val &= filter_key_mask(self.store, filter_key)
            train = ~val & filter_key_mask(self.store, filter_key)
        else:
            train = ~val
        if max_train_episodes is not None and train.sum() > max_train_episodes:
            keep = np.random.default_rng(seed).choice(
                np.flatnonzero(train), max_train_episodes, replace=False
            )
            train = np.zeros_like(train)
            train[keep] = True
        self.episode_mask = val if _validation else train
        keys = list(dict.fromkeys([*self.obs_keys, action_key]))
        first_k = {k: self.n_obs_steps for k in self.obs_keys if k != action_key}
        self.sampler = SequenceSampler(
            self.store,
            keys,
            horizon,
            n_obs_steps,
            n_action_steps,
            n_latency_steps,
            self.episode_mask,
            first_k,
            frame_memory_bytes,
        )

    def __len__(self) -> int:
        return len(self.sampler)

    def window_episodes(self) -> np.ndarray:
        """The episode index of every item, ``(len(self),)``."""
        return self.sampler.window_episodes()

    def window_steps(self) -> np.ndarray:
        """The store steps ``(buffer_start, buffer_end)`` every item's window covers, ``(len(self), 2)``."""
        return self.sampler.indices[:, :2]

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"ChunkDataset index {i} out of range ({len(self)} windows)")
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: list[int]) -> list[dict]:
        """Many items at once (torch's DataLoader uses this): one gather per key instead of one per item."""
        batch = self.sampler.sample_batch(indices)
        lat = self.n_latency_steps
        actions = batch[self.action_key][:, lat : lat + self.horizon]
        obs = {k: batch[k][:, : self.n_obs_steps] for k in self.obs_keys}
        return [
            {
                "obs": {k: torch.from_numpy(np.ascontiguousarray(v[j])) for k, v in obs.items()},
                "action": torch.from_numpy(np.ascontiguousarray(actions[j])),
            }
            for j in range(len(actions))
        ]

    def get_validation_dataset(self) -> ChunkDataset:
        """The held-out episodes (same seed and ratio) as a dataset; empty when ``val_ratio`` is 0."""
        return ChunkDataset(self.store, **self._settings, _validation=True)

    @property
    def episodes(self) -> np.ndarray:
        """Indices of the episodes this dataset draws from."""
        return np.flatnonzero(self.episode_mask)

    def iter_episodes(self, keys: Sequence[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Yield this split's episodes as ``{key: (T, ...)}`` numpy arrays (e.g. for ``Normalizer.fit``)."""
        keys = list(keys) if keys is not None else list(dict.fromkeys([*self.obs_keys, self.action_key]))
        for i in self.episodes:
            yield self.store.get_episode(int(i), keys)
