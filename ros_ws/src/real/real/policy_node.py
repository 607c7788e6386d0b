"""``policy_node``: sensor topics → policy server → ChunkExecutor → robot commands, at the checkpoint's control rate.

A thin adapter: the observation comes from :class:`real.observation.ObservationAssembler` (fed as the observation
map says: images, joint states by joint name, end-effector poses, Float64MultiArray), chunks from the light
websocket client (:mod:`manip.real.client.connection`) on a worker thread (:class:`real.requester.AsyncRequester`,
so the control tick never blocks), and one safe action per tick from
:class:`manip.real.client.executor.ChunkExecutor`; :mod:`real.semantics` turns it into a target.

On first contact with a checkpoint the node checks that it can serve it, and exits with one line (status 2)
when not: the checkpoint's action space must fit ``command_interface`` (``allow_action_mismatch`` overrides)
and ``control_rate_hz`` must be 0 (take the checkpoint's rate) or equal to it (``allow_rate_mismatch``).

Topics (``~`` is the node's namespace):
- in: every topic of the observation map (sensor-data QoS);
- out: ``command_topic`` (trajectory_msgs/JointTrajectory, or an absolute geometry_msgs/PoseStamped target) and
  ``gripper_topic`` (std_msgs/Float64, the action's last element) only while actuating (``dry_run`` false and
  enabled); ``~/preview`` and ``~/preview_gripper`` (the same two messages, always, also in a dry run);
  ``~/chunk`` (std_msgs/Float32MultiArray, the newest chunk); ``~/status`` (diagnostic_msgs/DiagnosticStatus,
  every tick: held or not and why); ``/diagnostics`` (diagnostic_msgs/DiagnosticArray: command rate, latency,
  holds by kind).
- services: ``~/enable`` (std_srvs/SetBool: start/stop actuation), ``~/reset`` (std_srvs/Trigger).

Any fault — server unreachable or gone, protocol mismatch, stale or missing input, wrong encoding, joint names
that do not match, NaN, a chunk that comes too late — makes the node hold (commands nothing new; a
JointTrajectoryController gets one empty trajectory, which stops it where it is) and log one line when the fault
starts and when it clears. Losing the server (or a new checkpoint behind it) also disables actuation: motion
resumes only after a new ``~/enable``. Actuating needs limits: the safety file's ``low``/``high``, else the
checkpoint's action range (+10%); a checkpoint without action statistics is only previewed.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import time
from collections import Counter, deque
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from std_msgs.msg import Float32MultiArray, Float64
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from manip.core.errors import ManipError
from manip.real.client.auth import read_token
from manip.real.client.executor import WAITING, ChunkExecutor
from manip.real.client.loop import ObsHistory, executor_config_for
from manip.real.client.safety import SafetyConfig
from real import commands, semantics
from real.entry import run_node
from real.inputs import now_seconds, subscribe_inputs
from real.observation import ObservationAssembler
from real.observation_map import MapError, read_observation_map, sources_from_params
from real.params import STALE_PERIODS, PolicyNodeParams, declare_params
from real.requester import AsyncRequester

IDLE_RATE_HZ = 10.0
"""Tick rate before the checkpoint's control rate is known (status only; nothing is commanded)."""
FAULT_KINDS = ("server", "checkpoint", "input", "executor", "limits", "internal")
"""The kinds of hold counted in /diagnostics (``holds_<kind>``): a fixed set, whatever the fault texts say."""


class ConfigError(Exception):
    """Parameters the node cannot run with (reported as one line; the node exits with status 2)."""


def read_safety_file(path: str) -> SafetyConfig:
    """The :class:`SafetyConfig` in the YAML file ``path`` (unknown keys and bad values: one line)."""
    import yaml  # ROS 2 ships PyYAML (python3-yaml); the light client itself never imports it

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"safety_file {path}: {exc}".splitlines()[0]) from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"safety_file {path}: expected a mapping of SafetyConfig settings")
    return SafetyConfig.from_dict(raw, path)


def connect_to_server(url: str, token: str | None):
    """The light websocket client (:class:`manip.real.client.connection.PolicyClient`), connected; raises when unreachable."""
    from manip.real.client.connection import PolicyClient

    client = PolicyClient(url, token=token)
    client.connect()
    return client


def same_fault(a: str, b: str) -> bool:
    """Whether two fault texts are the same fault (a changing age, "0.31 s old", does not make a new one)."""
    ages = re.compile(r"\d+\.\d+ s\b")
    return ages.sub("# s", a) == ages.sub("# s", b)


def executor_mode_settings(mode: str) -> dict:
    """ExecutorConfig settings for the node's ``executor_mode`` on a wall clock.

    ``receding`` keeps its meaning (``n_action_steps`` of each chunk, then the next chunk) but the next chunk is
    requested ahead — the measured latency plus one tick before the switch, as ``async`` does — so the robot
    never stops between chunks; only a chunk later than the rest of the current one is a fault.
    """
    if mode == "receding":
        return {"mode": "async", "request_margin_steps": 1.0}
    return {"mode": mode}


class PolicyNode(Node):
    """The policy node; see the module docstring."""

    def __init__(self, connect=connect_to_server):
        super().__init__("policy_node")
        try:
            self.params = p = declare_params(self, PolicyNodeParams)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        problems = p.problems()
        if problems:
            raise ConfigError("; ".join(problems))
        try:
            token = read_token(p.token_file or None)  # the file, else MANIP_SERVER_TOKEN, else none
            self.file_safety = (
                read_safety_file(p.safety_file)
                if p.safety_file
                else SafetyConfig(hold="repeat", max_obs_age_s=None)
            )
            sources = (
                read_observation_map(p.observation_map_file)
                if p.observation_map_file
                else sources_from_params(
                    p.camera_keys,
                    p.camera_topics,
                    p.joint_state_topic,
                    p.joint_names,
                    p.joint_state_key,
                    compressed=p.camera_transport == "compressed",
                )
            )
        except (ManipError, MapError) as exc:
            raise ConfigError(str(exc)) from None
        self.rate = p.control_rate_hz or IDLE_RATE_HZ
        self.dt = 1.0 / self.rate
        self.enabled = False
        self.chunk_executor: ChunkExecutor | None = None
        self.history: ObsHistory | None = None
        self.metadata = None
        self.connected = False
        self.space = ""
        self.layout_fault = ""
        self.limits = self._file_limits()
        self.fault = ""
        self.was_held = True
        self.stats: Counter = Counter()
        self.round_trips: deque[float] = deque(maxlen=200)
        self.tick_times: deque[float] = deque(maxlen=200)
        self.command_times: deque[float] = deque(maxlen=1000)

        self.assembler = ObservationAssembler(sources, *self._age_limits())
        subscribe_inputs(self, self.assembler)
        command_type = JointTrajectory if p.command_interface == "joint_trajectory" else PoseStamped
        self.command_pub = self.create_publisher(command_type, p.command_topic, 10)
        self.preview_pub = self.create_publisher(command_type, "~/preview", 10)
        self.gripper_pub = self.create_publisher(Float64, p.gripper_topic, 10)
        self.gripper_preview_pub = self.create_publisher(Float64, "~/preview_gripper", 10)
        self.chunk_pub = self.create_publisher(Float32MultiArray, "~/chunk", 10)
        self.status_pub = self.create_publisher(DiagnosticStatus, "~/status", 10)
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(SetBool, "~/enable", self._on_enable)
        self.create_service(Trigger, "~/reset", self._on_reset)

        self.requester = AsyncRequester(lambda: connect(p.server_url, token), p.reconnect_interval_s)
        self.timer = self.create_timer(self.dt, self._tick)
        self.create_timer(p.diagnostics_period_s, self._publish_diagnostics)
        mode = "dry run (preview only)" if p.dry_run else "actuation allowed after ~/enable"
        rate = f"{p.control_rate_hz:g} Hz" if p.control_rate_hz else "the checkpoint's rate"
        inputs = p.observation_map_file or "camera_topics / joint_state_topic"
        self.get_logger().info(
            f"policy node: {p.server_url}, {rate}, inputs from {inputs}, {p.command_interface} on "
            f"{p.command_topic}, {mode}"
        )

    # -- set-up -----------------------------------------------------------------------------------------------
    def _age_limits(self) -> tuple[float, float]:
        p, default = self.params, STALE_PERIODS * self.dt
        return p.max_frame_age_s or default, p.max_state_age_s or default

    def _file_limits(self) -> str:
        """'' until a checkpoint is adopted unless the safety file has low and high; then a description."""
        if self.file_safety.low is not None and self.file_safety.high is not None:
            return f"safety_file {self.params.safety_file}"
        return ""

    def _check_checkpoint(self, metadata) -> str:
        """The space the node executes; raises ConfigError when the checkpoint does not fit the parameters."""
        p = self.params
        space, problem = semantics.action_space(p.command_interface, metadata.action)
        if problem and not p.allow_action_mismatch:
            raise ConfigError(problem)
        if problem:
            self.get_logger().warning(f"allow_action_mismatch: {problem}")
            space = semantics.ASSUMED[p.command_interface]
        problem = semantics.rate_problem(p.control_rate_hz, metadata.control_rate)
        if problem and not p.allow_rate_mismatch:
            raise ConfigError(problem)
        if problem:
            self.get_logger().warning(f"allow_rate_mismatch: {problem}")
        if space == "ee_delta":
            _sample, fault = self.assembler.current_pose(0.0)
            if fault.startswith("delta actions"):
                raise ConfigError(f"{fault}: add the end-effector pose (type: pose) to observation_map_file")
        return space

    def _adopt(self, metadata) -> None:
        """First contact (or a reconnect): check the checkpoint, size the executor, history and limits."""
        p = self.params
        if self.metadata is not None and metadata.checkpoint_id != self.metadata.checkpoint_id:
            self._disable(f"the server now serves another checkpoint ({metadata.checkpoint_id})")
        self.space = self._check_checkpoint(metadata)
        self.rate = p.control_rate_hz or metadata.control_rate
        self.dt = 1.0 / self.rate
        self.timer.timer_period_ns = round(self.dt * 1e9)
        self.assembler.max_frame_age_s, self.assembler.max_state_age_s = self._age_limits()
        safety = self._safety_for(metadata)
        config = executor_config_for(
            metadata,
            control_rate=self.rate,
            request_timeout_s=p.request_timeout_s,
            safety=safety,
            **executor_mode_settings(p.executor_mode),
        )
        self.chunk_executor = ChunkExecutor(config, action_dim=metadata.action_dim)
        unfed = self.assembler.set_needs(metadata.obs_spec)
        self.history = ObsHistory(metadata.n_obs_steps, keys=list(self.assembler.needs))
        self.metadata = metadata
        n_joints = len(p.commanded_joints)
        self.layout_fault = "; ".join(
            [*unfed, commands.layout_problem(p.command_interface, metadata.action_dim, n_joints)]
        ).strip("; ")
        self.get_logger().info(
            f"connected: policy '{metadata.policy_type}' {metadata.checkpoint_id}, horizon {metadata.horizon}, "
            f"{metadata.n_obs_steps} obs step(s), action dim {metadata.action_dim} ({self.space}), "
            f"{self.rate:g} Hz, inputs stale after {self.assembler.max_frame_age_s:.3g} s (images) / "
            f"{self.assembler.max_state_age_s:.3g} s (state)"
        )

    def _safety_for(self, metadata) -> SafetyConfig:
        """The safety file's settings, with limits from the checkpoint's action range when the file sets none."""
        if self.limits.startswith("safety_file"):
            self.get_logger().info(f"safety: limits from {self.limits}")
            return self.file_safety
        derived = semantics.default_limits(metadata.action_stats, metadata.action_dim)
        if derived is None:
            self.limits = ""
            self._disable("no safety limits")
            self.get_logger().warning(
                "safety: no low/high in safety_file and the checkpoint records no action statistics: actuation "
                "is refused (set low/high in safety_file); the dry-run preview works"
            )
            return self.file_safety
        low, high = derived
        self.limits = "the checkpoint's action range (+10%)"
        self.get_logger().info(
            f"safety: no low/high in safety_file; clamping every action to {self.limits}: "
            f"low {np.round(low, 4).tolist()}, high {np.round(high, 4).tolist()}"
        )
        return dataclasses.replace(self.file_safety, low=low, high=high)

    # -- the control tick -------------------------------------------------------------------------------------
    def _tick(self) -> None:
        try:
            self._control_step()
        except ConfigError:
            raise  # the checkpoint does not fit: the node ends with one line
        except Exception as exc:  # a bug must not kill the node mid-motion: hold, say why, keep ticking
            self._report("internal", f"internal error: {type(exc).__name__}: {exc}")
            self._hold()

    def _control_step(self) -> None:
        t = now_seconds(self)
        self.tick_times.append(time.monotonic())
        self.stats["ticks"] += 1
        self._collect_replies(t)
        kind, fault = self._fault_before_acting(t)
        message = None
        if not fault:
            decided = self.chunk_executor.act(t)
            if decided.held and decided.reason == WAITING:  # adaptive, waiting on purpose for a slow chunk
                self._report("", "", waiting=True)
                self._hold(stop=False)
                return
            if decided.held:
                kind, fault = "executor", f"executor holds: {decided.reason}"
            else:
                message, fault = self._target(decided.action, t)
                kind = "input" if fault else ""
        self._report(kind, fault)
        if message is None:
            self._hold()
        else:
            self._command(*message)

    def _collect_replies(self, t: float) -> None:
        while (reply := self.requester.poll()) is not None:
            if self.chunk_executor is None:
                continue
            if reply.error:
                self.chunk_executor.request_failed()
                self._disable("the policy server failed")
                self.connected = False
                continue
            self.round_trips.append(reply.round_trip_s)
            try:
                self.chunk_executor.push_chunk(reply.chunk, reply.t_obs, t_received=t)
            except Exception as exc:  # a malformed chunk is a fault like any other
                self.stats["bad_chunks"] += 1
                self.get_logger().error(f"bad chunk from the server: {exc}")
                continue
            self.chunk_pub.publish(commands.chunk_array(reply.chunk))

    def _fault_before_acting(self, t: float) -> tuple[str, str]:
        """Assemble the observation and request a chunk if due; return ``(kind, why the node must hold)``."""
        lost = self.requester.check_alive()
        if lost:
            if self.connected:  # a connection that was serving went away: never resume by ourselves
                self._disable("lost the policy server")
            self.connected = False
            return "server", lost
        self.connected = True
        metadata = self.requester.metadata
        if metadata is not self.metadata:
            self._adopt(metadata)
        if self.layout_fault:
            return "checkpoint", self.layout_fault
        obs, fault = self.assembler.assemble(t)
        if fault:
            self.history.reset()
            return "input", fault
        self.history.push(obs)
        if self.chunk_executor.needs_chunk(t) and not self.requester.busy:
            prefix = self.chunk_executor.rtc_prefix(t) if self.params.executor_mode == "rtc" else None
            if self.requester.submit(self.history.window(), t, prefix):
                self.chunk_executor.request_sent(t)
        return "", ""

    def _target(self, action: np.ndarray, t: float):
        """``((command message, gripper value or None), '')`` for ``action``, or ``(None, fault)``."""
        p = self.params
        arm, gripper = commands.split_action(action, p.command_interface, len(p.commanded_joints))
        if p.command_interface == "joint_trajectory":
            if self.space == "joint_delta":
                current, fault = self.assembler.current_joints(p.commanded_joints, t)
                if fault:
                    return None, fault
                arm = current + arm
            return (commands.joint_trajectory(p.commanded_joints, arm, self.dt), gripper), ""
        stamp = self.get_clock().now().to_msg()
        if self.space == "ee_delta":
            pose, fault = self.assembler.current_pose(t)
            if fault:
                return None, fault
            scales = self.metadata.action
            position, quaternion = semantics.delta_target(
                pose.value[:3],
                pose.value[3:],
                arm,
                float(scales.get("position_scale", 0.05)),
                float(scales.get("rotation_scale", 0.5)),
            )
            msg = commands.pose_stamped(position, quaternion, pose.frame_id or p.frame_id, stamp)
        else:
            msg = commands.pose_stamped(
                arm[:3], semantics.axis_angle_to_quaternion(arm[3:6]), p.frame_id, stamp
            )
        return (msg, gripper), ""

    def _report(self, kind: str, fault: str, waiting: bool = False) -> None:
        """Log a fault once when it starts (and once when it clears); publish this tick's status."""
        if not same_fault(fault, self.fault):
            if fault:
                self.get_logger().warning(f"holding: {fault}")
            else:
                self.get_logger().info(f"fault cleared: {self._state()}")
        self.fault = fault
        if fault:
            self.stats["holds"] += 1
            self.stats[f"holds_{kind}"] += 1
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if fault else DiagnosticStatus.OK,
            name="policy_node",
            message=fault or ("waiting for the next chunk" if waiting else self._state()),
            hardware_id=self.params.server_url,
        )
        status.values = [
            KeyValue(key="held", value=str(bool(fault)).lower()),
            KeyValue(key="actuating", value=str(self._actuating).lower()),
            KeyValue(key="dry_run", value=str(self.params.dry_run).lower()),
        ]
        self.status_pub.publish(status)

    def _state(self) -> str:
        """What the node does with the policy's actions when nothing is wrong."""
        if self.params.dry_run:
            return "previewing (dry run: nothing is commanded)"
        if not self.enabled:
            return "ready: previewing until ~/enable"
        return "executing"

    @property
    def _actuating(self) -> bool:
        return self.enabled and not self.params.dry_run

    def _command(self, msg, gripper: float | None) -> None:
        self.preview_pub.publish(msg)
        if gripper is not None:
            self.gripper_preview_pub.publish(Float64(data=gripper))
        if self._actuating:
            if gripper is not None:  # first: a robot stepping on the arm command has the gripper's too
                self.gripper_pub.publish(Float64(data=gripper))
            self.command_pub.publish(msg)
            self.stats["commands"] += 1
            self.command_times.append(time.monotonic())
        self.was_held = False

    def _hold(self, stop: bool = True) -> None:
        """Command nothing new; on entering a hold, stop a JointTrajectoryController where it is."""
        if (
            stop
            and not self.was_held
            and self._actuating
            and self.params.command_interface == "joint_trajectory"
        ):
            self.command_pub.publish(commands.stop_trajectory(self.params.commanded_joints))
            self.stats["stop_trajectories"] += 1
        self.was_held = self.was_held or stop

    def _disable(self, why: str) -> None:
        """Stop actuating until the next ``~/enable`` (the server went away, or the checkpoint changed)."""
        if self.enabled:
            self.enabled = False
            self.get_logger().warning(f"actuation disabled: {why}; call ~/enable to resume")

    # -- services ---------------------------------------------------------------------------------------------
    def _on_enable(self, request, response):
        refusal = ""
        if request.data and self.params.dry_run:
            refusal = "dry_run is true: relaunch with dry_run:=false to actuate"
        elif request.data and not self.limits:
            refusal = (
                "no safety limits yet: not connected to a checkpoint"
                if self.metadata is None
                else "no safety limits: set low/high in safety_file (the checkpoint records no action statistics)"
            )
        if refusal:
            response.success, response.message = False, refusal
            return response
        if not request.data and self._actuating:
            self._hold()
            self.was_held = True
        self.enabled = bool(request.data)
        response.success = True
        response.message = "actuation enabled" if self.enabled else "actuation disabled"
        self.get_logger().info(response.message)
        return response

    def _on_reset(self, _request, response):
        if self.chunk_executor is not None:
            self.chunk_executor.reset()
            self.history.reset()
        response.success = True
        response.message = "executor and observation history cleared"
        self.get_logger().info(response.message)
        return response

    # -- diagnostics ------------------------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        window = max(1.0, self.params.diagnostics_period_s)
        now = time.monotonic()
        ticks = list(self.tick_times)
        tick_rate = (
            (len(ticks) - 1) / (ticks[-1] - ticks[0]) if len(ticks) > 1 and ticks[-1] > ticks[0] else 0.0
        )
        command_rate = sum(1 for c in self.command_times if now - c <= window) / window
        rtt = np.array(self.round_trips) * 1e3 if self.round_trips else np.zeros(1)
        values = {
            "command_rate_hz": f"{command_rate:.2f}",
            "tick_rate_hz": f"{tick_rate:.2f}",
            "target_rate_hz": f"{self.rate:g}"
            if self.metadata is not None or self.params.control_rate_hz
            else "",
            "latency_p50_ms": f"{np.percentile(rtt, 50):.1f}",
            "latency_p99_ms": f"{np.percentile(rtt, 99):.1f}",
            "actuating": str(self._actuating).lower(),
            "dry_run": str(self.params.dry_run).lower(),
            "limits": self.limits or "none",
            "checkpoint_id": self.metadata.checkpoint_id if self.metadata is not None else "",
            "last_fault": self.fault,
            **{
                key: str(self.stats[key])
                for key in ("ticks", "commands", "stop_trajectories", "holds", "bad_chunks")
            },
            **{f"holds_{kind}": str(self.stats[f"holds_{kind}"]) for kind in FAULT_KINDS},
        }
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if self.fault else DiagnosticStatus.OK,
            name="manip/policy_node",
            message=self.fault or self._state(),
            hardware_id=self.params.server_url,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(array)

    def destroy_node(self):
        requester = getattr(self, "requester", None)  # absent when the parameters were refused
        if requester is not None:
            requester.close()
        return super().destroy_node()


def main(args=None) -> int:
    """Entry point (``ros2 run real policy_node``)."""
    return run_node(
        "policy_node", PolicyNode, startup_errors=(ConfigError,), args=args, refusals=(ConfigError,)
    )


if __name__ == "__main__":
    sys.exit(main())
