"""Point clouds for point-cloud policies, numpy only: depth → points → base frame → crop → farthest-point sampling.

One code path for every camera: a simulated one (MuJoCo depth in metres), a RealSense stream (raw depth units
times ``depth_scale``) and the ROS camera node. The steps:

1. :func:`depth_to_points`: pinhole back-projection of every pixel with a reading, in the camera's optical frame
   (OpenCV convention: x right, y down, z forward), optionally with the pixel colours.
2. :func:`transform_points`: a 4×4 rigid transform (camera → robot base) applied to ``(N, 3)`` points.
3. :func:`crop_mask`: the points inside an axis-aligned workspace box ``[low, high]`` (base frame).
4. :func:`farthest_point_indices`: ``count`` indices spread over the cloud (deterministic: starts at index 0),
   repeating indices when the cloud holds fewer points than ``count``, so the result always has ``count`` rows.

:func:`point_cloud` chains them and returns ``(count, 3)`` float32 points, or ``(count, 6)`` with colour
(RGB in [0, 1]). :data:`POINT_CLOUD_KEY` is the observation and dataset key of such a cloud.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

POINT_CLOUD_KEY = "point_cloud"
"""The observation / dataset key of a point cloud (``(N, 3)`` or ``(N, 6)`` float32 per step)."""
DEFAULT_NUM_POINTS = 512
POINT_WIDTHS = (3, 6)
"""Per-point widths a cloud may have: xyz, or xyz + RGB in [0, 1]."""


def is_point_cloud(name: str, shape: Sequence[int]) -> bool:
    """Whether a per-step feature ``name`` of ``shape`` is a point cloud: named ``point_cloud`` (or ending in
    ``_point_cloud``) with shape ``(N, 3)`` or ``(N, 6)``."""
    named = name == POINT_CLOUD_KEY or name.endswith("_" + POINT_CLOUD_KEY)
    return named and len(shape) == 2 and int(shape[1]) in POINT_WIDTHS


def intrinsic_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """The 3×3 pinhole matrix ``K`` (focal lengths and principal point in pixels)."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def intrinsics_from_fovy(fovy_deg: float, width: int, height: int) -> np.ndarray:
    """``K`` of an ideal camera with vertical field of view ``fovy_deg`` and square pixels (MuJoCo's cameras)."""
    f = 0.5 * height / np.tan(np.deg2rad(fovy_deg) / 2.0)
    return intrinsic_matrix(f, f, (width - 1) / 2.0, (height - 1) / 2.0)


def rigid_transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """The 4×4 homogeneous transform with ``rotation`` (3×3) and ``translation`` (3,)."""
    out = np.eye(4)
    out[:3, :3] = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
    out[:3, 3] = np.asarray(translation, dtype=np.float64).reshape(3)
    return out


def depth_to_points(
    depth: np.ndarray, intrinsics: np.ndarray, depth_scale: float = 1.0, colors: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(N, 3)`` float32 points in metres in the camera's optical frame for every pixel with depth > 0.

    ``depth``: ``(H, W)`` (or ``(H, W, 1)``), ``depth_scale`` metres per unit (1 for metric depth, 0.001 for a
    RealSense's millimetres); non-finite readings count as missing. ``intrinsics``: ``K`` (3×3). With ``colors``
    ``(H, W, C)`` aligned to the depth, also returns the ``(N, C)`` colours of those pixels.
    """
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise ValueError(f"depth has shape {depth.shape}, expected (H, W)")
    k = np.asarray(intrinsics, dtype=np.float64)
    metres = depth.astype(np.float32) * np.float32(depth_scale)
    v, u = np.nonzero(np.isfinite(metres) & (metres > 0))
    z = metres[v, u]
    x = (u.astype(np.float32) - np.float32(k[0, 2])) * z / np.float32(k[0, 0])
    y = (v.astype(np.float32) - np.float32(k[1, 2])) * z / np.float32(k[1, 1])
    points = np.stack([x, y, z], axis=1).astype(np.float32)
    if colors is None:
        return points, None
    colors = np.asarray(colors)
    if colors.shape[:2] != depth.shape:
        raise ValueError(f"colors have shape {colors.shape}, depth {depth.shape}")
    return points, colors[v, u]


def transform_points(points: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Apply a 4×4 rigid transform to ``(N, 3)`` points (float32 result)."""
    t = np.asarray(transform, dtype=np.float64)
    if t.shape != (4, 4):
        raise ValueError(f"transform has shape {t.shape}, expected (4, 4)")
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    return (points @ t[:3, :3].T + t[:3, 3]).astype(np.float32)


def crop_mask(points: np.ndarray, low: Sequence[float], high: Sequence[float]) -> np.ndarray:
    """Boolean ``(N,)``: the points with ``low <= xyz <= high`` on every axis."""
    xyz = np.asarray(points)[:, :3]
    return np.all(
        (xyz >= np.asarray(low, dtype=np.float32)) & (xyz <= np.asarray(high, dtype=np.float32)), axis=1
    )


def farthest_point_indices(points: np.ndarray, count: int, start: int = 0) -> np.ndarray:
    """``count`` indices of ``points`` (``(N, >=3)``, xyz first) picked by farthest-point sampling from ``start``.

    Each pick is the point farthest from those picked so far, so the picks cover the cloud evenly. With
    ``N < count`` every point is taken and indices repeat (cyclically) up to ``count``; an empty cloud is an error.
    """
    xyz = np.asarray(points, dtype=np.float32)[:, :3]
    n = xyz.shape[0]
    if n == 0:
        raise ValueError("farthest-point sampling of an empty cloud (nothing left after the crop?)")
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if n <= count:
        return np.resize(np.arange(n), count)
    picked = np.empty(count, dtype=np.int64)
    picked[0] = start % n
    nearest = np.full(n, np.inf, dtype=np.float32)
    xs, ys, zs = (np.ascontiguousarray(xyz[:, axis]) for axis in range(3))  # one array per axis: ~6x faster
    for i in range(1, count):
        last = picked[i - 1]
        np.minimum(nearest, (xs - xs[last]) ** 2 + (ys - ys[last]) ** 2 + (zs - zs[last]) ** 2, out=nearest)
        picked[i] = int(np.argmax(nearest))
    return picked


def point_cloud(
    depth: np.ndarray,
    intrinsics: np.ndarray,
    camera_to_base: np.ndarray,
    low: Sequence[float],
    high: Sequence[float],
    count: int = DEFAULT_NUM_POINTS,
    depth_scale: float = 1.0,
    colors: np.ndarray | None = None,
) -> np.ndarray:
    """Depth image → ``(count, 3)`` float32 points in the base frame inside ``[low, high]``, farthest-point sampled.

    ``camera_to_base``: 4×4 pose of the camera's optical frame (x right, y down, z forward) in the base frame.
    With ``colors`` (``(H, W, 3)`` uint8 RGB aligned to the depth) the result is ``(count, 6)``: xyz then RGB in
    [0, 1].
    """
    points, picked_colors = depth_to_points(depth, intrinsics, depth_scale, colors)
    points = transform_points(points, camera_to_base)
    inside = crop_mask(points, low, high)
    points = points[inside]
    if picked_colors is not None:
        rgb = np.asarray(picked_colors)[inside][:, :3].astype(np.float32) / 255.0
        points = np.concatenate([points, rgb], axis=1)
    return np.ascontiguousarray(points[farthest_point_indices(points, count)], dtype=np.float32)
