"""pyrealsense2 driver: several cameras by serial number, colour + depth aligned to colour, hardware timestamps,
frame-drop counters and intrinsics. Also plays back a librealsense recording (``.db3``/``.bag``) as if it were a
camera, which is how it is tested without hardware.

Run it in its own process (:mod:`manip.real.cameras.process`): pyrealsense2 must not share a process with rclpy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from manip.core.checked import Checked, setting
from manip.core.errors import ManipError, require
from manip.real.cameras.intrinsics import Intrinsics


@dataclass(frozen=True)
class CameraConfig(Checked):
    """One camera: its serial number (or a recording to play back), name, stream size and rate."""

    name: str
    serial: str = ""
    """Serial number; empty picks the only connected camera."""
    playback_file: str = ""
    """A librealsense recording to play instead of a live camera (tests, offline debugging)."""
    playback_real_time: bool = True
    """Play the recording at its recorded pace (False: as fast as it is read)."""
    width: int = setting(640, gt=0)
    height: int = setting(480, gt=0)
    fps: int = setting(30, gt=0)
    enable_depth: bool = True


@dataclass
class CameraFrame:
    """One synchronised capture: RGB (H, W, 3) uint8, depth aligned to it (H, W) uint16 (or None)."""

    name: str
    color: np.ndarray
    depth: np.ndarray | None
    timestamp_ms: float
    """The camera's timestamp of the colour frame (milliseconds, in ``timestamp_domain``)."""
    timestamp_domain: str
    frame_number: int
    received_s: float = field(default_factory=time.time)
    """Host wall-clock time when the frame set arrived."""


class RealSenseCamera:
    """One RealSense camera (or recording): :meth:`start`, :meth:`read` frames, :meth:`stop`.

    ``dropped`` counts frames the camera numbered but this reader never saw (gaps in frame numbers).
    """

    def __init__(self, config: CameraConfig):
        self.rs = require("pyrealsense2", "real")
        self.config = config
        self.pipeline = None
        self.align = None
        self.dropped = 0
        self.frames = 0
        self.last_frame_number: int | None = None
        self.color_intrinsics: Intrinsics | None = None
        self.depth_scale = 0.0
        self.serial = config.serial

    def start(self) -> RealSenseCamera:
        """Open the camera (or the recording) and start streaming; a missing camera is a one-line error."""
        rs, c = self.rs, self.config
        cfg = rs.config()
        if c.playback_file:
            cfg.enable_device_from_file(c.playback_file, repeat_playback=False)
        else:
            if c.serial:
                cfg.enable_device(c.serial)
            cfg.enable_stream(rs.stream.color, c.width, c.height, rs.format.rgb8, c.fps)
            if c.enable_depth:
                cfg.enable_stream(rs.stream.depth, c.width, c.height, rs.format.z16, c.fps)
        self.pipeline = rs.pipeline()
        try:
            profile = self.pipeline.start(cfg)
        except RuntimeError as exc:
            where = c.playback_file or (f"serial {c.serial}" if c.serial else "any connected camera")
            raise ManipError(f"camera '{c.name}' ({where}): {exc}") from None
        device = profile.get_device()
        if c.playback_file:
            device.as_playback().set_real_time(c.playback_real_time)
        if device.supports(rs.camera_info.serial_number):
            self.serial = device.get_info(rs.camera_info.serial_number)
        streams = {s.stream_type(): s for s in profile.get_streams()}
        if rs.stream.color not in streams:
            raise ManipError(f"camera '{c.name}': no colour stream")
        self.color_intrinsics = _intrinsics(
            streams[rs.stream.color].as_video_stream_profile().get_intrinsics()
        )
        has_depth = c.enable_depth and rs.stream.depth in streams
        if has_depth:
            self.depth_scale = float(device.first_depth_sensor().get_depth_scale())
            self.align = rs.align(rs.stream.color)
        return self

    def read(self, timeout_s: float = 1.0) -> CameraFrame | None:
        """The next frame set, depth aligned to colour; None when none came within ``timeout_s`` (or playback ended)."""
        ok, frames = self.pipeline.try_wait_for_frames(int(timeout_s * 1000))
        if not ok:
            return None
        received = time.time()
        if self.align is not None:
            frames = self.align.process(frames)
        color = frames.get_color_frame()
        if not color:
            return None
        depth = frames.get_depth_frame() if self.align is not None else None
        number = int(color.get_frame_number())
        if self.last_frame_number is not None and number > self.last_frame_number + 1:
            self.dropped += number - self.last_frame_number - 1
        self.last_frame_number = number
        self.frames += 1
        return CameraFrame(
            name=self.config.name,
            color=np.asanyarray(color.get_data()).copy(),
            depth=np.asanyarray(depth.get_data()).copy() if depth else None,
            timestamp_ms=float(color.get_timestamp()),
            timestamp_domain=str(color.get_frame_timestamp_domain()).split(".")[-1],
            frame_number=number,
            received_s=received,
        )

    def stop(self) -> None:
        """Stop streaming (safe to call twice)."""
        if self.pipeline is not None:
            self.pipeline.stop()
            self.pipeline = None

    def info(self) -> dict:
        """Serial, intrinsics, depth scale and counters (JSON-friendly)."""
        return {
            "name": self.config.name,
            "serial": self.serial,
            "intrinsics": self.color_intrinsics.to_json() if self.color_intrinsics else None,
            "depth_scale": self.depth_scale,
            "frames": self.frames,
            "dropped": self.dropped,
        }


def _intrinsics(raw) -> Intrinsics:
    return Intrinsics(
        width=int(raw.width),
        height=int(raw.height),
        fx=float(raw.fx),
        fy=float(raw.fy),
        ppx=float(raw.ppx),
        ppy=float(raw.ppy),
        model=str(raw.model).split(".")[-1],
        coeffs=tuple(float(x) for x in raw.coeffs),
    )
