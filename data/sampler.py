"""SequenceSampler: fixed-length windows over the episodes of an EpisodeStore, padded like Diffusion Policy.

A window has ``sequence_length = horizon + n_latency_steps`` steps. Windows may start up to
``pad_before = n_obs_steps - 1 + n_latency_steps`` steps before an episode's first step and end up to
``pad_after = n_action_steps - 1`` steps after its last one; the missing steps repeat the episode's first or
last step (edge replication), exactly as Diffusion Policy's ``SequenceSampler`` does. Windows never cross
episode boundaries. The index is built with numpy (no Python loop over steps or episodes).

Low-dim arrays are loaded into memory once; frame arrays (images) stay in the store and each window reads
only the frames it needs. ``first_k`` limits a key to the first k steps of each window (observations need only
``n_obs_steps`` frames, so images beyond them are never read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from data import layout
from data.errors import ManipError
from data.store import EpisodeStore


def build_indices(
    episode_ends: np.ndarray,
    sequence_length: int,
    pad_before: int = 0,
    pad_after: int = 0,
    episode_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Windows as rows ``(buffer_start, buffer_end, sample_start, sample_end)`` (int64), vectorized.

    Steps ``buffer_start:buffer_end`` of the concatenated arrays fill window positions
    ``sample_start:sample_end``; positions before/after repeat the first/last of them.
    """
    ends = np.asarray(episode_ends, dtype=np.int64)
    if ends.ndim != 1:
        raise ManipError(f"episode_ends must be 1-D, got shape {ends.shape}")
    if sequence_length < 1:
        raise ManipError(f"sequence length must be >= 1, got {sequence_length}")
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    lengths = ends - starts
    mask = np.ones(len(ends), bool) if episode_mask is None else np.asarray(episode_mask, bool)
    if mask.shape != ends.shape:
        raise ManipError(f"episode_mask has {mask.shape[0]} entries for {len(ends)} episodes")
    pad_before = min(max(int(pad_before), 0), sequence_length - 1)
    pad_after = min(max(int(pad_after), 0), sequence_length - 1)
    min_start = -pad_before
    max_start = lengths - sequence_length + pad_after
    counts = np.where(mask, np.maximum(max_start - min_start + 1, 0), 0)
    episode = np.repeat(np.arange(len(ends)), counts)
    first_of_episode = np.repeat(np.cumsum(counts) - counts, counts)
    idx = min_start + (np.arange(int(counts.sum()), dtype=np.int64) - first_of_episode)
    ep_start, ep_len = starts[episode], lengths[episode]
    buffer_start = np.maximum(idx, 0) + ep_start
    buffer_end = np.minimum(idx + sequence_length, ep_len) + ep_start
    sample_start = buffer_start - (idx + ep_start)
    sample_end = sequence_length - ((idx + sequence_length + ep_start) - buffer_end)
    return np.stack([buffer_start, buffer_end, sample_start, sample_end], axis=1).astype(np.int64)


class SequenceSampler:
    """Windows of ``horizon + n_latency_steps`` steps with Diffusion Policy's padding (see module docstring)."""

    def __init__(
        self,
        store: EpisodeStore,
        keys: Sequence[str],
        horizon: int,
        n_obs_steps: int,
        n_action_steps: int,
        n_latency_steps: int = 0,
        episode_mask: np.ndarray | None = None,
        first_k: Mapping[str, int] | None = None,
    ):
        if not keys:
            raise ManipError("SequenceSampler: no keys to sample")
        for name, value in (
            ("horizon", horizon),
            ("n_obs_steps", n_obs_steps),
            ("n_action_steps", n_action_steps),
        ):
            if int(value) < 1:
                raise ManipError(f"SequenceSampler: {name} must be >= 1, got {value}")
        if n_latency_steps < 0:
            raise ManipError(f"SequenceSampler: n_latency_steps must be >= 0, got {n_latency_steps}")
        if n_obs_steps > horizon + n_latency_steps:
            raise ManipError(f"SequenceSampler: n_obs_steps {n_obs_steps} exceeds horizon {horizon}")
        self.store = store
        self.keys = list(keys)
        self.horizon = int(horizon)
        self.n_obs_steps = int(n_obs_steps)
        self.n_action_steps = int(n_action_steps)
        self.n_latency_steps = int(n_latency_steps)
        self.sequence_length = self.horizon + self.n_latency_steps
        self.pad_before = self.n_obs_steps - 1 + self.n_latency_steps
        self.pad_after = self.n_action_steps - 1
        self.first_k = {k: int(v) for k, v in (first_k or {}).items()}
        for key, k in self.first_k.items():
            if key not in self.keys or not 1 <= k <= self.sequence_length:
                raise ManipError(
                    f"SequenceSampler: first_k[{key!r}]={k} is not a sampled key with 1..{self.sequence_length}"
                )
        self.indices = build_indices(
            store.episode_ends, self.sequence_length, self.pad_before, self.pad_after, episode_mask
        )
        self._sources = {key: self._source(key) for key in self.keys}

    def _source(self, key: str):
        shape, dtype = self.store.step_spec(key)
        if layout.is_frame(shape, dtype):
            return self.store.array(key)
        return self.store.read(key, 0, self.store.num_steps)

    def __len__(self) -> int:
        return len(self.indices)

    def sample(self, i: int) -> dict[str, np.ndarray]:
        """Window ``i``: ``{key: (sequence_length, ...)}`` (``(k, ...)`` for keys in ``first_k``)."""
        if not -len(self) <= i < len(self):
            raise ManipError(f"SequenceSampler: window {i} out of range ({len(self)} windows)")
        buffer_start, buffer_end, sample_start, _sample_end = (int(v) for v in self.indices[i])
        result = {}
        for key in self.keys:
            steps = self.first_k.get(key, self.sequence_length)
            positions = np.arange(steps) - sample_start + buffer_start
            positions = np.clip(positions, buffer_start, buffer_end - 1)
            lo, hi = int(positions[0]), int(positions[-1]) + 1
            source = self._sources[key]
            block = source[lo:hi] if isinstance(source, np.ndarray) else self._read_frames(key, lo, hi)
            result[key] = block[positions - lo]
        return result

    def _read_frames(self, key: str, lo: int, hi: int) -> np.ndarray:
        try:
            return np.asarray(self._sources[key][lo:hi])
        except Exception as exc:
            raise ManipError(f"{self.store.path}/data/{key}: unreadable steps {lo}:{hi} ({exc})") from None
