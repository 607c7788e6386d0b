"""``sim_robot``: a robosuite task (Panda, OSC_POSE) behind the ROS 2 interfaces of a real arm.

The simulated robot steps the task at its control rate (robosuite: 20 Hz), on a wall-clock timer or as the ROS
clock (``publish_clock``, below), headless
(``MUJOCO_GL=egl``), with the same env as ``manip eval`` (:func:`manip.sim.env.make_env`: model seed 0, episode
seed from the ``seed`` parameter), so one seed gives one initial state on both paths.

Topics it publishes (every tick, stamped with the ROS time of the step; names are parameters):
- ``/joint_states`` (sensor_msgs/JointState): the 7 arm joints and the 2 gripper finger joints, names as
  robosuite's MJCF gives them (``robot0_joint1..7``, ``gripper0_right_finger_joint1/2``), position + velocity;
- ``/eef_pose`` (geometry_msgs/PoseStamped, frame ``world``): robosuite's ``robot0_eef_pos`` and
  ``robot0_eef_quat`` (x, y, z, w);
- ``/object_state`` (std_msgs/Float64MultiArray): the task's ``object`` observation (privileged sim state);
- ``/<camera>/color/image_raw`` (sensor_msgs/Image rgb8, upright, ``image_height`` × ``image_width``) and
  ``/<camera>/color/camera_info`` (sensor_msgs/CameraInfo) for each of ``cameras``;
  ``/<camera>/depth/image_raw`` (32FC1 metres or 16UC1 millimetres, ``depth_encoding``) for each of
  ``depth_cameras``;
- ``/task_success`` (std_msgs/Bool): robosuite's own success check;
- ``~/status`` (diagnostic_msgs/DiagnosticStatus): episode, seed, steps, done, success and, counted at the robot
  for this episode, the commands received, stop trajectories and the achieved command rate (Hz).

Commands it consumes (what ``policy_node`` publishes); the newest target is held until another arrives:
- ``/cartesian_target`` (geometry_msgs/PoseStamped): an ABSOLUTE end-effector pose in the frame of
  ``/eef_pose``. Each tick the target becomes robosuite's OSC_POSE delta action: ``(target_pos − eef_pos) /
  0.05`` and ``axis_angle(R_target · R_eefᵀ) / 0.5``, clipped to [−1, 1].
- ``/joint_trajectory_controller/joint_trajectory`` (trajectory_msgs/JointTrajectory): the first point's
  positions are absolute targets for the named arm joints (unnamed arm joints keep their current position).
  They are converted, not controlled in joint space: forward kinematics of the target joint positions gives an
  end-effector pose target that the same OSC_POSE controller follows (the env stays the one ``manip eval``
  uses; the elbow's null-space posture is not commanded). An empty trajectory is a stop: like a
  JointTrajectoryController, the robot holds where it is (counted as a stop).
- ``/gripper_command`` (std_msgs/Float64): −1 open … +1 closed (robosuite's convention), held.

Episodes: ``~/reset`` (std_srvs/Trigger) starts an episode from the seed in the ``seed`` parameter — set it
first with a parameter set (``ros2 param set /sim_robot seed 7``, or the SetParameters service), then call
``~/reset``. With ``wait_for_command`` (default) the physics waits, publishing the initial state, until the
episode's first command arrives, so the step count starts with the policy's first action as in ``manip eval``.
The episode is done at success (``end_on_success``) or after ``horizon`` steps (0: the task's); the sim then
stops stepping and keeps publishing its last state.

Clock: by default the robot steps on a wall-clock timer and stamps with the system's ROS time. With
``publish_clock`` it is also the ROS clock: it publishes ``/clock`` (rosgraph_msgs/Clock), one control period per
tick, stamps everything with that time, and steps in lockstep with its controller: during an episode, after each
tick it waits for the command that answers it — a PoseStamped stamped at that tick's time or later, any
JointTrajectory (their stamp 0 means "now"), or the episode's first command — for at most ``lockstep_timeout_s`` of wall time after the tick
ended (each such step is counted as a lockstep timeout), and it never runs faster than real time. Before an
episode's first command and after it is done the clock simply runs at real time. Nodes started with
``use_sim_time: true`` (``policy_node``) then tick once per simulated step, however long rendering the cameras
takes on a slow machine; ``manip eval --ros`` runs this way. Publish the gripper command before the arm command
(as ``policy_node`` does): the arm command releases the step.

Scripted expert: ``~/expert`` (std_srvs/SetBool) starts/stops the task's scripted expert
(:mod:`manip.sim.experts`) as an operator with privileged access to the sim: every tick it turns the expert's
OSC_POSE delta into a command message and publishes it on the command topics above, on
``expert_interface``: ``cartesian`` (target = eef pose ⊕ delta · scale) or ``joint_trajectory`` (target =
joint positions + J⁺ · delta · scale, one step of differential inverse kinematics).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.time import Time
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64, Float64MultiArray
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from manip.core.errors import ManipError
from manip.sim.env import make_env
from manip.sim.experts.base import POS_SCALE, ROT_SCALE, axis_angle
from real.entry import run_node
from real.params import declare_params

COMMAND_INTERFACES = ("cartesian", "joint_trajectory")
DEPTH_ENCODINGS = ("32FC1", "16UC1")


@dataclass(frozen=True)
class SimRobotParams:
    """Parameters of ``sim_robot`` (names are the ROS parameter names)."""

    task: str = "Lift"
    seed: int = 0  # the episode seed ~/reset uses
    horizon: int = 0  # steps per episode; 0: the task's
    end_on_success: bool = True
    wait_for_command: bool = True
    control_rate_hz: float = 0.0  # 0: the task's control rate
    joint_state_topic: str = "/joint_states"
    eef_pose_topic: str = "/eef_pose"
    object_state_topic: str = "/object_state"
    success_topic: str = "/task_success"
    frame_id: str = "world"
    cartesian_topic: str = "/cartesian_target"
    trajectory_topic: str = "/joint_trajectory_controller/joint_trajectory"
    gripper_topic: str = "/gripper_command"
    cameras: tuple[str, ...] = ()  # e.g. [agentview, robot0_eye_in_hand]
    depth_cameras: tuple[str, ...] = ()
    depth_encoding: str = "32FC1"
    image_height: int = 84
    image_width: int = 84
    expert_interface: str = "cartesian"
    publish_clock: bool = False  # be the ROS clock (/clock) and step in lockstep with the commands
    lockstep_timeout_s: float = 0.5  # publish_clock: step without a new command after this much wall time

    def problems(self) -> list[str]:
        """One line per unusable value (empty when the parameters are usable)."""
        out = []
        if self.horizon < 0:
            out.append(f"horizon must be >= 0, got {self.horizon}")
        if self.control_rate_hz < 0:
            out.append(f"control_rate_hz must be >= 0 (0: the task's), got {self.control_rate_hz}")
        if self.depth_encoding not in DEPTH_ENCODINGS:
            out.append(f"depth_encoding '{self.depth_encoding}' is not one of {', '.join(DEPTH_ENCODINGS)}")
        if self.expert_interface not in COMMAND_INTERFACES:
            out.append(
                f"expert_interface '{self.expert_interface}' is not one of {', '.join(COMMAND_INTERFACES)}"
            )
        if self.lockstep_timeout_s <= 0:
            out.append(f"lockstep_timeout_s must be > 0, got {self.lockstep_timeout_s}")
        if min(self.image_height, self.image_width) < 8:
            out.append(f"image size {self.image_height}x{self.image_width} is too small (need >= 8 pixels)")
        return out


def quat_to_mat(quat_xyzw) -> np.ndarray:
    """Quaternion (x, y, z, w) → rotation matrix."""
    from robosuite.utils.transform_utils import quat2mat

    return quat2mat(np.asarray(quat_xyzw, dtype=np.float64))


def mat_to_quat(matrix: np.ndarray) -> np.ndarray:
    """Rotation matrix → quaternion (x, y, z, w)."""
    from robosuite.utils.transform_utils import mat2quat

    return mat2quat(np.asarray(matrix, dtype=np.float64))


def rotvec_to_mat(rotvec: np.ndarray) -> np.ndarray:
    """Rotation vector (axis · angle) → rotation matrix."""
    from robosuite.utils.transform_utils import axisangle2quat

    return quat_to_mat(axisangle2quat(np.asarray(rotvec, dtype=np.float64)))


def pose_to_delta_action(
    target_pos: np.ndarray, target_mat: np.ndarray, eef_pos: np.ndarray, eef_mat: np.ndarray, gripper: float
) -> np.ndarray:
    """An absolute end-effector target → robosuite's 7-D OSC_POSE delta action (clipped to [−1, 1])."""
    delta_pos = (np.asarray(target_pos) - eef_pos) / POS_SCALE
    delta_rot = axis_angle(np.asarray(target_mat) @ np.asarray(eef_mat).T) / ROT_SCALE
    return np.clip(np.concatenate([delta_pos, delta_rot, [gripper]]), -1.0, 1.0)


class ConfigError(Exception):
    """Parameters the node cannot run with (one line; the node exits with status 2)."""


class SimRobot(Node):
    """The simulated robot; see the module docstring."""

    def __init__(self):
        super().__init__("sim_robot")
        try:
            self.params = p = declare_params(self, SimRobotParams)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if p.problems():
            raise ConfigError("; ".join(p.problems()))
        unknown = sorted(set(p.depth_cameras) - set(p.cameras))
        rendering = bool(p.cameras)
        try:
            self.env = make_env(p.task, offscreen=rendering, horizon=p.horizon or None)
        except ManipError as exc:
            raise ConfigError(str(exc)) from None
        cameras = set(self.env.raw.sim.model.camera_names)
        missing = sorted(set(p.cameras) - cameras)
        if missing or unknown:
            raise ConfigError(
                f"cameras {missing or unknown} are not in the task's cameras {sorted(cameras)}"
                + (" (depth_cameras must also be in cameras)" if unknown else "")
            )
        robot = self.env.raw.robots[0]
        arm = robot.arms[0]
        self.arm_joints = list(robot.robot_joints)
        self.joint_names = [*self.arm_joints, *robot.gripper[arm].joints]
        self.qpos_index = np.array(
            [*robot._ref_joint_pos_indexes, *robot._ref_gripper_joint_pos_indexes[arm]], dtype=int
        )
        self.qvel_index = np.array(
            [*robot._ref_joint_vel_indexes, *robot._ref_gripper_joint_vel_indexes[arm]], dtype=int
        )
        self.arm_dofs = np.array(robot._ref_joint_vel_indexes, dtype=int)
        self.eef_site = robot.eef_site_id[arm]
        self.eef_body = self.env.raw.sim.model.body_name2id(robot.robot_model.eef_name[arm])
        self.rate = p.control_rate_hz or float(self.env.control_rate)
        self.env.reset(seed=p.seed)
        self.env.step(np.zeros(7))  # compile robosuite's jitted controller code now, not in the first episode
        self.expert = None
        self.expert_on = False
        self.episode = 0
        self._new_episode(p.seed)

        self.joint_pub = self.create_publisher(JointState, p.joint_state_topic, 10)
        self.pose_pub = self.create_publisher(PoseStamped, p.eef_pose_topic, 10)
        self.object_pub = self.create_publisher(Float64MultiArray, p.object_state_topic, 10)
        self.success_pub = self.create_publisher(Bool, p.success_topic, 10)
        self.status_pub = self.create_publisher(DiagnosticStatus, "~/status", 10)
        self.image_pubs = {
            cam: (
                self.create_publisher(Image, f"/{cam}/color/image_raw", 10),
                self.create_publisher(CameraInfo, f"/{cam}/color/camera_info", 10),
            )
            for cam in p.cameras
        }
        self.depth_pubs = {
            cam: self.create_publisher(Image, f"/{cam}/depth/image_raw", 10) for cam in p.depth_cameras
        }
        self.expert_pubs = (
            self.create_publisher(PoseStamped, p.cartesian_topic, 10),
            self.create_publisher(JointTrajectory, p.trajectory_topic, 10),
            self.create_publisher(Float64, p.gripper_topic, 10),
        )
        self.create_subscription(PoseStamped, p.cartesian_topic, self._on_pose_target, 10)
        self.create_subscription(JointTrajectory, p.trajectory_topic, self._on_trajectory, 10)
        self.create_subscription(Float64, p.gripper_topic, self._on_gripper, 10)
        self.create_service(Trigger, "~/reset", self._on_reset)
        self.create_service(SetBool, "~/expert", self._on_expert)
        self.period_ns = round(1e9 / self.rate)
        self.clock_ns = 10**9  # simulated time starts at 1 s (time 0 means "no clock yet" to ROS nodes)
        self.fresh_command = False  # publish_clock: the command answering the last tick has arrived
        self.last_tick_at = self.tick_done_at = 0.0
        if p.publish_clock:
            if self.get_parameter("use_sim_time").value:
                raise ConfigError("publish_clock and use_sim_time exclude each other: this node is the clock")
            if p.lockstep_timeout_s < 1.0 / self.rate:
                raise ConfigError(
                    f"lockstep_timeout_s {p.lockstep_timeout_s:g} is shorter than one control period "
                    f"({1.0 / self.rate:g} s at {self.rate:g} Hz): the robot would never wait for a command"
                )
            self.clock_pub = self.create_publisher(Clock, "/clock", 10)
            self.create_timer(0.002, self._lockstep_poll)
        else:
            self.create_timer(1.0 / self.rate, self._tick)
        self.get_logger().info(
            f"sim_robot: {p.task} at {self.rate:g} Hz, horizon {self.env.horizon}, cameras {list(p.cameras)}; "
            f"seed {p.seed} (set the parameter 'seed', then call ~/reset)"
        )

    # -- episodes -----------------------------------------------------------------------------------------------
    def _new_episode(self, seed: int) -> None:
        self.seed = int(seed)
        self.obs = self.env.reset(seed=self.seed)
        self.episode += 1
        self.steps = 0
        self.success = False
        self.done = False
        self.commanded = False
        self.target_pos, self.target_mat = self._eef()
        self.target_joints: np.ndarray | None = None
        self.gripper = -1.0
        self.commands = 0
        self.stops = 0
        self.rejected = 0
        self.command_times: list[float] = []
        self.lockstep_timeouts = 0
        if self.expert_on:
            self.expert.reset(self.env, self.seed)

    def _on_reset(self, _request, response):
        seed = int(self.get_parameter("seed").value)
        self._new_episode(seed)
        response.success = True
        response.message = f"episode {self.episode}: seed {seed}"
        self.get_logger().info(response.message)
        return response

    def _on_expert(self, request, response):
        if request.data and self.expert is None:
            from manip.sim.experts import make_expert

            try:
                self.expert = make_expert(self.params.task)
            except ManipError as exc:
                response.success, response.message = False, str(exc)
                return response
        if request.data and not self.expert_on:
            self.expert.reset(self.env, self.seed)
        self.expert_on = bool(request.data)
        response.success = True
        response.message = "scripted expert " + ("commanding" if self.expert_on else "stopped")
        return response

    # -- commands -----------------------------------------------------------------------------------------------
    def _received(self, stamp=None) -> None:
        """Count a command (not after the episode is done); with ``publish_clock`` a command answers the last tick
        when ``stamp`` (its header stamp; None: unstamped) is that tick's time or later."""
        if self.done:
            return
        first = (
            not self.commanded
        )  # the clock ran freely until now: the first command answers the newest tick
        self.commands += 1
        self.commanded = True
        if first or stamp is None or Time.from_msg(stamp).nanoseconds >= self.clock_ns:
            self.fresh_command = True
        self.command_times.append(self._seconds())

    def _seconds(self) -> float:
        """Now on the robot's clock: the simulated time with ``publish_clock``, else monotonic wall time."""
        return self.clock_ns * 1e-9 if self.params.publish_clock else time.monotonic()

    def _on_pose_target(self, msg: PoseStamped) -> None:
        p, q = msg.pose.position, msg.pose.orientation
        quat = np.array([q.x, q.y, q.z, q.w], dtype=np.float64)
        if (
            not (np.isfinite([p.x, p.y, p.z]).all() and np.isfinite(quat).all())
            or np.linalg.norm(quat) < 1e-9
        ):
            self.rejected += 1
            return
        self.target_pos = np.array([p.x, p.y, p.z])
        self.target_mat = quat_to_mat(quat / np.linalg.norm(quat))
        self.target_joints = None
        self._received(msg.header.stamp)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        if not msg.points:  # a stop: hold where the arm is now
            self.target_pos, self.target_mat = self._eef()
            self.target_joints = None
            self.stops += 1
            return
        names = list(msg.joint_names)
        positions = list(msg.points[0].positions)
        unknown = [n for n in names if n not in self.joint_names]
        if unknown or len(names) != len(positions) or not np.isfinite(positions).all():
            self.rejected += 1
            self.get_logger().warning(
                f"ignoring a trajectory: joints {unknown} unknown (joints: {self.joint_names})"
                if unknown
                else "ignoring a trajectory: names and positions differ in length or are not finite",
                throttle_duration_sec=5.0,
            )
            return
        target = self._joint_positions()[: len(self.arm_joints)].copy()
        for name, value in zip(names, positions, strict=True):
            if name in self.arm_joints:  # finger joints follow /gripper_command
                target[self.arm_joints.index(name)] = value
        self.target_joints = target
        self._received()

    def _on_gripper(self, msg: Float64) -> None:
        if np.isfinite(msg.data):
            self.gripper = float(np.clip(msg.data, -1.0, 1.0))

    # -- kinematics ---------------------------------------------------------------------------------------------
    def _eef(self) -> tuple[np.ndarray, np.ndarray]:
        """The published end-effector pose: robot0_eef_pos and the rotation of robot0_eef_quat."""
        return np.asarray(self.obs["robot0_eef_pos"], np.float64), quat_to_mat(self.obs["robot0_eef_quat"])

    def _joint_positions(self) -> np.ndarray:
        return np.array(self.env.raw.sim.data.qpos[self.qpos_index], dtype=np.float64)

    def _forward_kinematics(self, arm_positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The end-effector pose (as published) with the arm at ``arm_positions`` (a scratch copy of the sim)."""
        import mujoco

        sim = self.env.raw.sim
        model = sim.model._model
        data = mujoco.MjData(model)
        data.qpos[:] = sim.data.qpos
        data.qpos[self.qpos_index[: len(self.arm_joints)]] = arm_positions
        mujoco.mj_kinematics(model, data)
        return np.array(data.site_xpos[self.eef_site]), np.array(data.xmat[self.eef_body]).reshape(3, 3)

    def _action(self) -> np.ndarray:
        eef_pos, eef_mat = self._eef()
        if self.target_joints is not None:
            self.target_pos, self.target_mat = self._forward_kinematics(self.target_joints)
        return pose_to_delta_action(self.target_pos, self.target_mat, eef_pos, eef_mat, self.gripper)

    # -- the tick -----------------------------------------------------------------------------------------------
    @property
    def _stepping(self) -> bool:
        return not self.done and (self.commanded or not self.params.wait_for_command)

    def _lockstep_poll(self) -> None:
        """``publish_clock``: tick once a period of wall time has passed since the last tick began and the
        controller has answered it, or ``lockstep_timeout_s`` after it ended without an answer (a holding
        controller does not stop time)."""
        now = time.monotonic()
        if now - self.last_tick_at < 1.0 / self.rate:
            return
        if self._stepping and not self.fresh_command:
            if now - self.tick_done_at < self.params.lockstep_timeout_s:
                return
            self.lockstep_timeouts += 1
        self._tick()

    def _tick(self) -> None:
        self.last_tick_at = time.monotonic()
        self.fresh_command = False
        if self._stepping:
            self.obs, _reward, terminated, truncated, _info = self.env.step(self._action())
            self.steps += 1
            self.success = self.success or terminated
            self.done = (terminated and self.params.end_on_success) or truncated
        if self.params.publish_clock:
            self.clock_ns += self.period_ns
            stamp = Time(nanoseconds=self.clock_ns).to_msg()
        else:
            stamp = self.get_clock().now().to_msg()
        self._publish_state(stamp)
        self._publish_status()
        if self.expert_on and not self.done:
            self._expert_command(stamp)
        if self.params.publish_clock:  # last: a node on this clock ticks with this step's state already sent
            self.clock_pub.publish(Clock(clock=stamp))
        self.tick_done_at = time.monotonic()

    def _publish_state(self, stamp) -> None:
        data = self.env.raw.sim.data
        joints = JointState(
            name=list(self.joint_names),
            position=[float(v) for v in data.qpos[self.qpos_index]],
            velocity=[float(v) for v in data.qvel[self.qvel_index]],
        )
        joints.header.stamp = stamp
        self.joint_pub.publish(joints)
        self.pose_pub.publish(self._pose_msg(self.obs["robot0_eef_pos"], self.obs["robot0_eef_quat"], stamp))
        self.object_pub.publish(Float64MultiArray(data=[float(v) for v in self.obs["object"]]))
        self.success_pub.publish(Bool(data=bool(self.env.check_success())))
        for cam, (image_pub, info_pub) in self.image_pubs.items():
            depth_pub = self.depth_pubs.get(cam)
            rgb, depth = self._render(cam, depth_pub is not None)
            image = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3)
            image.data = rgb.tobytes()
            image.header.stamp, image.header.frame_id = stamp, cam
            image_pub.publish(image)
            info_pub.publish(self._camera_info(cam, stamp))
            if depth_pub is not None:
                depth_pub.publish(self._depth_msg(cam, depth, stamp))

    def _pose_msg(self, position, quat_xyzw, stamp) -> PoseStamped:
        msg = PoseStamped()
        msg.header.stamp, msg.header.frame_id = stamp, self.params.frame_id
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position)
        o = msg.pose.orientation
        o.x, o.y, o.z, o.w = (float(v) for v in quat_xyzw)
        return msg

    def _render(self, cam: str, with_depth: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """An upright rgb8 frame (and depth in metres) of ``cam`` at the requested size."""
        sim = self.env.raw.sim
        h, w = self.params.image_height, self.params.image_width
        frame = sim.render(camera_name=cam, width=w, height=h, depth=with_depth)
        if not with_depth:
            return np.ascontiguousarray(frame[::-1]), None
        from robosuite.utils.camera_utils import get_real_depth_map

        rgb, depth = frame
        return np.ascontiguousarray(rgb[::-1]), np.ascontiguousarray(get_real_depth_map(sim, depth)[::-1])

    def _camera_info(self, cam: str, stamp) -> CameraInfo:
        from robosuite.utils.camera_utils import get_camera_intrinsic_matrix

        h, w = self.params.image_height, self.params.image_width
        k = get_camera_intrinsic_matrix(self.env.raw.sim, cam, h, w)
        info = CameraInfo(height=h, width=w, distortion_model="plumb_bob")
        info.header.stamp, info.header.frame_id = stamp, cam
        info.d = [0.0] * 5
        info.k = [float(v) for v in k.ravel()]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [float(v) for v in np.hstack([k, np.zeros((3, 1))]).ravel()]
        return info

    def _depth_msg(self, cam: str, depth: np.ndarray, stamp) -> Image:
        if self.params.depth_encoding == "16UC1":
            pixels, size = np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16), 2
        else:
            pixels, size = depth.astype(np.float32), 4
        msg = Image(
            height=pixels.shape[0],
            width=pixels.shape[1],
            encoding=self.params.depth_encoding,
            step=pixels.shape[1] * size,
            is_bigendian=sys.byteorder == "big",
        )
        msg.data = pixels.tobytes()
        msg.header.stamp, msg.header.frame_id = stamp, cam
        return msg

    def command_rate(self) -> float:
        """Commands per second the robot received this episode (0 with fewer than two)."""
        times = self.command_times
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def _publish_status(self) -> None:
        values = {
            "episode": self.episode,
            "seed": self.seed,
            "steps": self.steps,
            "horizon": self.env.horizon,
            "done": str(self.done).lower(),
            "success": str(self.success).lower(),
            "waiting": str(not self.commanded).lower(),
            "commands": self.commands,
            "stops": self.stops,
            "rejected": self.rejected,
            "command_rate_hz": f"{self.command_rate():.3f}",
            "lockstep_timeouts": self.lockstep_timeouts,
            "expert": str(self.expert_on).lower(),
        }
        message = "done" if self.done else ("waiting for a command" if not self.commanded else "running")
        status = DiagnosticStatus(level=DiagnosticStatus.OK, name="manip/sim_robot", message=message)
        status.values = [KeyValue(key=k, value=str(v)) for k, v in values.items()]
        self.status_pub.publish(status)

    # -- the scripted expert ------------------------------------------------------------------------------------
    def _expert_command(self, stamp) -> None:
        """Publish the expert's next action as a command (see the module docstring)."""
        action = np.asarray(self.expert.act(self.env, self.obs), dtype=np.float64)
        pose_pub, trajectory_pub, gripper_pub = self.expert_pubs
        gripper_pub.publish(Float64(data=float(action[6])))  # first: the arm command releases a lockstep tick
        if self.params.expert_interface == "cartesian":
            eef_pos, eef_mat = self._eef()
            target_pos = eef_pos + action[:3] * POS_SCALE
            target_quat = mat_to_quat(rotvec_to_mat(action[3:6] * ROT_SCALE) @ eef_mat)
            pose_pub.publish(self._pose_msg(target_pos, target_quat, stamp))
        else:
            msg = JointTrajectory(joint_names=list(self.arm_joints))
            msg.points = [JointTrajectoryPoint(positions=[float(v) for v in self._ik_step(action)])]
            msg.points[0].time_from_start.nanosec = int(1e9 / self.rate)
            trajectory_pub.publish(msg)

    def _ik_step(self, action: np.ndarray) -> np.ndarray:
        """Arm joint targets that move the end effector by one delta action (damped least squares)."""
        import mujoco

        sim = self.env.raw.sim
        jacp, jacr = np.zeros((3, sim.model.nv)), np.zeros((3, sim.model.nv))
        mujoco.mj_jacSite(sim.model._model, sim.data._data, jacp, jacr, self.eef_site)
        jac = np.vstack([jacp, jacr])[:, self.arm_dofs]
        twist = np.concatenate([action[:3] * POS_SCALE, action[3:6] * ROT_SCALE])
        dq = jac.T @ np.linalg.solve(jac @ jac.T + 1e-4 * np.eye(6), twist)
        return self._joint_positions()[: len(self.arm_joints)] + dq


def main(args=None) -> int:
    """Entry point (``ros2 run real sim_robot``)."""
    return run_node("sim_robot", SimRobot, startup_errors=(ConfigError,), args=args)


if __name__ == "__main__":
    sys.exit(main())
