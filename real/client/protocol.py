"""The wire format of the inference server: msgpack with a numpy extension type (no pickle). See docs/PROTOCOL.md.

An ndarray travels as msgpack ExtType ``NDARRAY_EXT`` whose payload is itself msgpack: the 3-element array
``[dtype, shape, data]`` — ``dtype`` numpy's type string (``"<f4"``, ``"|u1"``, …; bool, signed/unsigned integers
and floats only), ``shape`` a list of ints, ``data`` the raw bytes in C order. Numpy scalars travel as plain
msgpack numbers. Light: numpy and msgpack only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np

PROTOCOL_VERSION = 2
NDARRAY_EXT = 1
ALLOWED_KINDS = "biuf"  # bool, int, uint, float
DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024


class ProtocolError(ValueError):
    """A frame that does not decode or does not have the expected fields; the message names the problem."""


def encode_array(arr: np.ndarray) -> msgpack.ExtType:
    """The ExtType for ``arr`` (what :func:`pack` embeds; pre-encode to time or reuse it)."""
    if arr.dtype.kind not in ALLOWED_KINDS:
        raise ProtocolError(f"cannot send arrays of dtype {arr.dtype} (only bool, int, uint, float)")
    payload = msgpack.packb([arr.dtype.str, list(arr.shape), arr.tobytes(order="C")], use_bin_type=True)
    return msgpack.ExtType(NDARRAY_EXT, payload)


def _default(obj: Any):
    if isinstance(obj, np.ndarray):
        return encode_array(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot encode a {type(obj).__name__}")


def _unpack_array(payload: bytes) -> np.ndarray:
    try:
        dtype_str, shape, data = msgpack.unpackb(payload, raw=False)
        dtype = np.dtype(dtype_str)
        shape = tuple(int(d) for d in shape)
    except Exception as exc:
        raise ProtocolError(f"bad ndarray extension payload ({exc})") from None
    if dtype.kind not in ALLOWED_KINDS or not isinstance(dtype_str, str):
        raise ProtocolError(f"ndarray dtype '{dtype_str}' is not allowed (only bool, int, uint, float)")
    if any(d < 0 for d in shape):
        raise ProtocolError(f"ndarray shape {list(shape)} has a negative dimension")
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if not isinstance(data, bytes) or len(data) != expected:
        got = len(data) if isinstance(data, bytes) else type(data).__name__
        raise ProtocolError(
            f"ndarray of dtype {dtype_str} and shape {list(shape)} needs {expected} bytes, got {got}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape)


def _ext_hook(code: int, payload: bytes):
    if code != NDARRAY_EXT:
        raise ProtocolError(f"unknown msgpack extension type {code}")
    return _unpack_array(payload)


def pack(message: Mapping[str, Any]) -> bytes:
    """Encode a message (a dict of msgpack values and numpy arrays) as one binary frame."""
    return msgpack.packb(message, default=_default, use_bin_type=True)


def unpack(frame: bytes | bytearray | memoryview | str, max_bytes: int | None = None) -> dict[str, Any]:
    """Decode one frame into a dict; arrays come back as (read-only) numpy arrays. Raises :class:`ProtocolError`."""
    if isinstance(frame, str):
        raise ProtocolError("text frames are not accepted; send binary msgpack frames")
    if max_bytes is not None and len(frame) > max_bytes:
        raise ProtocolError(f"frame of {len(frame)} bytes exceeds the limit of {max_bytes} bytes")
    try:
        message = msgpack.unpackb(frame, ext_hook=_ext_hook, raw=False, strict_map_key=True)
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"frame is not valid msgpack ({type(exc).__name__}: {exc})") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a frame must be a msgpack map, got {type(message).__name__}")
    return message
