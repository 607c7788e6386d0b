"""sensor_msgs/Image and CompressedImage ⇄ numpy, with the encoding checked (numpy only; no rclpy, no cv_bridge).

Works on rclpy messages and on rosbags' deserialized messages alike (same field names), so the ROS node and
the rosbag2/MCAP converter share it.

A policy's colour inputs are ``uint8`` HWC RGB and its depth inputs ``uint16`` millimetres (``16UC1``), so a
frame in another encoding (``bgr8`` from a driver left at its default, ``32FC1`` depth, …) is refused with a
message naming the topic, the encoding it has and the one it needs: the node then holds instead of feeding the
policy swapped colour channels.
"""

from __future__ import annotations

import numpy as np

# encoding → (channels, numpy dtype)
ENCODINGS = {
    "rgb8": (3, np.uint8),
    "bgr8": (3, np.uint8),
    "rgba8": (4, np.uint8),
    "bgra8": (4, np.uint8),
    "mono8": (1, np.uint8),
    "16UC1": (1, np.uint16),
    "mono16": (1, np.uint16),
    "32FC1": (1, np.float32),
}
EXPECTED_ENCODING = {"rgb": "rgb8", "depth": "16UC1"}


class ImageError(ValueError):
    """A frame the policy cannot use; the message is one line naming the problem."""


def image_to_array(msg, expected_encoding: str = "rgb8") -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` into ``(H, W, C)`` (C=1 for depth); refuse any other encoding."""
    if msg.encoding != expected_encoding:
        raise ImageError(f"encoding '{msg.encoding}', expected '{expected_encoding}'")
    channels, dtype = ENCODINGS[expected_encoding]
    itemsize = np.dtype(dtype).itemsize
    row_bytes = msg.width * channels * itemsize
    if msg.step < row_bytes or len(msg.data) < msg.step * msg.height:
        raise ImageError(
            f"{msg.width}x{msg.height} '{msg.encoding}' needs {row_bytes} bytes per row and "
            f"{msg.step * msg.height} in all; got step {msg.step} and {len(msg.data)} bytes"
        )
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8, count=msg.step * msg.height)
    rows = raw.reshape(msg.height, msg.step)[:, :row_bytes]
    big_endian = bool(getattr(msg, "is_bigendian", 0))
    order = ">" if big_endian else "<"
    array = np.ascontiguousarray(rows).view(np.dtype(dtype).newbyteorder(order) if itemsize > 1 else dtype)
    return array.reshape(msg.height, msg.width, channels).astype(dtype, copy=False)


def image_to_rgb(msg) -> np.ndarray:
    """Decode a colour ``sensor_msgs/Image`` in ``rgb8`` or ``bgr8`` into ``(H, W, 3)`` RGB (offline conversion,
    where the encoding is known for sure; the live node refuses ``bgr8`` instead of guessing)."""
    if msg.encoding == "bgr8":
        return np.ascontiguousarray(image_to_array(msg, "bgr8")[..., ::-1])
    return image_to_array(msg, "rgb8")


def compressed_to_array(msg, expected_encoding: str = "rgb8") -> np.ndarray:
    """Decode a ``sensor_msgs/CompressedImage`` (JPEG or PNG) into ``(H, W, 3)`` uint8 RGB."""
    fmt = (msg.format or "").lower()
    if expected_encoding != "rgb8":
        raise ImageError(f"compressed frames carry colour only; this input needs '{expected_encoding}'")
    if "bgr8" in fmt:
        raise ImageError(f"format '{msg.format}' is BGR, expected rgb8")
    import imagecodecs

    data = bytes(msg.data)
    if data[:3] == b"\xff\xd8\xff":
        decode = imagecodecs.jpeg8_decode
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        decode = imagecodecs.png_decode
    else:
        raise ImageError(f"format '{msg.format}': neither JPEG nor PNG data")
    try:
        array = decode(data)
    except Exception as exc:  # corrupt data: imagecodecs raises its own error types
        raise ImageError(f"format '{msg.format}': cannot decode ({exc})") from None
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ImageError(
            f"format '{msg.format}' decoded to {array.dtype} {array.shape}, expected uint8 (H, W, 3)"
        )
    return array


def resize_nearest(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of an ``(H, W, C)`` image (what the policy's spec asks for)."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    rows = (np.arange(height) * image.shape[0] // height).astype(np.intp)
    cols = (np.arange(width) * image.shape[1] // width).astype(np.intp)
    return image[rows][:, cols]


def array_to_image_fields(array: np.ndarray, encoding: str) -> dict:
    """The fields of a ``sensor_msgs/Image`` holding ``array`` (for publishers): height, width, step, data…"""
    channels, dtype = ENCODINGS[encoding]
    array = np.ascontiguousarray(array, dtype=dtype)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.shape[2] != channels:
        raise ImageError(f"'{encoding}' needs {channels} channel(s), array has shape {array.shape}")
    return {
        "height": array.shape[0],
        "width": array.shape[1],
        "encoding": encoding,
        "is_bigendian": 0,
        "step": array.shape[1] * channels * np.dtype(dtype).itemsize,
        "data": array.tobytes(),
    }
