"""RealSense driver without hardware: librealsense's software_device + recorder make a recording, which plays
back through the real driver (and through the camera process into shared memory)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("pyrealsense2")

from manip.real.cameras.intrinsics import Intrinsics
from manip.real.cameras.pointcloud import depth_to_points
from manip.real.cameras.process import CameraProcess
from manip.real.cameras.realsense import CameraConfig, RealSenseCamera
from manip.real.cameras.synthetic import record_synthetic, synthetic_frame

W, H, FPS = 32, 24, 30


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    root = tmp_path_factory.mktemp("rs")
    a = record_synthetic(root / "a.db3", serial="SIM000A", frames=12, width=W, height=H, fps=FPS, drop=(5, 6))
    b = record_synthetic(root / "b.db3", serial="SIM000B", frames=40, width=W, height=H, fps=FPS)
    return a, b


def read_all(camera: RealSenseCamera):
    frames = []
    while (frame := camera.read(timeout_s=1.0)) is not None:
        frames.append(frame)
    return frames


def test_playback_gives_aligned_frames_timestamps_drops_and_intrinsics(recordings):
    camera = RealSenseCamera(
        CameraConfig(name="wrist", playback_file=str(recordings[0]), playback_real_time=False)
    ).start()
    try:
        frames = read_all(camera)
    finally:
        camera.stop()
    numbers = [f.frame_number for f in frames]
    assert 5 not in numbers and 6 not in numbers and len(frames) >= 8
    for frame in frames:
        color, depth = synthetic_frame(frame.frame_number, W, H)
        np.testing.assert_array_equal(frame.color, color)
        assert frame.depth.dtype == np.uint16 and frame.depth.shape == (H, W)
        # depth aligned to colour with identity extrinsics and equal intrinsics: same pixels where valid
        valid = frame.depth > 0
        assert valid.mean() > 0.9
        np.testing.assert_array_equal(frame.depth[valid], depth[valid])
        assert frame.timestamp_ms == pytest.approx(frame.frame_number * 1000.0 / FPS, abs=1e-3)
        assert frame.timestamp_domain == "hardware_clock"
    info = camera.info()
    assert info["serial"] == "SIM000A"
    assert info["dropped"] == 2
    assert info["frames"] == len(frames)
    assert Intrinsics.from_json(info["intrinsics"]) == Intrinsics(W, H, 50.0, 50.0, W / 2, H / 2)
    assert info["depth_scale"] == pytest.approx(0.001)


def test_depth_to_points_follows_the_pinhole_model():
    intr = Intrinsics(4, 3, fx=2.0, fy=4.0, ppx=1.0, ppy=1.0)
    depth = np.zeros((3, 4), np.uint16)
    depth[2, 3] = 1000  # u=3, v=2 at 1 m
    depth[0, 1] = 500
    colors = np.arange(3 * 4 * 3, dtype=np.uint8).reshape(3, 4, 3)
    points, picked = depth_to_points(depth, intr, 0.001, colors)
    np.testing.assert_allclose(points, [[0.0, -0.125, 0.5], [1.0, 0.25, 1.0]], atol=1e-6)
    np.testing.assert_array_equal(picked, colors[[0, 2], [1, 3]])
    with pytest.raises(ValueError, match="intrinsics are 4x3"):
        depth_to_points(np.zeros((2, 2), np.uint16), intr, 0.001)


def test_camera_process_serves_several_cameras_through_shared_memory(recordings, tmp_path):
    configs = [
        CameraConfig(name="left", playback_file=str(recordings[1])),
        CameraConfig(name="right", playback_file=str(recordings[1])),
    ]
    process = CameraProcess(configs, prefix=f"manip_test_{tmp_path.name[-8:]}", workdir=tmp_path)
    info = process.start()
    assert [i["serial"] for i in info] == ["SIM000B", "SIM000B"]
    try:
        readers = {name: process.reader(name) for name in ("left", "right")}
        seen = {name: [] for name in readers}
        last = dict.fromkeys(readers, 0)
        for _ in range(400):
            for name, reader in readers.items():
                frame, last[name], counters = reader.read(last[name])
                if frame is not None:
                    seen[name].append((frame, counters))
            if all(len(v) >= 3 for v in seen.values()):
                break
            time.sleep(0.01)
        for name, items in seen.items():
            assert len(items) >= 3, name
            for frame, counters in items:
                color, _ = synthetic_frame(frame.frame_number, W, H)
                np.testing.assert_array_equal(frame.color, color)  # never a torn frame
                assert counters["frames"] >= 1
            numbers = [f.frame_number for f, _ in items]
            assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
        for reader in readers.values():
            reader.close()
    finally:
        assert process.stop() == 0


def test_camera_process_reports_a_bad_camera_list_in_one_line(tmp_path):
    bad = tmp_path / "cams.json"
    bad.write_text(json.dumps([{"name": "a", "fps": "fast"}]))
    result = subprocess.run(
        [sys.executable, "-m", "manip.real.cameras.process", "--config", str(bad), "--prefix", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "fps" in result.stderr
