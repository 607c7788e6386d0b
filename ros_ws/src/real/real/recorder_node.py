"""``recorder_node``: record demonstrations on the robot into a Zarr episode store (:class:`manip.data.recorder.Recorder`).

At ``record_rate_hz`` while recording, one step is taken from the newest messages: every key of the
observation map (``observation_map_file``, the same file policy_node reads, so what is recorded is what a
checkpoint trained on it is served; without one, ``camera_keys`` and ``joint_state_key``), the action (the newest
``JointTrajectory`` on ``action_topic``: its first point, plus the newest ``std_msgs/Float64`` on
``gripper_topic`` when one has been heard), the intervention flag (``std_msgs/Bool`` on ``intervention_topic``)
and the step's time (``timestamp``, seconds). A tick whose inputs are missing or stale is skipped and counted,
never recorded half. The store records what its actions mean (attributes ``control_rate`` = ``record_rate_hz``,
``action_semantics`` = joint positions) and the observation map, so training copies them into the checkpoint.

Services: ``~/start`` (std_srvs/Trigger), ``~/stop`` (std_srvs/SetBool: ``data`` is the success label; commits
the episode), ``~/discard`` (std_srvs/Trigger). ``~/status`` (diagnostic_msgs/DiagnosticStatus) says what it is
doing once per step. Nothing of an episode is visible in the store before ``~/stop``.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from rclpy.node import Node
from std_msgs.msg import Bool, Float64
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from real.entry import run_node
from real.inputs import now_seconds, subscribe_inputs
from real.observation import ObservationAssembler
from real.observation_map import read_observation_map, sources_from_params
from real.params import RecorderNodeParams, declare_params


def open_store(path: str):
    """The episode store at ``path``, created when it does not exist."""
    from manip.data.store import EpisodeStore

    return EpisodeStore.open(path, mode="a") if Path(path).exists() else EpisodeStore.create(path)


JOINT_POSITION_ACTIONS = {
    "space": "joint_position",
    "gripper": "last dim when gripper_topic was heard (its std_msgs/Float64 value)",
}


def record_semantics(store, rate_hz: float, sources: dict) -> None:
    """Record in ``store`` what its steps mean (rate, action space, observation map); refuse to mix rates."""
    recorded = store.attrs.get("control_rate")
    if store.num_episodes and recorded and abs(float(recorded) - rate_hz) > 1e-6:
        raise ValueError(
            f"{store.path} was recorded at {recorded:g} Hz; record_rate_hz {rate_hz:g} would mix rates "
            "(use another store_path or the same rate)"
        )
    store.set_attrs(
        control_rate=float(rate_hz),
        action_semantics=JOINT_POSITION_ACTIONS,
        observation_map={
            key: {
                k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(source).items()
                if k != "key" and v not in ("", (), None)
            }
            for key, source in sources.items()
        },
    )


class RecorderNode(Node):
    """The recorder node; see the module docstring."""

    def __init__(self):
        super().__init__("recorder_node")
        from manip.data.recorder import Recorder

        self.params = p = declare_params(self, RecorderNodeParams)
        if p.record_rate_hz <= 0:
            raise ValueError(f"record_rate_hz must be > 0, got {p.record_rate_hz}")
        if len(p.camera_topics) != len(p.camera_keys):
            raise ValueError("camera_topics and camera_keys must have the same length")
        sources = (
            read_observation_map(p.observation_map_file)
            if p.observation_map_file
            else sources_from_params(
                p.camera_keys, p.camera_topics, p.joint_state_topic, p.joint_names, p.joint_state_key
            )
        )
        self.store = open_store(p.store_path)
        record_semantics(self.store, p.record_rate_hz, sources)
        self.recorder = Recorder(self.store)
        self.assembler = ObservationAssembler(sources, p.max_frame_age_s, p.max_frame_age_s)
        subscribe_inputs(self, self.assembler)
        self.action: np.ndarray | None = None
        self.gripper: float | None = None
        self.intervention = False
        self.create_subscription(JointTrajectory, p.action_topic, self._on_action, 10)
        self.create_subscription(Float64, p.gripper_topic, self._on_gripper, 10)
        self.create_subscription(Bool, p.intervention_topic, self._on_intervention, 10)
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(SetBool, "~/stop", self._on_stop)
        self.create_service(Trigger, "~/discard", self._on_discard)
        self.status_pub = self.create_publisher(DiagnosticStatus, "~/status", 10)
        self.skipped: Counter = Counter()
        self.last_problem = ""
        self.create_timer(1.0 / p.record_rate_hz, self._tick)
        self.get_logger().info(
            f"recorder: {p.store_path} ({self.store.num_episodes} episodes), {p.record_rate_hz:g} Hz; "
            "call ~/start, then ~/stop (data: success) or ~/discard"
        )

    # -- inputs -----------------------------------------------------------------------------------------------
    def _on_action(self, msg: JointTrajectory) -> None:
        if msg.points:  # an empty trajectory is a stop, not an action
            self.action = np.asarray(msg.points[0].positions, dtype=np.float32)

    def _on_gripper(self, msg: Float64) -> None:
        self.gripper = float(msg.data)

    def _on_intervention(self, msg: Bool) -> None:
        self.intervention = bool(msg.data)

    # -- recording --------------------------------------------------------------------------------------------
    def _step(self, t: float) -> tuple[dict | None, str]:
        step = {}
        for key, source in self.assembler.sources.items():
            value, problem = self.assembler.fresh(key, t)
            if problem:
                return None, problem
            step[key] = value if source.is_frame else value.astype(np.float32)
        if self.action is None:
            return None, f"no action on {self.params.action_topic} yet"
        action = self.action if self.gripper is None else np.append(self.action, np.float32(self.gripper))
        step["action"] = action.astype(np.float32)
        step["timestamp"] = np.float64(t)
        return step, ""

    def _tick(self) -> None:
        if not self.recorder.recording:
            self._status("idle")
            return
        t = now_seconds(self)
        step, problem = self._step(t)
        if problem:
            kind = re.sub(r"\d+(\.\d+)?", "#", problem)
            self.skipped[kind] += 1
            if kind != self.last_problem:
                self.get_logger().warning(f"skipping steps: {problem}")
            self.last_problem = kind
            self._status(f"skipping: {problem}", DiagnosticStatus.WARN)
            return
        self.last_problem = ""
        try:
            self.recorder.add_step(step, intervention=self.intervention)
        except Exception as exc:  # e.g. a camera changed resolution mid-episode: say so, keep the node alive
            self.skipped[str(exc)] += 1
            self._status(f"skipping: {exc}", DiagnosticStatus.WARN)
            return
        self._status("recording")

    def _status(self, message: str, level=DiagnosticStatus.OK) -> None:
        status = DiagnosticStatus(level=level, name="manip/recorder_node", message=message)
        status.values = [
            KeyValue(key="recording", value=str(self.recorder.recording).lower()),
            KeyValue(key="steps", value=str(self.recorder.num_steps)),
            KeyValue(key="episodes", value=str(self.store.num_episodes)),
            KeyValue(key="skipped", value=str(sum(self.skipped.values()))),
        ]
        self.status_pub.publish(status)

    # -- services ---------------------------------------------------------------------------------------------
    def _on_start(self, _request, response):
        if self.recorder.recording:
            response.success, response.message = False, "already recording: ~/stop or ~/discard first"
            return response
        p = self.params
        self.recorder.start_episode(task=p.task, instruction=p.instruction, source="ros:recorder_node")
        self.skipped.clear()
        response.success, response.message = True, f"recording episode {self.store.num_episodes}"
        self.get_logger().info(response.message)
        return response

    def _on_stop(self, request, response):
        if not self.recorder.recording:
            response.success, response.message = False, "not recording"
            return response
        if self.recorder.num_steps == 0:
            self.recorder.discard()
            response.success, response.message = False, "no step was recorded; episode discarded"
            return response
        steps = self.recorder.num_steps
        index = self.recorder.commit(
            success=bool(request.data), skipped_steps=int(sum(self.skipped.values()))
        )
        response.success = True
        response.message = f"episode {index} committed: {steps} steps, success={bool(request.data)}"
        self.get_logger().info(response.message)
        return response

    def _on_discard(self, _request, response):
        was = self.recorder.recording
        self.recorder.discard()
        response.success, response.message = was, "episode discarded" if was else "not recording"
        return response

    def destroy_node(self):
        recorder = getattr(self, "recorder", None)
        if recorder is not None and recorder.recording:
            recorder.discard()  # an unfinished episode never lands in the store
            self.get_logger().warning("stopped while recording: the open episode was discarded")
        return super().destroy_node()


def main(args=None) -> int:
    """Entry point (``ros2 run real recorder_node``)."""
    return run_node("recorder_node", RecorderNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
