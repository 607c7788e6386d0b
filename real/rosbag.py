"""rosbag2 (directory, ``.mcap`` or ``.db3``) → manip episode store: one bag, one episode, resampled at a fixed rate.

A lab records with ``ros2 bag record`` and converts later (``manip data convert episode.mcap out.zarr``). Messages
are read in log-time order with ``rosbags`` (MCAP and SQLite storage, message definitions from the bag or the
ROS 2 Jazzy type store) and the episode is built by zero-order hold: step k at ``t0 + k / rate_hz`` takes the
newest message of every topic logged at or before it, from the first moment every needed topic has spoken.

What becomes what (defaults; a ``SRC.manip.yaml`` file beside SRC may set any field of :class:`RosbagMapping`):
- every ``sensor_msgs/Image`` / ``CompressedImage`` topic → ``<name>_image`` (uint8 RGB; ``bgr8`` is converted;
  ``16UC1`` → ``<name>_depth``), where ``/agentview/image_raw`` gives the name ``agentview``;
- ``/joint_states`` positions → ``robot0_joint_pos`` (in the first message's joint order, matched by name);
- the first ``trajectory_msgs/JointTrajectory`` topic (its first point's positions) or
  ``geometry_msgs/PoseStamped`` topic (position + axis-angle) → ``action``, with ``/gripper_command``
  (``std_msgs/Float64``) appended when the bag has it;
- ``/teleop/intervention`` (``std_msgs/Bool``) → the per-step intervention flag; log time → ``timestamp``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import Field

from manip.core.config import StrictConfig, load_config
from manip.core.errors import ManipError, require
from manip.core.progress import progress
from manip.data.converters import Converter, any_of, by_suffix, dir_with
from manip.data.recorder import Recorder
from manip.data.store import EpisodeStore

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
JOINT_STATE = "sensor_msgs/msg/JointState"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
POSE = "geometry_msgs/msg/PoseStamped"
FLOAT64 = "std_msgs/msg/Float64"
BOOL = "std_msgs/msg/Bool"
IMAGE_SUFFIXES = ("image_raw", "image_rect_raw", "image_rect", "image", "compressed")


class RosbagMapping(StrictConfig):
    """Which topics become which keys (see the module docstring for the defaults)."""

    rate_hz: float = 10.0
    cameras: dict[str, str] = Field(default_factory=dict)
    """topic → key; empty: every image topic, named by :func:`camera_key`."""
    joint_state_topic: str = "/joint_states"
    joint_state_key: str = "robot0_joint_pos"
    action_topic: str = ""
    """A JointTrajectory or PoseStamped topic; empty: the first one in the bag."""
    gripper_topic: str = "/gripper_command"
    intervention_topic: str = "/teleop/intervention"
    task: str = "real"
    instruction: str = ""


def camera_key(topic: str, encoding: str = "rgb8") -> str:
    """``/agentview/image_raw`` → ``agentview_image``; a ``16UC1`` topic gets ``_depth`` instead."""
    parts = [p for p in topic.strip("/").split("/") if p]
    while len(parts) > 1 and parts[-1] in IMAGE_SUFFIXES:
        parts.pop()
    suffix = "_depth" if encoding in ("16UC1", "mono16") else "_image"
    return "_".join(parts) + suffix


def load_mapping(src: Path) -> RosbagMapping:
    """The mapping in ``SRC.manip.yaml`` beside ``src`` when there is one, else the defaults."""
    sidecar = src.with_name(src.name + ".manip.yaml")
    return load_config(RosbagMapping, sidecar) if sidecar.is_file() else RosbagMapping()


@dataclass
class Stream:
    """One topic's contribution to a step: the key it fills and how a message becomes a value."""

    topic: str
    key: str
    decode: Callable
    required: bool = True


def _image_decoder(topic: str, msgtype: str, mapping: RosbagMapping, first_msg) -> tuple[str, Callable]:
    from manip.real.cameras.encodings import ImageError, compressed_to_array, image_to_array, image_to_rgb

    encoding = getattr(first_msg, "encoding", "rgb8")
    key = mapping.cameras.get(topic) or camera_key(topic, encoding)

    def decode(msg):
        try:
            if msgtype == COMPRESSED:
                return compressed_to_array(msg)
            if msg.encoding in ("16UC1", "mono16"):
                return image_to_array(msg, msg.encoding)
            return image_to_rgb(msg)
        except ImageError as exc:
            raise ManipError(f"{topic}: {exc}") from None

    return key, decode


def _joint_decoder(mapping: RosbagMapping, first_msg) -> Callable:
    names = list(first_msg.name)

    def decode(msg):
        index = {n: i for i, n in enumerate(msg.name)}
        missing = [n for n in names if n not in index]
        if missing:
            raise ManipError(f"{mapping.joint_state_topic}: joint(s) {missing} missing from a later message")
        return np.array([msg.position[index[n]] for n in names], dtype=np.float32)

    return decode


def _action_decoder(topic: str, msgtype: str) -> Callable:
    if msgtype == TRAJECTORY:

        def decode(msg):
            if not len(msg.points):
                return None  # an empty trajectory (a stop) carries no action: keep the previous one
            return np.asarray(msg.points[0].positions, dtype=np.float32)

        return decode

    def decode_pose(msg):
        p, q = msg.pose.position, msg.pose.orientation
        return np.concatenate([[p.x, p.y, p.z], quaternion_to_axis_angle(q.x, q.y, q.z, q.w)]).astype(
            np.float32
        )

    return decode_pose


def quaternion_to_axis_angle(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Quaternion ``(x, y, z, w)`` → rotation vector (axis · angle, angle in [0, π])."""
    q = np.array([x, y, z, w], dtype=np.float64)
    q /= np.linalg.norm(q) or 1.0
    if q[3] < 0:
        q = -q
    sin_half = np.linalg.norm(q[:3])
    if sin_half < 1e-12:
        return np.zeros(3)
    angle = 2.0 * np.arctan2(sin_half, q[3])
    return q[:3] / sin_half * angle


def _plan(reader, mapping: RosbagMapping, first: dict) -> list[Stream]:
    by_topic = {c.topic: c.msgtype for c in reader.connections}
    streams = []
    image_topics = list(mapping.cameras) or [t for t, m in by_topic.items() if m in (IMAGE, COMPRESSED)]
    for topic in image_topics:
        if topic not in by_topic:
            raise ManipError(f"camera topic {topic} is not in the bag (topics: {sorted(by_topic)})")
        key, decode = _image_decoder(topic, by_topic[topic], mapping, first[topic])
        streams.append(Stream(topic, key, decode))
    if mapping.joint_state_topic in by_topic:
        streams.append(
            Stream(
                mapping.joint_state_topic,
                mapping.joint_state_key,
                _joint_decoder(mapping, first[mapping.joint_state_topic]),
            )
        )
    action_topic = mapping.action_topic or next(
        (t for t, m in by_topic.items() if m in (TRAJECTORY, POSE)), ""
    )
    if action_topic not in by_topic:
        raise ManipError(
            f"no action topic (trajectory_msgs/JointTrajectory or geometry_msgs/PoseStamped) in the bag; "
            f"topics: {sorted(by_topic)}"
        )
    streams.append(Stream(action_topic, "action", _action_decoder(action_topic, by_topic[action_topic])))
    if by_topic.get(mapping.gripper_topic) == FLOAT64:
        streams.append(Stream(mapping.gripper_topic, "gripper", lambda m: np.float32(m.data)))
    if by_topic.get(mapping.intervention_topic) == BOOL:
        streams.append(
            Stream(mapping.intervention_topic, "intervention", lambda m: bool(m.data), required=False)
        )
    return streams


def _first_messages(reader, topics: set[str]) -> dict:
    first = {}
    for connection, _t, raw in reader.messages(
        connections=[c for c in reader.connections if c.topic in topics]
    ):
        if connection.topic not in first:
            first[connection.topic] = reader.deserialize(raw, connection.msgtype)
        if len(first) == len(topics):
            break
    return first


def _step(latest: dict, streams: list[Stream], t_step_ns: int) -> tuple[dict, bool]:
    step = {s.key: latest[s.key] for s in streams if s.required and s.key != "gripper"}
    if "gripper" in latest:
        step["action"] = np.append(step["action"], latest["gripper"]).astype(np.float32)
    step["timestamp"] = np.float64(t_step_ns * 1e-9)
    return step, bool(latest.get("intervention", False))


def convert(src: Path, store: EpisodeStore, *, quiet: bool = True) -> None:
    """Append the bag at ``src`` as one episode to ``store`` (see the module docstring)."""
    rosbags_highlevel = require("rosbags.highlevel", "real")
    from rosbags.typesys import Stores, get_typestore

    src = Path(src)
    mapping = load_mapping(src)
    if mapping.rate_hz <= 0:
        raise ManipError(f"rate_hz must be > 0, got {mapping.rate_hz}")
    dt_ns = round(1e9 / mapping.rate_hz)
    try:
        reader = rosbags_highlevel.AnyReader([src], default_typestore=get_typestore(Stores.ROS2_JAZZY))
        reader.open()
    except Exception as exc:  # rosbags raises its own error types for unreadable bags
        raise ManipError(f"{src}: cannot read the bag ({' '.join(str(exc).split())})") from None
    try:
        topics = {c.topic for c in reader.connections}
        streams = _plan(reader, mapping, _first_messages(reader, topics))
        needed = {s.key for s in streams if s.required}
        recorder = Recorder(store)
        recorder.start_episode(
            task=mapping.task, instruction=mapping.instruction, source=f"rosbag2:{src.name}"
        )
        by_topic = {s.topic: s for s in streams}
        latest: dict = {}
        next_step: int | None = None
        last_ns = 0
        connections = [c for c in reader.connections if c.topic in by_topic]
        total = sum(c.msgcount for c in connections)
        read = 0
        for connection, t_ns, raw in progress(
            reader.messages(connections=connections), desc="convert", total=total, quiet=quiet, unit="msg"
        ):
            read += 1
            while next_step is not None and t_ns > next_step:
                recorder.add_step(*_step(latest, streams, next_step))
                next_step += dt_ns
            last_ns = t_ns
            stream = by_topic[connection.topic]
            value = stream.decode(reader.deserialize(raw, connection.msgtype))
            if value is not None:
                latest[stream.key] = value
            if next_step is None and needed <= set(latest):
                next_step = t_ns
        if read < total:  # the bag's index lists messages its data no longer holds (a damaged file)
            raise ManipError(f"{src}: damaged bag: only {read} of the {total} indexed messages are readable")
        while next_step is not None and next_step <= last_ns:
            recorder.add_step(*_step(latest, streams, next_step))
            next_step += dt_ns
        if recorder.num_steps == 0:
            recorder.discard()
            missing = sorted(needed - set(latest))
            raise ManipError(f"{src}: no step has every topic; never published: {missing}")
        recorder.commit(success=None)
        store.set_attrs(source={"format": "rosbag2", "path": str(src), "rate_hz": mapping.rate_hz})
    except ManipError as exc:  # a topic-level problem (no action topic, bad encoding): name the bag too
        message = str(exc)
        if message.startswith(str(src)) or str(store.path) in message:
            raise
        raise ManipError(f"{src}: {message}") from None
    finally:
        reader.close()


CONVERTER = Converter(
    "rosbag2",
    "manip.real.rosbag:convert",
    any_of(by_suffix(".mcap", ".db3"), dir_with("metadata.yaml")),
    "rosbag2 directory or .mcap file",
)
"""``manip data convert`` finds this through the ``manip.converters`` entry point."""
