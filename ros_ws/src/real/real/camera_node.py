"""``camera_node``: RealSense frames → ``sensor_msgs/Image`` for labs without ``realsense2_camera``.

pyrealsense2 must not share a process with rclpy, so this node starts :mod:`manip.real.cameras.process` (in
``camera_python``) and republishes the newest frames from shared memory, per camera ``NAME``:
``/NAME/color/image_raw`` (rgb8), ``/NAME/aligned_depth_to_color/image_raw`` (16UC1, depth in the camera's
units, aligned to colour) and ``/NAME/color/camera_info`` (intrinsics). Stamps are the host time the frames
arrived; the camera's hardware timestamp and frame counters are in ``~/status``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image

from manip.real.cameras.encodings import array_to_image_fields
from manip.real.cameras.intrinsics import Intrinsics
from manip.real.cameras.process import CameraProcess
from manip.real.cameras.realsense import CameraConfig
from real.entry import run_node
from real.params import CameraNodeParams, declare_params


def camera_info(intr: Intrinsics, frame_id: str) -> CameraInfo:
    """A CameraInfo for a pinhole camera without distortion correction applied."""
    msg = CameraInfo(width=intr.width, height=intr.height, distortion_model="plumb_bob")
    msg.header.frame_id = frame_id
    msg.d = [float(c) for c in intr.coeffs]
    msg.k = [intr.fx, 0.0, intr.ppx, 0.0, intr.fy, intr.ppy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [intr.fx, 0.0, intr.ppx, 0.0, 0.0, intr.fy, intr.ppy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


class CameraNode(Node):
    """The camera node; see the module docstring."""

    def __init__(self):
        super().__init__("camera_node")
        self.params = p = declare_params(self, CameraNodeParams)
        count = len(p.names)
        if len(p.serials) not in (1, count) or len(p.playback_files) not in (1, count):
            raise ValueError(f"serials and playback_files need 1 or {count} entries (one per name)")
        configs = [
            CameraConfig(
                name=name,
                serial=p.serials[i if len(p.serials) > 1 else 0],
                playback_file=p.playback_files[i if len(p.playback_files) > 1 else 0],
                width=p.width,
                height=p.height,
                fps=p.fps,
                enable_depth=p.enable_depth,
            )
            for i, name in enumerate(p.names)
        ]
        self.workdir = tempfile.TemporaryDirectory(prefix="manip-cam-")
        self.process = CameraProcess(
            configs, f"manip_cam_{os.getpid()}", Path(self.workdir.name), p.camera_python
        )
        info = self.process.start()
        self.cameras = []
        for config, cam_info in zip(configs, info, strict=True):
            name = config.name
            intr = Intrinsics.from_json(cam_info["intrinsics"])
            self.cameras.append(
                {
                    "name": name,
                    "reader": self.process.reader(name),
                    "seq": 0,
                    "color": self.create_publisher(
                        Image, f"/{name}/color/image_raw", qos_profile_sensor_data
                    ),
                    "depth": self.create_publisher(
                        Image, f"/{name}/aligned_depth_to_color/image_raw", qos_profile_sensor_data
                    ),
                    "info": self.create_publisher(
                        CameraInfo, f"/{name}/color/camera_info", qos_profile_sensor_data
                    ),
                    "camera_info": camera_info(intr, f"{name}_color_optical_frame"),
                    "counters": {},
                    "last": None,
                }
            )
            self.get_logger().info(
                f"camera '{name}': serial {cam_info['serial']}, {intr.width}x{intr.height}"
            )
        self.status_pub = self.create_publisher(DiagnosticStatus, "~/status", 10)
        self.create_timer(1.0 / (2 * p.fps), self._poll)  # twice the frame rate: no frame waits long
        self.create_timer(1.0, self._publish_status)

    def _poll(self) -> None:
        for cam in self.cameras:
            frame, cam["seq"], counters = cam["reader"].read(cam["seq"])
            if frame is None:
                continue
            cam["counters"], cam["last"] = counters, frame
            stamp = Time(nanoseconds=int(frame.received_s * 1e9)).to_msg()
            frame_id = cam["camera_info"].header.frame_id
            color = Image(**array_to_image_fields(frame.color, "rgb8"))
            color.header.stamp, color.header.frame_id = stamp, frame_id
            cam["color"].publish(color)
            if frame.depth is not None:
                depth = Image(**array_to_image_fields(frame.depth, "16UC1"))
                depth.header.stamp, depth.header.frame_id = stamp, frame_id
                cam["depth"].publish(depth)
            cam["camera_info"].header.stamp = stamp
            cam["info"].publish(cam["camera_info"])

    def _publish_status(self) -> None:
        alive = self.process.proc is not None and self.process.proc.poll() is None
        for cam in self.cameras:
            last = cam["last"]
            values = {
                "frames": cam["counters"].get("frames", 0),
                "dropped": cam["counters"].get("dropped", 0),
                "frame_number": last.frame_number if last else -1,
                "hardware_timestamp_ms": last.timestamp_ms if last else -1,
                "timestamp_domain": last.timestamp_domain if last else "",
            }
            status = DiagnosticStatus(
                level=DiagnosticStatus.OK if alive else DiagnosticStatus.ERROR,
                name=f"manip/camera/{cam['name']}",
                message="streaming" if alive else "the camera process has exited",
                values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
            )
            self.status_pub.publish(status)

    def destroy_node(self):
        for cam in getattr(self, "cameras", []):
            cam["reader"].close()
        if hasattr(self, "process"):
            self.process.stop()
            self.workdir.cleanup()
        return super().destroy_node()


def main(args=None) -> int:
    """Entry point (``ros2 run real camera_node``)."""
    return run_node("camera_node", CameraNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
