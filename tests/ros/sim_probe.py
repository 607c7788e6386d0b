"""A probe beside ``sim_robot`` for its tests, run with the ROS venv's Python (the test process never imports
rclpy): records what sim_robot publishes, publishes commands, calls its services. One JSON object per line:

    {"cmd": "reset", "seed": s}              set the parameter ``seed``, call /sim_robot/reset; replies the message
    {"cmd": "latest", "after": t}            the newest message of every topic received after monotonic time t
    {"cmd": "pose_target", "position": [...], "quaternion": [x, y, z, w], "gripper": g, "stamp": t}
                                             (stamp: seconds of ROS time for the header; default 0, unstamped)
    {"cmd": "trajectory", "names": [...], "positions": [...]}   (empty names: a stop trajectory)
    {"cmd": "quit"}
"""

from __future__ import annotations

import json
import sys
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint


def image_summary(msg: Image) -> dict:
    dtype = {"rgb8": np.uint8, "32FC1": np.float32, "16UC1": np.uint16}[msg.encoding]
    pixels = np.frombuffer(bytes(msg.data), dtype)
    return {
        "type": type(msg).__name__, "encoding": msg.encoding, "height": msg.height, "width": msg.width,
        "step": msg.step, "size": int(pixels.size), "mean": float(pixels.astype(np.float64).mean()),
        "min": float(pixels.min()), "max": float(pixels.max()),
    }  # fmt: skip


def summary(kind: str, msg) -> dict:
    if isinstance(msg, JointState):
        return {
            "type": "JointState",
            "name": list(msg.name),
            "position": list(msg.position),
            "velocity": list(msg.velocity),
        }
    if isinstance(msg, PoseStamped):
        p, q = msg.pose.position, msg.pose.orientation
        return {
            "type": "PoseStamped",
            "frame_id": msg.header.frame_id,
            "stamp": msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9,
            "position": [p.x, p.y, p.z],
            "quaternion": [q.x, q.y, q.z, q.w],
        }
    if isinstance(msg, Image):
        return image_summary(msg)
    if isinstance(msg, CameraInfo):
        return {"type": "CameraInfo", "height": msg.height, "width": msg.width, "k": list(msg.k)}
    if isinstance(msg, Float64MultiArray):
        return {"type": "Float64MultiArray", "data": list(msg.data)}
    if isinstance(msg, Clock):
        return {"type": "Clock", "t": msg.clock.sec + msg.clock.nanosec * 1e-9}
    if isinstance(msg, Bool):
        return {"type": "Bool", "data": bool(msg.data)}
    return {
        "type": "DiagnosticStatus",
        "message": msg.message,
        "values": {v.key: v.value for v in msg.values},
    }


class Probe(Node):
    def __init__(self, cameras: list[str]):
        super().__init__("sim_probe")
        self.lock = threading.Lock()
        self.latest: dict[str, tuple[float, dict]] = {}
        topics = {
            "/joint_states": JointState,
            "/eef_pose": PoseStamped,
            "/object_state": Float64MultiArray,
            "/task_success": Bool,
            "/sim_robot/status": DiagnosticStatus,
            "/clock": Clock,
        }
        for cam in cameras:
            topics[f"/{cam}/color/image_raw"] = Image
            topics[f"/{cam}/color/camera_info"] = CameraInfo
            topics[f"/{cam}/depth/image_raw"] = Image
        for topic, kind in topics.items():
            self.create_subscription(kind, topic, lambda m, t=topic: self._record(t, m), 10)
        self.pose_pub = self.create_publisher(PoseStamped, "/cartesian_target", 10)
        self.trajectory_pub = self.create_publisher(
            JointTrajectory, "/joint_trajectory_controller/joint_trajectory", 10
        )
        self.gripper_pub = self.create_publisher(Float64, "/gripper_command", 10)
        self.set_params = self.create_client(SetParameters, "/sim_robot/set_parameters")
        self.reset = self.create_client(Trigger, "/sim_robot/reset")

    def _record(self, topic: str, msg) -> None:
        with self.lock:
            self.latest[topic] = (time.monotonic(), summary(topic, msg))

    def call(self, client, request):
        assert client.wait_for_service(timeout_sec=60), client.srv_name
        future = client.call_async(request)
        while not future.done():
            time.sleep(0.005)
        return future.result()


def main() -> int:
    rclpy.init()
    probe = Probe(json.loads(sys.argv[1]))
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(probe)
    threading.Thread(target=executor.spin, daemon=True).start()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request.pop("cmd")
        reply: dict = {}
        if cmd == "reset":
            value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=request["seed"])
            probe.call(
                probe.set_params, SetParameters.Request(parameters=[Parameter(name="seed", value=value)])
            )
            reply["message"] = probe.call(probe.reset, Trigger.Request()).message
        elif cmd == "latest":
            with probe.lock:
                reply["topics"] = {
                    t: m for t, (at, m) in probe.latest.items() if at > request.get("after", 0.0)
                }
        elif cmd == "pose_target":
            msg = PoseStamped()
            msg.header.frame_id = "world"
            stamp_ns = round(request.get("stamp", 0.0) * 1e9)
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
            msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = request["position"]
            o = msg.pose.orientation
            o.x, o.y, o.z, o.w = request["quaternion"]
            probe.gripper_pub.publish(Float64(data=float(request["gripper"])))  # first, as policy_node does
            probe.pose_pub.publish(msg)
        elif cmd == "trajectory":
            msg = JointTrajectory(joint_names=request["names"])
            if request["names"]:
                msg.points = [JointTrajectoryPoint(positions=[float(v) for v in request["positions"]])]
            probe.trajectory_pub.publish(msg)
        elif cmd == "quit":
            break
        reply["now"] = time.monotonic()
        print(json.dumps(reply), flush=True)
    executor.shutdown()
    probe.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
