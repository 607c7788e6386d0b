"""Drive episodes on ``sim_robot`` over ROS 2 (what ``manip eval --ros`` and the recording recipe run).

For each seed: set ``sim_robot``'s ``seed`` parameter, call ``/sim_robot/reset`` (and the policy node's
``~/reset``), start the recorder (``~/start``) when one is named, enable the actor (``/policy_node/enable``, or
``/sim_robot/expert`` for the scripted expert), wait until ``/sim_robot/status`` says the episode is done
(``/task_success`` or the horizon), disable the actor and stop the recorder with the success label.

Run with the ROS Python: ``python -m real.episode_driver '<json>'`` where the JSON object has ``seeds``,
``enable_service`` and optionally ``robot`` (default ``/sim_robot``), ``policy`` (a policy node's name, e.g.
``/policy_node``; its status and diagnostics are counted), ``recorder`` (e.g. ``/recorder_node``),
``episode_timeout_s`` and ``start_timeout_s``. It prints one JSON object per line: ``{"ready": ...}``, then
one per episode (seed, success, steps, commands and stops counted at the robot, achieved command rate, held
and actuating policy ticks, policy latency), then ``{"finished": true}``; a line with ``error`` ends the run.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from std_srvs.srv import SetBool, Trigger


def say(**fields) -> None:
    print(json.dumps(fields), flush=True)


class DriverError(Exception):
    """A service that did not answer, or an episode that could not start (one line)."""


class EpisodeDriver(Node):
    """Service clients and status subscriptions for one run; see the module docstring."""

    def __init__(self, config: dict):
        super().__init__("episode_driver")
        self.config = config
        self.lock = threading.Lock()
        self.robot = config.get("robot", "/sim_robot")
        self.policy = config.get("policy", "")
        self.recorder = config.get("recorder", "")
        self.robot_status: dict[str, str] = {}
        self.policy_status: tuple[bool, bool, str] | None = None  # held, actuating, message
        self.diagnostics: dict[str, str] = {}
        self.ticks = {"held": 0, "actuating": 0}
        self.create_subscription(DiagnosticStatus, f"{self.robot}/status", self._on_robot_status, 50)
        if self.policy:
            self.create_subscription(DiagnosticStatus, f"{self.policy}/status", self._on_policy_status, 50)
            self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.set_params = self.create_client(SetParameters, f"{self.robot}/set_parameters")
        self.enable = self.create_client(SetBool, config["enable_service"])
        self.triggers: dict[str, object] = {}

    # -- inputs -------------------------------------------------------------------------------------------------
    def _on_robot_status(self, msg: DiagnosticStatus) -> None:
        with self.lock:
            self.robot_status = {kv.key: kv.value for kv in msg.values}

    def _on_policy_status(self, msg: DiagnosticStatus) -> None:
        values = {kv.key: kv.value for kv in msg.values}
        held, actuating = values.get("held") == "true", values.get("actuating") == "true"
        with self.lock:
            self.policy_status = (held, actuating, msg.message)
            if actuating:
                self.ticks["actuating"] += 1
                self.ticks["held"] += held

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "manip/policy_node":
                with self.lock:
                    self.diagnostics = {kv.key: kv.value for kv in status.values}

    # -- services -----------------------------------------------------------------------------------------------
    def _call(self, client, request, timeout_s: float = 20.0):
        if not client.wait_for_service(timeout_sec=timeout_s):
            raise DriverError(f"service {client.srv_name} is not available")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.005)
        if not future.done():
            raise DriverError(f"service {client.srv_name} did not answer within {timeout_s:g} s")
        return future.result()

    def trigger(self, name: str) -> str:
        if name not in self.triggers:
            self.triggers[name] = self.create_client(Trigger, name)
        result = self._call(self.triggers[name], Trigger.Request())
        if not result.success:
            raise DriverError(f"{name}: {result.message}")
        return result.message

    def set_bool(self, client, value: bool) -> None:
        result = self._call(client, SetBool.Request(data=value))
        if not result.success:
            raise DriverError(f"{client.srv_name}: {result.message}")

    def set_seed(self, seed: int) -> None:
        value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=int(seed))
        result = self._call(
            self.set_params, SetParameters.Request(parameters=[Parameter(name="seed", value=value)])
        )
        if not result.results[0].successful:
            raise DriverError(f"{self.robot}: seed {seed} refused: {result.results[0].reason}")

    # -- episodes -----------------------------------------------------------------------------------------------
    def wait_until_ready(self) -> None:
        """Wait for the robot's status and, with a policy, for the policy node to execute (not hold)."""
        deadline = time.monotonic() + float(self.config.get("start_timeout_s", 120.0))
        while time.monotonic() < deadline:
            with self.lock:
                robot_up = bool(self.robot_status)
                policy = self.policy_status
            if robot_up and (not self.policy or (policy is not None and not policy[0])):
                return
            time.sleep(0.05)
        why = "no status from the robot" if not robot_up else f"the policy node holds: {policy and policy[2]}"
        raise DriverError(f"not ready after {self.config.get('start_timeout_s', 120.0):g} s: {why}")

    def run_episode(self, seed: int) -> dict:
        self.set_seed(seed)
        episode = int(self.trigger(f"{self.robot}/reset").split(":")[0].split()[-1])
        if self.policy:
            self.trigger(f"{self.policy}/reset")
        if self.recorder:
            self.trigger(f"{self.recorder}/start")
        with self.lock:
            self.ticks = {"held": 0, "actuating": 0}
        self.set_bool(self.enable, True)
        deadline = time.monotonic() + float(self.config.get("episode_timeout_s", 600.0))
        status: dict[str, str] = {}
        while time.monotonic() < deadline:
            with self.lock:
                status = dict(self.robot_status)
            if status.get("episode") == str(episode) and status.get("done") == "true":
                break
            time.sleep(0.02)
        timed_out = not (status.get("episode") == str(episode) and status.get("done") == "true")
        self.set_bool(self.enable, False)
        success = status.get("success") == "true"
        record = {
            "seed": seed,
            "success": success,
            "steps": int(status.get("steps", 0)),
            "commands": int(status.get("commands", 0)),
            "stops": int(status.get("stops", 0)),
            "command_rate_hz": float(status.get("command_rate_hz", 0.0)),
            "lockstep_timeouts": int(status.get("lockstep_timeouts", 0)),
        }
        if self.recorder:
            self._stop_recorder(success)
        with self.lock:
            record.update(held_ticks=self.ticks["held"], actuating_ticks=self.ticks["actuating"])
            diagnostics = dict(self.diagnostics)
        if self.policy:
            record["latency_p50_ms"] = float(diagnostics.get("latency_p50_ms", 0.0))
            record["latency_p99_ms"] = float(diagnostics.get("latency_p99_ms", 0.0))
        if timed_out:
            record["error"] = f"episode not done within {self.config.get('episode_timeout_s', 600.0):g} s"
        return record

    def _stop_recorder(self, success: bool) -> None:
        name = f"{self.recorder}/stop"
        if name not in self.triggers:
            self.triggers[name] = self.create_client(SetBool, name)
        self.set_bool(self.triggers[name], success)


def main() -> int:
    config = json.loads(sys.argv[1])
    rclpy.init()
    driver = EpisodeDriver(config)
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(driver)
    threading.Thread(target=executor.spin, daemon=True).start()
    code = 0
    try:
        driver.wait_until_ready()
        say(ready=True)
        for seed in config["seeds"]:
            say(**driver.run_episode(int(seed)))
        say(finished=True)
    except DriverError as exc:
        say(error=str(exc))
        code = 1
    finally:
        executor.shutdown()
        driver.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
