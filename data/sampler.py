"""SequenceSampler: fixed-length windows over the episodes of an EpisodeStore, padded like Diffusion Policy.

A window has ``sequence_length = horizon + n_latency_steps`` steps. Windows may start up to
``pad_before = n_obs_steps - 1 + n_latency_steps`` steps before an episode's first step and end up to
``pad_after = n_action_steps - 1`` steps after its last one; the missing steps repeat the episode's first or
last step (edge replication), exactly as Diffusion Policy's ``SequenceSampler`` does. Windows never cross
episode boundaries. The index is built with numpy (no Python loop over steps or episodes).

Low-dim arrays are loaded into memory once, and so are frame arrays (images) when all sampled ones fit in
``frame_memory_bytes`` (default 1 GiB; decoding a whole array is ~4x faster per frame than random reads, and
random access then costs no decoding). Larger frame arrays stay in the store and each window reads only the
frames it needs, a batch at a time: its distinct steps sorted and read in runs of consecutive steps (one zarr call
per run instead of one per window and key), or, in a local Zarr v3 store, frame by frame straight from the shard
files (:mod:`manip.data.shard_reads`, ~10x faster). ``first_k`` limits a key to the first k steps of each window (observations need only
``n_obs_steps`` frames, so images beyond them are never read).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from manip.core.errors import ManipError
from manip.data import layout
from manip.data.shard_reads import ShardFrameReader
from manip.data.store import EpisodeStore

FRAME_MEMORY_BYTES = 1 << 30
MAX_RUN_STEPS = 64
"""Longest run of consecutive store steps one read covers when a batch is gathered from the store."""


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
        frame_memory_bytes: int = FRAME_MEMORY_BYTES,
        direct_reads: bool = True,
    ):
        """``direct_reads``: read store-backed frames straight from the shard files where the layout allows
        (:mod:`manip.data.shard_reads`); False reads every frame through zarr."""
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
        frame_keys = [k for k in self.keys if layout.is_frame(*store.step_spec(k))]
        frame_bytes = sum(self._committed_bytes(k) for k in frame_keys)
        self.frames_in_memory = frame_bytes <= frame_memory_bytes
        self._sources = {
            key: store.array(key)
            if key in frame_keys and not self.frames_in_memory
            else store.read(key, 0, store.num_steps)
            for key in self.keys
        }
        self._direct = {
            key: ShardFrameReader.for_array(source)
            for key, source in self._sources.items()
            if direct_reads and not isinstance(source, np.ndarray)
        }

    def _committed_bytes(self, key: str) -> int:
        shape, dtype = self.store.step_spec(key)
        return int(np.prod(shape)) * dtype.itemsize * self.store.num_steps

    def __len__(self) -> int:
        return len(self.indices)

    def window_episodes(self) -> np.ndarray:
        """The episode index of every window, ``(len(self),)``."""
        return np.searchsorted(np.asarray(self.store.episode_ends), self.indices[:, 0], side="right")

    def sample(self, i: int) -> dict[str, np.ndarray]:
        """Window ``i``: ``{key: (sequence_length, ...)}`` (``(k, ...)`` for keys in ``first_k``)."""
        if not -len(self) <= i < len(self):
            raise ManipError(f"SequenceSampler: window {i} out of range ({len(self)} windows)")
        return {key: value[0] for key, value in self.sample_batch([i]).items()}

    def window_positions(self, indices: np.ndarray, steps: int) -> np.ndarray:
        """Buffer step of each window position, ``(len(indices), steps)``: edge replication as index clipping."""
        rows = self.indices[np.asarray(indices, dtype=np.int64)]
        buffer_start, buffer_end, sample_start = rows[:, 0:1], rows[:, 1:2], rows[:, 2:3]
        positions = np.arange(steps)[None, :] - sample_start + buffer_start
        return np.clip(positions, buffer_start, buffer_end - 1)

    def sample_batch(self, indices) -> dict[str, np.ndarray]:
        """Windows ``indices`` stacked: ``{key: (B, sequence_length or k, ...)}``.

        Arrays held in memory are gathered with one fancy-indexing operation per key (no Python loop).
        """
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size and (indices.min() < -len(self) or indices.max() >= len(self)):
            raise ManipError(f"SequenceSampler: window index out of range ({len(self)} windows)")
        result = {}
        for key in self.keys:
            positions = self.window_positions(
                indices % max(len(self), 1), self.first_k.get(key, self.sequence_length)
            )
            source = self._sources[key]
            if isinstance(source, np.ndarray):
                result[key] = source[positions]
                continue
            result[key] = self._gather_from_store(key, positions)
        return result

    def _gather_from_store(self, key: str, positions: np.ndarray) -> np.ndarray:
        """Steps ``positions (B, k)`` of a store-backed key: the batch's distinct steps sorted, one store read per
        run of consecutive steps (at most :data:`MAX_RUN_STEPS`), so windows that overlap or touch share a read
        and no step is read twice; each read costs a fixed overhead in zarr whatever its length."""
        needed = np.unique(positions)
        direct = self._direct.get(key)
        if direct is not None:
            try:
                return direct.read(needed)[np.searchsorted(needed, positions)]
            except (OSError, ValueError, RuntimeError):
                pass  # zarr reads them below, and names the array if it cannot
        starts = np.flatnonzero(np.diff(needed, prepend=needed[0] - 2) > 1)
        runs = np.split(needed, starts[1:])
        steps = np.concatenate(
            [
                self._read_frames(key, int(run[lo]), int(run[min(lo + MAX_RUN_STEPS, len(run)) - 1]) + 1)
                for run in runs
                for lo in range(0, len(run), MAX_RUN_STEPS)
            ]
        )
        return steps[np.searchsorted(needed, positions)]

    def _read_frames(self, key: str, lo: int, hi: int) -> np.ndarray:
        try:
            return np.asarray(self._sources[key][lo:hi])
        except Exception as exc:
            raise ManipError(f"{self.store.path}/data/{key}: unreadable steps {lo}:{hi} ({exc})") from None
