"""Camera and joint-state subscriptions (sensor-data QoS) feeding an :class:`ObservationAssembler`; shared by
the policy node and the recorder node."""

from __future__ import annotations

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState

from manip.real.cameras.encodings import EXPECTED_ENCODING, ImageError, compressed_to_array, image_to_array
from real.observation import ObservationAssembler


def stamp_seconds(header, fallback: float) -> float:
    """A header stamp in seconds, or ``fallback`` (the receive time) when the publisher left it at zero."""
    seconds = header.stamp.sec + header.stamp.nanosec * 1e-9
    return seconds if seconds > 0 else fallback


def now_seconds(node) -> float:
    """The node's clock (ROS time) in seconds."""
    return node.get_clock().now().nanoseconds * 1e-9


def subscribe_inputs(node, assembler: ObservationAssembler, transport: str = "raw") -> None:
    """Subscribe ``node`` to the assembler's camera topics (Image, or CompressedImage when ``transport`` is
    ``"compressed"``) and joint-state topic; every message is decoded and stored with its time."""
    msg_type = Image if transport == "raw" else CompressedImage

    def on_frame(key: str, msg) -> None:
        now = now_seconds(node)
        need = assembler.needs.get(key)
        expected = EXPECTED_ENCODING.get(need.kind if need else "rgb", "rgb8")
        try:
            decode = image_to_array if isinstance(msg, Image) else compressed_to_array
            assembler.put_frame(key, decode(msg, expected), stamp_seconds(msg.header, now))
        except ImageError as exc:
            assembler.put_frame(key, None, now, str(exc))

    def on_joint_state(msg: JointState) -> None:
        now = now_seconds(node)
        assembler.put_joint_state(list(msg.name), list(msg.position), stamp_seconds(msg.header, now))

    for key, topic in assembler.camera_topics.items():
        node.create_subscription(
            msg_type, topic, lambda msg, key=key: on_frame(key, msg), qos_profile_sensor_data
        )
    node.create_subscription(JointState, assembler.joint_state_topic, on_joint_state, qos_profile_sensor_data)
