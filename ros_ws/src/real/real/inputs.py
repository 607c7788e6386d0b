"""Subscriptions (sensor-data QoS) feeding an :class:`ObservationAssembler`, one per topic of its observation
map; shared by the policy node and the recorder node. Images (Image or CompressedImage), JointState,
PoseStamped and Float64MultiArray messages are decoded here and stored with their time."""

from __future__ import annotations

from geometry_msgs.msg import PoseStamped
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float64MultiArray

from manip.real.cameras.encodings import ImageError, compressed_to_array, image_to_array
from real.observation import ObservationAssembler


def stamp_seconds(header, fallback: float) -> float:
    """A header stamp in seconds, or ``fallback`` (the receive time) when the publisher left it at zero."""
    seconds = header.stamp.sec + header.stamp.nanosec * 1e-9
    return seconds if seconds > 0 else fallback


def now_seconds(node) -> float:
    """The node's clock (ROS time) in seconds."""
    return node.get_clock().now().nanoseconds * 1e-9


def subscribe_inputs(node, assembler: ObservationAssembler) -> None:
    """Subscribe ``node`` to every topic of the assembler's observation map."""
    for topic, sources in assembler.topics().items():
        first = sources[0]
        if first.is_frame:
            msg_type = CompressedImage if first.compressed else Image
            callback = _frame_callback(node, assembler, sources)
        elif first.type == "joint_state":
            msg_type, callback = JointState, _joint_state_callback(node, assembler, topic)
        elif first.type == "pose":
            msg_type, callback = PoseStamped, _pose_callback(node, assembler, topic)
        else:
            msg_type, callback = Float64MultiArray, _array_callback(node, assembler, topic)
        node.create_subscription(msg_type, topic, callback, qos_profile_sensor_data)


def _frame_callback(node, assembler, sources):
    def on_frame(msg) -> None:
        now = now_seconds(node)
        decode = image_to_array if isinstance(msg, Image) else compressed_to_array
        for source in sources:
            try:
                assembler.put_frame(source.key, decode(msg, source.encoding), stamp_seconds(msg.header, now))
            except ImageError as exc:
                assembler.put_frame(source.key, None, now, str(exc))

    return on_frame


def _joint_state_callback(node, assembler, topic):
    def on_joint_state(msg: JointState) -> None:
        fields = {"position": list(msg.position), "velocity": list(msg.velocity), "effort": list(msg.effort)}
        assembler.put_joint_state(topic, list(msg.name), fields, stamp_seconds(msg.header, now_seconds(node)))

    return on_joint_state


def _pose_callback(node, assembler, topic):
    def on_pose(msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        stamp = stamp_seconds(msg.header, now_seconds(node))
        assembler.put_pose(topic, (p.x, p.y, p.z), (q.x, q.y, q.z, q.w), msg.header.frame_id, stamp)

    return on_pose


def _array_callback(node, assembler, topic):
    def on_array(msg: Float64MultiArray) -> None:
        assembler.put_array(topic, list(msg.data), now_seconds(node))  # Float64MultiArray has no header

    return on_array
