"""``policy_node``: cameras + /joint_states → policy server → ChunkExecutor → robot commands, at control rate.

A thin adapter: the observation comes from :class:`real.observation.ObservationAssembler`, chunks from the
light websocket client (:mod:`manip.real.client.connection`) on a worker thread (:class:`real.requester.AsyncRequester`, so
the control tick never blocks), and one safe action per tick from :class:`manip.real.client.executor.ChunkExecutor`.

Topics (``~`` is the node's namespace):
- in: ``camera_topics`` (sensor_msgs/Image or CompressedImage), ``joint_state_topic`` (sensor_msgs/JointState),
  all with sensor-data QoS;
- out: ``command_topic`` (trajectory_msgs/JointTrajectory or geometry_msgs/PoseStamped) and ``gripper_topic``
  (std_msgs/Float64) only while actuating (``dry_run`` false and enabled); ``~/preview`` (the same message, always);
  ``~/chunk`` (std_msgs/Float32MultiArray, the newest chunk); ``~/status`` (diagnostic_msgs/DiagnosticStatus,
  every tick: held or not and why); ``/diagnostics`` (diagnostic_msgs/DiagnosticArray: rate, latency, holds).
- services: ``~/enable`` (std_srvs/SetBool: start/stop actuation), ``~/reset`` (std_srvs/Trigger).

Any fault — server unreachable or gone, protocol mismatch, stale or missing camera, wrong encoding, joint names
that do not match, NaN — makes the node hold (commands nothing new; a JointTrajectoryController gets one empty
trajectory, which stops it where it is) and log one line when the fault starts and when it clears.
"""

from __future__ import annotations

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
from manip.real.client.executor import ChunkExecutor
from manip.real.client.loop import ObsHistory, executor_config_for
from manip.real.client.safety import SafetyConfig
from real import commands
from real.entry import run_node
from real.inputs import now_seconds, subscribe_inputs
from real.observation import ObservationAssembler
from real.params import PolicyNodeParams, declare_params
from real.requester import AsyncRequester


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


def fault_kind(reason: str) -> str:
    """A fault's text without its numbers, so a changing age does not count as a new fault in the log."""
    return re.sub(r"\d+(\.\d+)?", "#", reason)


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
            self.safety = (
                read_safety_file(p.safety_file)
                if p.safety_file
                else SafetyConfig(hold="repeat", max_obs_age_s=None)
            )
        except ManipError as exc:
            raise ConfigError(str(exc)) from None
        self.dt = 1.0 / p.control_rate_hz
        self.enabled = False
        self.chunk_executor: ChunkExecutor | None = None
        self.history: ObsHistory | None = None
        self.metadata = None
        self.layout_fault = ""
        self.fault = ""
        self.was_held = True
        self.stats: Counter = Counter()
        self.round_trips: deque[float] = deque(maxlen=200)
        self.tick_times: deque[float] = deque(maxlen=200)

        self.assembler = ObservationAssembler(
            dict(zip(p.camera_keys, p.camera_topics, strict=True)),
            p.joint_state_topic,
            list(p.joint_names),
            p.joint_state_key,
            p.max_frame_age_s,
            p.max_state_age_s,
        )
        subscribe_inputs(self, self.assembler, p.camera_transport)
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
        self.create_timer(self.dt, self._tick)
        self.create_timer(p.diagnostics_period_s, self._publish_diagnostics)
        mode = "dry run (preview only)" if p.dry_run else "actuation allowed after ~/enable"
        self.get_logger().info(
            f"policy node: {p.server_url}, {p.control_rate_hz:g} Hz, {p.command_interface} on {p.command_topic}, {mode}"
        )

    # -- set-up -----------------------------------------------------------------------------------------------
    def _adopt(self, metadata) -> None:
        """First contact (or a reconnect to another policy): size the executor and the observation history."""
        p = self.params
        config = executor_config_for(
            metadata,
            mode=p.executor_mode,
            control_rate=p.control_rate_hz,
            request_timeout_s=p.request_timeout_s,
            safety=self.safety,
        )
        self.chunk_executor = ChunkExecutor(config, action_dim=metadata.action_dim)
        unfed = self.assembler.set_needs(metadata.obs_spec)
        self.history = ObsHistory(metadata.n_obs_steps, keys=list(self.assembler.needs))
        self.metadata = metadata
        self.layout_fault = "; ".join(
            [
                *unfed,
                commands.layout_problem(p.command_interface, metadata.action_dim, len(p.commanded_joints)),
            ]
        ).strip("; ")
        if abs(metadata.control_rate - p.control_rate_hz) > 1e-6:
            self.get_logger().warning(
                f"the policy was trained at {metadata.control_rate:g} Hz; this node runs at {p.control_rate_hz:g} Hz"
            )
        self.get_logger().info(
            f"connected: policy '{metadata.policy_type}' {metadata.checkpoint_id}, horizon {metadata.horizon}, "
            f"{metadata.n_obs_steps} obs step(s), action dim {metadata.action_dim}"
        )

    # -- the control tick -------------------------------------------------------------------------------------
    def _tick(self) -> None:
        try:
            self._control_step()
        except Exception as exc:  # a bug must not kill the node mid-motion: hold, say why, keep ticking
            self._report(f"internal error: {type(exc).__name__}: {exc}")
            self._hold()

    def _control_step(self) -> None:
        t = now_seconds(self)
        self.tick_times.append(time.monotonic())
        self.stats["ticks"] += 1
        self._collect_replies(t)
        fault = self._fault_before_acting(t)
        action = None
        if not fault:
            decided = self.chunk_executor.act(t)
            if decided.held:
                fault = f"executor holds: {decided.reason}"
            else:
                action = decided.action
        self._report(fault)
        if action is None:
            self._hold()
        else:
            self._command(action)

    def _collect_replies(self, t: float) -> None:
        while (reply := self.requester.poll()) is not None:
            if self.chunk_executor is None:
                continue
            if reply.error:
                self.chunk_executor.request_failed()
                continue
            self.round_trips.append(reply.round_trip_s)
            try:
                self.chunk_executor.push_chunk(reply.chunk, reply.t_obs, t_received=t)
            except Exception as exc:  # a malformed chunk is a fault like any other
                self.stats["bad chunks"] += 1
                self.get_logger().error(f"bad chunk from the server: {exc}")
                continue
            self.chunk_pub.publish(commands.chunk_array(reply.chunk))

    def _fault_before_acting(self, t: float) -> str:
        """Assemble the observation and request a chunk if due; return why the node must hold ('' if not)."""
        lost = self.requester.check_alive()
        if lost:
            return lost
        metadata = self.requester.metadata
        if metadata is not self.metadata:
            self._adopt(metadata)
        if self.layout_fault:
            return self.layout_fault
        obs, fault = self.assembler.assemble(t)
        if fault:
            self.history.reset()
            return fault
        self.history.push(obs)
        if self.chunk_executor.needs_chunk(t) and not self.requester.busy:
            prefix = self.chunk_executor.rtc_prefix(t) if self.params.executor_mode == "rtc" else None
            if self.requester.submit(self.history.window(), t, prefix):
                self.chunk_executor.request_sent(t)
        return ""

    def _report(self, fault: str) -> None:
        """Log a fault once when it starts (and once when it clears); publish this tick's status."""
        if fault_kind(fault) != fault_kind(self.fault):
            if fault:
                self.get_logger().warning(f"holding: {fault}")
            else:
                self.get_logger().info("fault cleared: executing the policy's actions")
        self.fault = fault
        if fault:
            self.stats["holds"] += 1
            self.stats[f"hold: {fault_kind(fault)}"] += 1
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if fault else DiagnosticStatus.OK,
            name="policy_node",
            message=fault or "executing",
            hardware_id=self.params.server_url,
        )
        status.values = [
            KeyValue(key="held", value=str(bool(fault)).lower()),
            KeyValue(key="actuating", value=str(self._actuating).lower()),
            KeyValue(key="dry_run", value=str(self.params.dry_run).lower()),
        ]
        self.status_pub.publish(status)

    @property
    def _actuating(self) -> bool:
        return self.enabled and not self.params.dry_run

    def _command(self, action: np.ndarray) -> None:
        p = self.params
        arm, gripper = commands.split_action(action, p.command_interface, len(p.commanded_joints))
        if p.command_interface == "joint_trajectory":
            msg = commands.joint_trajectory(p.commanded_joints, arm, self.dt)
        else:
            msg = commands.pose_stamped(arm, p.frame_id, self.get_clock().now().to_msg())
        self.preview_pub.publish(msg)
        if gripper is not None:
            self.gripper_preview_pub.publish(Float64(data=gripper))
        if self._actuating:
            self.command_pub.publish(msg)
            if gripper is not None:
                self.gripper_pub.publish(Float64(data=gripper))
            self.stats["commands"] += 1
        self.was_held = False

    def _hold(self) -> None:
        """Command nothing new; on entering a hold, stop a JointTrajectoryController where it is."""
        if not self.was_held and self._actuating and self.params.command_interface == "joint_trajectory":
            self.command_pub.publish(commands.stop_trajectory(self.params.commanded_joints))
        self.was_held = True

    # -- services ---------------------------------------------------------------------------------------------
    def _on_enable(self, request, response):
        if request.data and self.params.dry_run:
            response.success = False
            response.message = "dry_run is true: relaunch with dry_run:=false to actuate"
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
        ticks = list(self.tick_times)
        rate = (len(ticks) - 1) / (ticks[-1] - ticks[0]) if len(ticks) > 1 and ticks[-1] > ticks[0] else 0.0
        rtt = np.array(self.round_trips) * 1e3 if self.round_trips else np.zeros(1)
        values = {
            "rate_hz": f"{rate:.2f}",
            "target_rate_hz": f"{self.params.control_rate_hz:g}",
            "latency_p50_ms": f"{np.percentile(rtt, 50):.1f}",
            "latency_p99_ms": f"{np.percentile(rtt, 99):.1f}",
            "actuating": str(self._actuating).lower(),
            "dry_run": str(self.params.dry_run).lower(),
            "last_fault": self.fault,
            **{key: str(count) for key, count in sorted(self.stats.items())},
        }
        status = DiagnosticStatus(
            level=DiagnosticStatus.WARN if self.fault else DiagnosticStatus.OK,
            name="manip/policy_node",
            message=self.fault or "executing",
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
    return run_node("policy_node", PolicyNode, startup_errors=(ConfigError,), args=args)


if __name__ == "__main__":
    sys.exit(main())
