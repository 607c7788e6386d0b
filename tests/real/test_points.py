"""Point-cloud ops (numpy only): known geometry gives known points, the crop keeps its box, FPS spreads its picks,
and the RealSense path goes through the same code."""

from __future__ import annotations

import numpy as np
import pytest

from manip.real.cameras.intrinsics import Intrinsics
from manip.real.cameras.pointcloud import stream_point_cloud
from manip.real.client.points import (
    crop_mask,
    depth_to_points,
    farthest_point_indices,
    intrinsic_matrix,
    intrinsics_from_fovy,
    is_point_cloud,
    point_cloud,
    rigid_transform,
    transform_points,
)


def test_a_flat_wall_back_projects_to_its_known_points():
    k = intrinsic_matrix(fx=100.0, fy=50.0, cx=2.0, cy=1.0)
    depth = np.full((3, 5), 2.0, np.float32)  # a wall 2 m in front of the camera
    depth[0, 0] = 0.0  # no reading
    depth[0, 1] = np.nan  # no reading either
    points, _ = depth_to_points(depth, k)
    assert points.shape == (13, 3) and points.dtype == np.float32
    np.testing.assert_allclose(points[:, 2], 2.0)
    # pixel (u=4, v=2): x = (4 - 2) * 2 / 100, y = (2 - 1) * 2 / 50
    np.testing.assert_allclose(points[-1], [0.04, 0.04, 2.0], atol=1e-6)
    # a RealSense-style millimetre image gives the same points
    mm, _ = depth_to_points(np.nan_to_num(depth * 1000).astype(np.uint16), k, depth_scale=0.001)
    np.testing.assert_allclose(mm, points, atol=1e-6)


def test_camera_points_move_into_the_base_frame():
    # a camera 1 m above the base origin looking straight down (optical z = base -z, optical x = base x)
    down = rigid_transform(np.diag([1.0, -1.0, -1.0]), [0.0, 0.0, 1.0])
    k = intrinsics_from_fovy(90.0, 64, 64)
    depth = np.full((64, 64), 1.0, np.float32)  # the floor (base z = 0)
    points = transform_points(depth_to_points(depth, k)[0], down)
    np.testing.assert_allclose(points[:, 2], 0.0, atol=1e-6)
    # a 90° field of view at 1 m spans ±1 m (less half a pixel at the edges)
    assert points[:, 0].min() == pytest.approx(-1.0, abs=0.03) and points[:, 0].max() == pytest.approx(
        1.0, abs=0.03
    )
    # image rows go down in the image, i.e. towards base -y for this camera
    first_row, last_row = points[:64], points[-64:]
    assert first_row[:, 1].mean() > 0.9 and last_row[:, 1].mean() < -0.9


def test_crop_keeps_exactly_the_points_inside_its_box():
    points = np.array([[0, 0, 0], [1, 1, 1], [1.01, 0, 0], [-1, -1, -1], [0.5, 0.5, -1.2]], np.float32)
    mask = crop_mask(points, (-1, -1, -1), (1, 1, 1))
    assert mask.tolist() == [True, True, False, True, False]


def test_farthest_point_sampling_spreads_its_picks_over_the_cloud():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0, 0], [5, 0, 0], [0, 5, 0], [0, 0, 5], [5, 5, 5]], np.float32)
    clusters = [c + rng.normal(0, 0.05, (200 + 300 * i, 3)) for i, c in enumerate(centres)]
    cloud = np.concatenate(clusters).astype(np.float32)
    picked = cloud[farthest_point_indices(cloud, 5)]
    # one pick per cluster although the clusters differ 7x in size (random picks would miss small ones)
    nearest = np.argmin(np.linalg.norm(picked[:, None] - centres[None], axis=2), axis=1)
    assert sorted(nearest.tolist()) == [0, 1, 2, 3, 4]

    # the picks are far apart: their closest pair is much farther than a uniform random draw's
    def min_gap(p):
        gaps = np.linalg.norm(p[:, None] - p[None], axis=2)
        return gaps[np.triu_indices(len(p), 1)].min()

    fps = cloud[farthest_point_indices(cloud, 64)]
    uniform = cloud[rng.choice(len(cloud), 64, replace=False)]
    assert min_gap(fps) > 5 * min_gap(uniform)


def test_farthest_point_sampling_returns_a_fixed_count():
    cloud = np.arange(12, dtype=np.float32).reshape(4, 3)
    indices = farthest_point_indices(cloud, 10)  # fewer points than asked: all of them, repeated
    assert len(indices) == 10 and set(indices.tolist()) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="empty cloud"):
        farthest_point_indices(np.zeros((0, 3), np.float32), 4)


def test_point_cloud_pipeline_crops_samples_and_adds_colour():
    k = intrinsics_from_fovy(60.0, 48, 48)
    depth = np.full((48, 48), 1.0, np.float32)
    depth[:, :24] = 0.5  # the left half is a step closer
    camera = rigid_transform(np.diag([1.0, -1.0, -1.0]), [0.0, 0.0, 1.0])  # looking down from 1 m
    low, high = (-1.0, -1.0, 0.1), (1.0, 1.0, 1.0)  # drop the floor (z = 0), keep the step (z = 0.5)
    cloud = point_cloud(depth, k, camera, low, high, count=32)
    assert cloud.shape == (32, 3) and cloud.dtype == np.float32
    np.testing.assert_allclose(cloud[:, 2], 0.5, atol=1e-5)
    colors = np.zeros((48, 48, 3), np.uint8)
    colors[..., 0] = 255
    coloured = point_cloud(depth, k, camera, low, high, count=32, colors=colors)
    assert coloured.shape == (32, 6)
    np.testing.assert_allclose(coloured[:, 3:], [[1.0, 0.0, 0.0]] * 32)
    np.testing.assert_allclose(coloured[:, :3], cloud)


def test_the_realsense_stream_path_uses_the_same_points():
    intr = Intrinsics(48, 48, fx=40.0, fy=40.0, ppx=23.5, ppy=23.5)
    depth = np.full((48, 48), 800, np.uint16)
    camera = rigid_transform(np.eye(3), [0.1, 0.2, 0.3])
    low, high = (-5.0, -5.0, -5.0), (5.0, 5.0, 5.0)
    stream = stream_point_cloud(depth, intr, 0.001, camera, low, high, count=16)
    direct = point_cloud(
        depth, intrinsic_matrix(40.0, 40.0, 23.5, 23.5), camera, low, high, 16, depth_scale=0.001
    )
    np.testing.assert_array_equal(stream, direct)
    with pytest.raises(ValueError, match="intrinsics are 48x48"):
        stream_point_cloud(np.zeros((4, 4), np.uint16), intr, 0.001, camera, low, high)


def test_point_cloud_keys_are_recognised_by_name_and_shape():
    assert is_point_cloud("point_cloud", (512, 3)) and is_point_cloud("wrist_point_cloud", (256, 6))
    assert not is_point_cloud("point_cloud", (512, 4)) and not is_point_cloud("object", (512, 3))
