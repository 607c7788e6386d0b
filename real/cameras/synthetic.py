"""A synthetic RealSense recording made with librealsense's ``software_device`` and ``recorder``: colour + depth
frames with known content, hardware timestamps and chosen frame drops. Plays back through
:class:`manip.real.cameras.realsense.RealSenseCamera` like a real camera (tests, demos without hardware)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from manip.core.errors import require
from manip.real.cameras.intrinsics import Intrinsics


def synthetic_frame(i: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``i``'s content: colour with red = i, green = column, blue = row; depth = 500 + i + column (mm)."""
    cols = np.arange(width, dtype=np.uint16)[None, :].repeat(height, 0)
    rows = np.arange(height, dtype=np.uint16)[:, None].repeat(width, 1)
    color = np.stack([np.full_like(cols, i % 256), cols % 256, rows % 256], axis=-1).astype(np.uint8)
    return color, (500 + i + cols).astype(np.uint16)


def record_synthetic(
    path: str | Path,
    serial: str = "SIM0001",
    frames: int = 30,
    width: int = 64,
    height: int = 48,
    fps: int = 30,
    intrinsics: Intrinsics | None = None,
    drop: tuple[int, ...] = (),
    depth_scale: float = 0.001,
) -> Path:
    """Write a recording of ``frames`` frame sets (skipping the numbers in ``drop``) to ``path``."""
    rs = require("pyrealsense2", "real")
    path = Path(path)
    intr = intrinsics or Intrinsics(width, height, fx=50.0, fy=50.0, ppx=width / 2, ppy=height / 2)
    device = rs.software_device()
    device.register_info(rs.camera_info.serial_number, serial)
    device.register_info(rs.camera_info.name, "manip synthetic camera")
    depth_sensor, color_sensor = device.add_sensor("Depth"), device.add_sensor("Color")
    depth_profile = depth_sensor.add_video_stream(
        _stream(rs, rs.stream.depth, rs.format.z16, 2, 0, intr, fps)
    )
    color_profile = color_sensor.add_video_stream(
        _stream(rs, rs.stream.color, rs.format.rgb8, 3, 1, intr, fps)
    )
    depth_sensor.add_read_only_option(rs.option.depth_units, depth_scale)
    identity = rs.extrinsics()
    identity.rotation, identity.translation = [1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0]
    depth_profile.register_extrinsics_to(color_profile, identity)
    device.create_matcher(rs.matchers.default)
    recorder = rs.recorder(str(path), device)
    queue = rs.frame_queue(frames * 2 + 2)
    depth_sensor.open(depth_profile)
    color_sensor.open(color_profile)
    depth_sensor.start(queue)
    color_sensor.start(queue)
    for i in range(frames):
        if i in drop:
            continue
        color, depth = synthetic_frame(i, width, height)
        t_ms = i * 1000.0 / fps
        depth_sensor.on_video_frame(_frame(rs, depth, 2, width, t_ms, i, depth_profile))
        color_sensor.on_video_frame(_frame(rs, color, 3, width, t_ms, i, color_profile))
        time.sleep(1.0 / fps)  # the recorder stamps frames by arrival: keep the recorded pace
    for sensor in (depth_sensor, color_sensor):
        sensor.stop()
        sensor.close()
    del recorder  # flushes and closes the file
    return path


def _stream(rs, kind, fmt, bpp: int, uid: int, intr: Intrinsics, fps: int):
    stream = rs.video_stream()
    stream.type, stream.index, stream.uid, stream.fmt, stream.bpp = kind, 0, uid, fmt, bpp
    stream.width, stream.height, stream.fps = intr.width, intr.height, fps
    raw = rs.intrinsics()
    raw.width, raw.height, raw.fx, raw.fy, raw.ppx, raw.ppy = (
        intr.width,
        intr.height,
        intr.fx,
        intr.fy,
        intr.ppx,
        intr.ppy,
    )
    raw.model, raw.coeffs = rs.distortion.none, [0.0] * 5
    stream.intrinsics = raw
    return stream


def _frame(rs, pixels: np.ndarray, bpp: int, width: int, t_ms: float, number: int, profile):
    frame = rs.software_video_frame()
    frame.pixels, frame.bpp, frame.stride = pixels, bpp, width * bpp
    frame.timestamp, frame.domain, frame.frame_number = t_ms, rs.timestamp_domain.hardware_clock, number
    frame.profile = profile.as_video_stream_profile()
    return frame
