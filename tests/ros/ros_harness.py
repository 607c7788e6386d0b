"""The robot side of the ROS tests, run with the ROS venv's Python (the test process never imports rclpy).

Publishes camera frames and joint states like a robot would (real rclpy publishers), records what the policy
node publishes, and calls its services. Driven over stdin/stdout with one JSON object per line:

    {"cmd": "set", ...}            change what is published (encoding, joint names, positions, cameras on/off)
    {"cmd": "enable", "data": b}   call ~/enable; replies {"success", "message"}
    {"cmd": "reset"}               call ~/reset
    {"cmd": "call", "service": "/recorder_node/start", "data": b}   any Trigger (no data) or SetBool service
    {"cmd": "events", "since": t}  replies {"events": [...]} received after monotonic time t
    {"cmd": "quit"}

Every reply carries "now" (time.monotonic(), comparable with the test process's clock on Linux).
"""

from __future__ import annotations

import json
import sys
import threading
import time

import imagecodecs
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Bool, Float32MultiArray, Float64, Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

NODE = "/policy_node"


class Robot(Node):
    def __init__(self, config: dict):
        super().__init__("fake_robot")
        self.lock = threading.Lock()
        self.events: list[dict] = []
        self.state = {
            "cameras": config["cameras"],  # [[topic, height, width]]
            "encoding": "rgb8",
            "publish_cameras": True,
            "joint_names": config["joint_names"],
            "positions": config["positions"],
            "last_camera_publish": 0.0,
            "intervention": False,
            "teleop_value": 0.0,
        }
        self.compressed = config.get("transport") == "compressed"  # PNG CompressedImage instead of Image
        image_type = CompressedImage if self.compressed else Image
        self.image_pubs = {
            t: self.create_publisher(image_type, t, qos_profile_sensor_data) for t, _, _ in config["cameras"]
        }
        self.joint_pub = self.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
        # optional: an end-effector pose {"topic", "position", "quaternion", "frame_id"} and Float64MultiArray
        # topics {topic: data}, published with the joint states
        self.eef = config.get("eef_pose")
        if self.eef:
            self.eef_pub = self.create_publisher(PoseStamped, self.eef["topic"], qos_profile_sensor_data)
        self.array_pubs = {
            topic: (self.create_publisher(Float64MultiArray, topic, qos_profile_sensor_data), data)
            for topic, data in config.get("arrays", {}).items()
        }
        self.create_timer(1.0 / 30, self.publish)
        record = self.record
        if config.get("pose_topic"):
            self.create_subscription(PoseStamped, config["pose_topic"], lambda m: record("pose", m), 50)
        if config.get("command_topic"):
            self.create_subscription(
                JointTrajectory, config["command_topic"], lambda m: record("command", m), 50
            )
        self.teleop = None
        if config.get("teleop_topic"):  # a teleoperator: trajectory commands, gripper and intervention flag
            self.teleop = (
                self.create_publisher(JointTrajectory, config["teleop_topic"], 10),
                self.create_publisher(Float64, "/gripper_command", 10),
                self.create_publisher(Bool, "/teleop/intervention", 10),
            )
        for topic in config.get("watch_images", []):
            self.create_subscription(
                Image, topic, lambda m, t=topic: record(f"image:{t}", m), qos_profile_sensor_data
            )
        self.service_clients: dict[str, object] = {}
        self.create_subscription(JointTrajectory, f"{NODE}/preview", lambda m: record("preview", m), 50)
        self.create_subscription(Float64, "/gripper_command", lambda m: record("gripper", m), 50)
        self.create_subscription(DiagnosticStatus, f"{NODE}/status", lambda m: record("status", m), 50)
        self.create_subscription(
            DiagnosticStatus, "/recorder_node/status", lambda m: record("recorder", m), 50
        )
        self.create_subscription(DiagnosticArray, "/diagnostics", lambda m: record("diagnostics", m), 50)
        self.create_subscription(Float32MultiArray, f"{NODE}/chunk", lambda m: record("chunk", m), 50)
        self.enable_client = self.create_client(SetBool, f"{NODE}/enable")
        self.reset_client = self.create_client(Trigger, f"{NODE}/reset")

    def publish(self) -> None:
        s = self.state
        stamp = self.get_clock().now().to_msg()
        if s["publish_cameras"]:
            for topic, height, width in s["cameras"]:
                pixels = np.full((height, width, 3), 7, np.uint8)
                if self.compressed:
                    msg = CompressedImage(format="rgb8; png compressed", data=imagecodecs.png_encode(pixels))
                else:
                    msg = Image(height=height, width=width, encoding=s["encoding"], step=width * 3)
                    msg.data = pixels.tobytes()
                msg.header.stamp = stamp
                self.image_pubs[topic].publish(msg)
            s["last_camera_publish"] = time.monotonic()
        joints = JointState(name=list(s["joint_names"]), position=[float(p) for p in s["positions"]])
        joints.header.stamp = stamp
        self.joint_pub.publish(joints)
        if self.eef:
            pose = PoseStamped()
            pose.header.stamp, pose.header.frame_id = stamp, self.eef.get("frame_id", "world")
            p, q = pose.pose.position, pose.pose.orientation
            p.x, p.y, p.z = (float(v) for v in self.eef["position"])
            q.x, q.y, q.z, q.w = (float(v) for v in self.eef["quaternion"])
            self.eef_pub.publish(pose)
        for publisher, data in self.array_pubs.values():
            publisher.publish(Float64MultiArray(data=[float(v) for v in data]))
        if self.teleop is not None:
            s["teleop_value"] += 1.0
            command = JointTrajectory(joint_names=["j1", "j2"])
            command.points = [JointTrajectoryPoint(positions=[s["teleop_value"], -s["teleop_value"]])]
            self.teleop[0].publish(command)
            self.teleop[1].publish(Float64(data=0.5))
            self.teleop[2].publish(Bool(data=bool(s["intervention"])))

    def record(self, kind: str, msg) -> None:
        event = {"kind": kind, "t": time.monotonic()}
        if kind in ("command", "preview"):
            event["joint_names"] = list(msg.joint_names)
            event["points"] = [list(p.positions) for p in msg.points]
        elif kind == "diagnostics":
            event["values"] = {kv.key: kv.value for status in msg.status for kv in status.values}
        elif kind == "pose":
            p, q = msg.pose.position, msg.pose.orientation
            event.update(
                frame_id=msg.header.frame_id, position=[p.x, p.y, p.z], quaternion=[q.x, q.y, q.z, q.w]
            )
        elif kind == "gripper":
            event["value"] = msg.data
        elif kind == "chunk":
            event["rows"] = np.asarray(msg.data).reshape(msg.layout.dim[0].size, -1).tolist()
        elif kind.startswith("image:"):
            data = np.frombuffer(bytes(msg.data), np.uint8)
            event.update(
                encoding=msg.encoding, height=msg.height, width=msg.width, stamp=msg.header.stamp.sec
            )
            event["head"] = data[: min(len(data), 12)].tolist()
        else:  # status / recorder
            event["held"] = msg.level != DiagnosticStatus.OK
            event["message"] = msg.message
        with self.lock:
            self.events.append(event)

    def call(self, client, request, timeout_s: float = 10.0):
        if not client.wait_for_service(timeout_sec=timeout_s):
            return {"success": False, "message": "service not available"}
        future = client.call_async(request)
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not future.done():
            return {"success": False, "message": "service call timed out"}
        result = future.result()
        return {"success": result.success, "message": result.message}


def main() -> int:
    config = json.loads(sys.argv[1])
    rclpy.init()
    robot = Robot(config)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(robot)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    print(json.dumps({"ready": True, "now": time.monotonic()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request.pop("cmd")
        reply: dict = {}
        if cmd == "set":
            robot.state.update(request)
        elif cmd == "enable":
            reply = robot.call(robot.enable_client, SetBool.Request(data=bool(request["data"])))
        elif cmd == "reset":
            reply = robot.call(robot.reset_client, Trigger.Request())
        elif cmd == "call":
            name = request["service"]
            kind = SetBool if "data" in request else Trigger
            if name not in robot.service_clients:
                robot.service_clients[name] = robot.create_client(kind, name)
            message = SetBool.Request(data=bool(request["data"])) if kind is SetBool else Trigger.Request()
            reply = robot.call(robot.service_clients[name], message)
        elif cmd == "events":
            with robot.lock:
                reply = {"events": [e for e in robot.events if e["t"] > request.get("since", 0.0)]}
            reply["last_camera_publish"] = robot.state["last_camera_publish"]
        elif cmd == "quit":
            break
        reply["now"] = time.monotonic()
        print(json.dumps(reply), flush=True)
    executor.shutdown()
    robot.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
