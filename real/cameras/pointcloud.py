"""Depth image → point cloud for a camera stream with :class:`Intrinsics` (numpy only).

The geometry lives in :mod:`manip.real.client.points` (shared with sim and the ROS camera node); this module
adapts a stream's :class:`Intrinsics` to it and adds :func:`stream_point_cloud`, the fixed-size cloud a
point-cloud policy observes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from manip.real.cameras.intrinsics import Intrinsics
from manip.real.client import points as cloud


def _matrix(intrinsics: Intrinsics) -> np.ndarray:
    return cloud.intrinsic_matrix(intrinsics.fx, intrinsics.fy, intrinsics.ppx, intrinsics.ppy)


def _check_size(depth: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(
            f"depth has shape {depth.shape}, intrinsics are {intrinsics.width}x{intrinsics.height}"
        )
    return depth


def depth_to_points(
    depth: np.ndarray, intrinsics: Intrinsics, depth_scale: float, colors: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(N, 3)`` float32 points in metres (camera frame: x right, y down, z forward) for every pixel with depth.

    ``depth`` is ``(H, W)`` or ``(H, W, 1)`` raw units (``depth_scale`` metres each, 0 = no reading); with
    ``colors`` ``(H, W, 3)`` aligned to it, also returns the ``(N, 3)`` colours of those pixels.
    """
    depth = _check_size(depth, intrinsics)
    return cloud.depth_to_points(depth, _matrix(intrinsics), depth_scale, colors)


def stream_point_cloud(
    depth: np.ndarray,
    intrinsics: Intrinsics,
    depth_scale: float,
    camera_to_base: np.ndarray,
    low: Sequence[float],
    high: Sequence[float],
    count: int = cloud.DEFAULT_NUM_POINTS,
    colors: np.ndarray | None = None,
) -> np.ndarray:
    """One frame of a stream → the ``(count, 3)`` (or ``(count, 6)`` with ``colors``) float32 cloud in the robot
    base frame, cropped to ``[low, high]`` and farthest-point sampled (:func:`manip.real.client.points.point_cloud`).
    ``camera_to_base``: the 4×4 extrinsics of the camera's optical frame in the base frame (hand-eye calibration)."""
    depth = _check_size(depth, intrinsics)
    return cloud.point_cloud(
        depth, _matrix(intrinsics), camera_to_base, low, high, count, depth_scale=depth_scale, colors=colors
    )
