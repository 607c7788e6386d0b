"""Frames read straight from the shard files of a local Zarr v3 store, without a zarr call per read.

The store writes frames one per inner chunk, Blosc-compressed, grouped into shards whose index (an
``(offset, nbytes)`` pair per inner chunk, little-endian uint64, then a CRC32C) sits at the end of the shard file
(:mod:`manip.data.layout`). Reading a frame then takes one ``pread`` of its bytes and one Blosc decode; zarr's
per-call machinery (its event-loop round trip, the sharding codec's planning) costs ~10-20× that for a two-frame
window. :meth:`ShardFrameReader.for_array` returns a reader only for arrays laid out exactly like this on a local
directory store; anything else (Zarr v2, a zipped store, other codecs) keeps using zarr.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

EMPTY = np.uint64(2**64 - 1)


class ShardFrameReader:
    """Frames ``steps`` of one sharded frame array, decoded with Blosc (see the module docstring)."""

    def __init__(self, directory: Path, array, shard_steps: int):
        self.directory = directory
        self.array = array
        self.shard_steps = shard_steps
        self.step_shape = tuple(array.shape[1:])
        self.dtype = np.dtype(array.dtype)
        self._index: dict[int, tuple[tuple[int, int], np.ndarray]] = {}

    @classmethod
    def for_array(cls, array) -> ShardFrameReader | None:
        """A reader for ``array`` if it is a frame array sharded the way the store writes it, else ``None``."""
        try:
            from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec
            from zarr.storage import LocalStore
        except ImportError:  # pragma: no cover - zarr 3 is a dependency of the data extra
            return None
        metadata = array.metadata
        codecs = getattr(metadata, "codecs", ())
        if getattr(metadata, "zarr_format", 2) != 3 or not isinstance(array.store, LocalStore):
            return None
        if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
            return None
        sharding = codecs[0]
        inner = tuple(type(c) for c in sharding.codecs)
        index = tuple(type(c) for c in sharding.index_codecs)
        shard_shape = tuple(metadata.chunk_grid.chunk_shape)
        if (
            inner != (BytesCodec, BloscCodec)
            or index != (BytesCodec, Crc32cCodec)
            or str(sharding.index_location.value) != "end"
            or tuple(sharding.chunk_shape) != (1, *array.shape[1:])
            or shard_shape[1:] != tuple(array.shape[1:])
            or (np.dtype(array.dtype).itemsize > 1 and np.dtype(array.dtype).byteorder == ">")
        ):
            return None
        directory = Path(array.store.root) / array.path
        return cls(directory, array, int(shard_shape[0]))

    def _shard_index(self, shard: int, path: Path) -> np.ndarray:
        """``(shard_steps, 2)`` offsets and sizes of the shard's frames, cached while the file is unchanged."""
        stat = os.stat(path)
        stamp = (stat.st_size, stat.st_mtime_ns)
        cached = self._index.get(shard)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        index_bytes = self.shard_steps * 16
        with open(path, "rb") as f:
            raw = os.pread(f.fileno(), index_bytes, stat.st_size - index_bytes - 4)
        index = np.frombuffer(raw, "<u8").reshape(self.shard_steps, 2)
        stored = index[:, 0] != EMPTY
        if np.any(index[stored, 0] + index[stored, 1] > stat.st_size - index_bytes - 4):
            raise OSError(f"{path}: shard index points past the end of the file")
        self._index[shard] = (stamp, index)
        return index

    def read(self, steps: np.ndarray) -> np.ndarray:
        """Frames at the sorted distinct ``steps`` as ``(len(steps), *step_shape)``; a missing or empty inner chunk
        raises ``OSError`` (the caller falls back to zarr, which reports damage by name)."""
        from numcodecs import blosc

        out = np.empty((len(steps), *self.step_shape), self.dtype)
        shards = np.asarray(steps) // self.shard_steps
        for shard in np.unique(shards):
            path = self.directory / self.array.metadata.encode_chunk_key(
                (int(shard),) + (0,) * len(self.step_shape)
            )
            index = self._shard_index(int(shard), path)
            rows = np.flatnonzero(shards == shard)
            with open(path, "rb") as f:
                for row in rows:
                    offset, size = index[int(steps[row]) % self.shard_steps]
                    if offset == EMPTY:
                        raise OSError(f"{path}: frame {int(steps[row])} is not stored")
                    data = os.pread(f.fileno(), int(size), int(offset))
                    out[row] = np.frombuffer(blosc.decompress(data), self.dtype).reshape(self.step_shape)
        return out
