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

# Blosc settings: (compressor, level, shuffle). Images: zstd level 1 without shuffle — on robosuite frames it
# keeps ~90% of level 3's ratio at 2-3x its encode speed, and decodes 3-20x faster than lossless JPEG XL / WebP
# (docs/RESULTS.md). Low-dim floats: zstd level 3 with byte shuffle (tiny arrays; ratio matters more).
IMAGE_CODEC = ("zstd", 1, "noshuffle")
LOWDIM_CODEC = ("zstd", 3, "shuffle")


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


def compressor(codec: tuple[str, int, str], zarr_format: int):
    """A Blosc compressor object for ``codec`` = (cname, level, shuffle) in the given Zarr format."""
    cname, level, shuffle = codec
    if zarr_format == 3:
        from zarr.codecs import BloscCodec

        return BloscCodec(cname=cname, clevel=level, shuffle=shuffle)
    import numcodecs

    modes = {
        "noshuffle": numcodecs.Blosc.NOSHUFFLE,
        "shuffle": numcodecs.Blosc.SHUFFLE,
        "bitshuffle": numcodecs.Blosc.BITSHUFFLE,
    }
    return numcodecs.Blosc(cname, level, modes[shuffle])
