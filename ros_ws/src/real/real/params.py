"""The parameters each node declares, with defaults: one table that the nodes, the launch file, the YAML in
config/ and the tests all agree on. Plain Python (no rclpy), so it can be read anywhere."""

from __future__ import annotations

from dataclasses import dataclass, fields

COMMAND_INTERFACES = ("joint_trajectory", "cartesian")
CAMERA_TRANSPORTS = ("raw", "compressed")
EXECUTOR_MODES = ("receding", "ensemble", "async", "rtc", "adaptive")
STALE_PERIODS = 2.0
"""Default staleness limit, in control periods: an input that missed a whole control period is stale."""


@dataclass(frozen=True)
class PolicyNodeParams:
    """Parameters of ``policy_node`` (names are the ROS parameter names)."""

    server_url: str = "ws://127.0.0.1:8000"
    token_file: str = ""
    # 0: the checkpoint's control rate. Another value must equal it unless allow_rate_mismatch is true.
    control_rate_hz: float = 0.0
    allow_rate_mismatch: bool = False
    dry_run: bool = True
    # Observations: the YAML map (observation key -> topic, type, field; real/observation_map.py). When empty,
    # the older parameters below describe it: camera_topics[i] feeds camera_keys[i] (Image, or CompressedImage
    # for camera_transport "compressed") and the positions of joint_names feed joint_state_key.
    observation_map_file: str = ""
    camera_topics: tuple[str, ...] = ("/camera/color/image_raw",)
    camera_keys: tuple[str, ...] = ("agentview_image",)
    camera_transport: str = "raw"
    joint_state_topic: str = "/joint_states"
    joint_names: tuple[str, ...] = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7")
    joint_state_key: str = "robot0_joint_pos"
    # How old an image / any other input may be before the node holds (0: STALE_PERIODS control periods).
    max_frame_age_s: float = 0.0
    max_state_age_s: float = 0.0
    # Joints commanded, in action order (empty: joint_names); e.g. the arm joints without the finger joints.
    command_joint_names: tuple[str, ...] = ()
    # Commands: joint_trajectory -> trajectory_msgs/JointTrajectory on command_topic (joint_position or
    # joint_delta checkpoints); cartesian -> an absolute geometry_msgs/PoseStamped target on command_topic
    # (ee_absolute, or ee_delta composed onto the mapped end-effector pose). Either way, an extra last action
    # element goes to gripper_topic. A checkpoint whose actions mean something else is refused at start
    # unless allow_action_mismatch is true.
    command_interface: str = "joint_trajectory"
    allow_action_mismatch: bool = False
    command_topic: str = "/joint_trajectory_controller/joint_trajectory"
    gripper_topic: str = "/gripper_command"
    frame_id: str = "base_link"
    # Executor and transport. safety_file: YAML of manip.real.client.safety.SafetyConfig (clamps, max change per
    # tick, hold). Without low/high there, the checkpoint's action range (+10%) clamps every action; a
    # checkpoint that does not record its action statistics cannot be actuated without them.
    executor_mode: str = "receding"
    safety_file: str = ""
    request_timeout_s: float = 2.0
    reconnect_interval_s: float = 1.0
    diagnostics_period_s: float = 1.0

    @property
    def commanded_joints(self) -> list[str]:
        """The joints a JointTrajectory names (``command_joint_names``, else ``joint_names``)."""
        return list(self.command_joint_names or self.joint_names)

    def problems(self) -> list[str]:
        """One line per inconsistent value (empty when the parameters are usable)."""
        out = []
        if self.control_rate_hz < 0:
            out.append(f"control_rate_hz must be >= 0 (0: the checkpoint's rate), got {self.control_rate_hz}")
        for name in ("max_frame_age_s", "max_state_age_s"):
            if getattr(self, name) < 0:
                out.append(
                    f"{name} must be >= 0 (0: {STALE_PERIODS:g} control periods), got {getattr(self, name)}"
                )
        if len(self.camera_topics) != len(self.camera_keys):
            out.append(
                f"camera_topics has {len(self.camera_topics)} entries but camera_keys has {len(self.camera_keys)}"
            )
        if self.camera_transport not in CAMERA_TRANSPORTS:
            out.append(
                f"camera_transport '{self.camera_transport}' is not one of {', '.join(CAMERA_TRANSPORTS)}"
            )
        if self.command_interface not in COMMAND_INTERFACES:
            out.append(
                f"command_interface '{self.command_interface}' is not one of {', '.join(COMMAND_INTERFACES)}"
            )
        if self.executor_mode not in EXECUTOR_MODES:
            out.append(f"executor_mode '{self.executor_mode}' is not one of {', '.join(EXECUTOR_MODES)}")
        if not self.joint_names:
            out.append("joint_names is empty")
        return out


@dataclass(frozen=True)
class CameraNodeParams:
    """Parameters of ``camera_node`` (RealSense frames from the camera process → sensor_msgs/Image)."""

    names: tuple[str, ...] = ("camera",)
    # One per name: a serial number ("" = the only connected camera) and a recording to play back ("" = live).
    serials: tuple[str, ...] = ("",)
    playback_files: tuple[str, ...] = ("",)
    width: int = 640
    height: int = 480
    fps: int = 30
    enable_depth: bool = True
    # The camera process runs in this Python (it needs pyrealsense2; never the rclpy process itself).
    camera_python: str = "python3"


@dataclass(frozen=True)
class RecorderNodeParams:
    """Parameters of ``recorder_node`` (live topics → Zarr episodes through manip.data.recorder.Recorder)."""

    store_path: str = "demos.zarr"
    record_rate_hz: float = 10.0
    # Observations: the same YAML map policy_node reads (every key in it is recorded); when empty, the older
    # parameters below describe it, as for policy_node.
    observation_map_file: str = ""
    camera_topics: tuple[str, ...] = ("/camera/color/image_raw",)
    camera_keys: tuple[str, ...] = ("agentview_image",)
    joint_state_topic: str = "/joint_states"
    joint_names: tuple[str, ...] = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7")
    joint_state_key: str = "robot0_joint_pos"
    max_frame_age_s: float = 0.25
    # The action of a step: the newest JointTrajectory's first point on action_topic (+ gripper_topic's Float64);
    # the store records it as joint_position actions at record_rate_hz (attributes action_semantics, control_rate).
    action_topic: str = "/joint_trajectory_controller/joint_trajectory"
    gripper_topic: str = "/gripper_command"
    intervention_topic: str = "/teleop/intervention"
    task: str = "real"
    instruction: str = ""


def defaults(params_class) -> dict:
    """``{name: default}`` of a params dataclass, with tuples as lists (the form ROS parameters take)."""
    out = {}
    for f in fields(params_class):
        value = f.default
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def from_values(params_class, values: dict):
    """Build a params dataclass from ``{name: value}`` (lists become tuples)."""
    return params_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def declare_params(node, params_class):
    """Declare every parameter of ``params_class`` on ``node`` and return the params dataclass with the values
    the node was started with. A value of the wrong type raises ``ValueError`` naming the parameter."""
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
    from rclpy.parameter import Parameter

    values = {}
    for name, default in defaults(params_class).items():
        try:
            if default == []:  # an empty list has no type of its own: declare it as a string array
                values[name] = list(node.declare_parameter(name, Parameter.Type.STRING_ARRAY).value or [])
            else:
                values[name] = node.declare_parameter(name, default).value
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            raise ValueError(f"parameter '{name}': {' '.join(str(exc).split())}") from None
    return from_values(params_class, values)


# bringup.launch.py arguments that set policy_node parameters: name → type. An argument left empty keeps the
# params file's value (so a lab's my_robot.yaml is not silently reset to the defaults); dry_run defaults to
# "true" and always applies, so actuation is opted into on the command line.
LAUNCH_OVERRIDES = {
    "server_url": str,
    "token_file": str,
    "control_rate_hz": float,
    "camera_topics": list,
    "camera_transport": str,
    "joint_state_topic": str,
    "command_interface": str,
    "command_topic": str,
    "dry_run": bool,
}


def launch_overrides(arguments: dict[str, str]) -> dict:
    """policy_node parameter overrides from launch-argument text (``""``: keep the params file's value).

    Non-string values are read as YAML (``"['/a', '/b']"`` → a list, ``"false"`` → False); a value of the wrong
    type raises ``ValueError`` naming the argument.
    """
    import yaml

    out = {}
    for name, kind in LAUNCH_OVERRIDES.items():
        text = arguments.get(name, "")
        if text == "":
            continue
        value = text if kind is str else yaml.safe_load(text)
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is list and isinstance(value, str):
            value = [value]
        if not isinstance(value, kind) or (kind is list and not all(isinstance(v, str) for v in value)):
            raise ValueError(f"launch argument {name}:={text} is not a {kind.__name__}")
        out[name] = value
    return out
