"""Depth image → point cloud with the pinhole model (numpy only; for point-cloud policies)."""

from __future__ import annotations

import numpy as np

from manip.real.cameras.intrinsics import Intrinsics


def depth_to_points(
    depth: np.ndarray, intrinsics: Intrinsics, depth_scale: float, colors: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(N, 3)`` float32 points in metres (camera frame: x right, y down, z forward) for every pixel with depth.

    ``depth`` is ``(H, W)`` or ``(H, W, 1)`` raw units (``depth_scale`` metres each, 0 = no reading); with
    ``colors`` ``(H, W, 3)`` aligned to it, also returns the ``(N, 3)`` colours of those pixels.
    """
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(
            f"depth has shape {depth.shape}, intrinsics are {intrinsics.width}x{intrinsics.height}"
        )
    v, u = np.nonzero(depth)
    z = depth[v, u].astype(np.float32) * np.float32(depth_scale)
    x = (u.astype(np.float32) - intrinsics.ppx) * z / intrinsics.fx
    y = (v.astype(np.float32) - intrinsics.ppy) * z / intrinsics.fy
    points = np.stack([x, y, z], axis=1).astype(np.float32)
    return points, (None if colors is None else np.asarray(colors)[v, u])
