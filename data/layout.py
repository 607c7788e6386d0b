"""How arrays are laid out on disk: chunk shapes, shards and compressors for one per-step feature.

Frames (images, depth maps: anything over :data:`FRAME_BYTES` per step) get one chunk per time step, so reading
one frame never decompresses an episode; in Zarr v3 those chunks are grouped into shards of
:data:`FRAMES_PER_SHARD` frames to keep the file count down. Low-dim features are chunked along time in blocks of
about :data:`LOWDIM_CHUNK_BYTES`. The image codec was picked by measurement (see ``docs/RESULTS.md``,
``manip bench data``).
"""

from __future__ import annotations

import numpy as np

FRAME_BYTES = 4096
FRAMES_PER_SHARD = 32
LOWDIM_CHUNK_BYTES = 256 * 1024
MAX_LOWDIM_CHUNK_STEPS = 4096

IMAGE_CODEC = "blosc-zstd"
LOWDIM_CODEC = "blosc-zstd"
CODECS = ("blosc-zstd", "blosc-lz4", "none")


def is_frame(step_shape: tuple[int, ...], dtype) -> bool:
    """True for per-step features big enough to deserve one chunk per step (camera frames, depth maps)."""
    return len(step_shape) >= 2 and int(np.prod(step_shape)) * np.dtype(dtype).itemsize > FRAME_BYTES


def chunk_shape(step_shape: tuple[int, ...], dtype) -> tuple[int, ...]:
    """The chunk shape for a time-concatenated array of ``step_shape`` features."""
    if is_frame(step_shape, dtype):
        return (1, *step_shape)
    step_bytes = max(1, int(np.prod(step_shape)) * np.dtype(dtype).itemsize)
    steps = int(min(MAX_LOWDIM_CHUNK_STEPS, max(64, LOWDIM_CHUNK_BYTES // step_bytes)))
    return (steps, *step_shape)


def shard_shape(step_shape: tuple[int, ...], dtype, zarr_format: int) -> tuple[int, ...] | None:
    """The shard shape (Zarr v3 frames only) or ``None``."""
    if zarr_format != 3 or not is_frame(step_shape, dtype):
        return None
    return (FRAMES_PER_SHARD, *step_shape)


def compressor(name: str, dtype, zarr_format: int):
    """A compressor object for ``name`` in the given Zarr format (``None`` for ``"none"``)."""
    from data.errors import ManipError

    if name not in CODECS:
        raise ManipError(f"unknown codec '{name}' (choose from {', '.join(CODECS)})")
    if name == "none":
        return None
    cname = name.split("-", 1)[1]
    itemsize = np.dtype(dtype).itemsize
    if zarr_format == 3:
        from zarr.codecs import BloscCodec

        return BloscCodec(cname=cname, clevel=3, shuffle="shuffle" if itemsize > 1 else "noshuffle")
    import numcodecs

    return numcodecs.Blosc(cname, 3, numcodecs.Blosc.SHUFFLE if itemsize > 1 else numcodecs.Blosc.NOSHUFFLE)
