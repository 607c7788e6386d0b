"""Fixtures for the ROS tests: the ROS venv's Python, a loopback-only DDS domain per test run, a real policy
server (``manip serve --synthetic image``) on 127.0.0.1, the policy node and a fake robot in subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "ros_ws" / "src" / "real"
ROS_PYTHON = Path(os.environ.get("MANIP_ROS_VENV", REPO / ".venv-ros")) / "bin" / "python"
HARNESS = Path(__file__).with_name("ros_harness.py")

sys.path.insert(0, str(PACKAGE))  # the ROS package's numpy-only modules (observation, params) for unit tests
import real  # noqa: E402  (bound now: pytest later puts the repository root, which has a folder real/, first)

assert Path(real.__file__).parent == PACKAGE / "real", real.__file__


def ros_environment() -> dict:
    """Environment for ROS subprocesses: DDS on loopback, a domain id of its own, the package on the path."""
    env = dict(os.environ)
    env.update(
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(1 + os.getpid() % 100),
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        PYTHONPATH=str(PACKAGE),
        PYTHONUNBUFFERED="1",
    )
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    return env


def run_node_until_exit(ros_env: dict, node: str, **params: str) -> subprocess.CompletedProcess:
    """Run ``real.<node>`` with ``-p name:=value`` parameters until it exits (for startup-error tests)."""
    args = [arg for name, value in params.items() for arg in ("-p", f"{name}:={value}")]
    return subprocess.run(
        [str(ROS_PYTHON), "-m", f"real.{node}", "--ros-args", *args],
        env=ros_env,
        cwd=PACKAGE,  # `-m real.X` must find the ROS module, not the repository's real/ folder
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="session")
def ros_env():
    """:func:`ros_environment`; skips (a failure under CI: tests/conftest.py) when the ROS venv is missing."""
    if not ROS_PYTHON.exists():
        pytest.skip(f"{ROS_PYTHON} is missing (bash .ci/setup.sh --ros makes it)")
    return ros_environment()


class Server:
    """``manip serve --synthetic image`` on 127.0.0.1, a free port (with a token when ``token_file`` is given;
    ``port``: a fixed one; ``checkpoint``: serve that checkpoint instead of the stand-in)."""

    def __init__(
        self, tmp: Path, token_file: Path | None = None, port: int = 0, checkpoint: Path | None = None
    ):
        self.log = tmp / "server.log"
        self.handle = self.log.open("w")
        auth = ["--token-file", str(token_file)] if token_file else []
        policy = ["--checkpoint", str(checkpoint)] if checkpoint else ["--synthetic", "image"]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-P",
                "-m",
                "manip.cli.main",
                "serve",
                *policy,
                "--port",
                str(port),
                "--warmup",
                "0",
                *auth,
            ],
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        deadline = time.monotonic() + 60
        self.url = ""
        while time.monotonic() < deadline and self.proc.poll() is None and not self.url:
            match = re.search(r"listening on (ws://127\.0\.0\.1:\d+)", self.log.read_text())
            self.url = match.group(1) if match else ""
            time.sleep(0.05)
        if not self.url:
            self.stop()
            raise RuntimeError(f"manip serve did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.handle.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


CAMERAS = [["/cam/agentview", 120, 160], ["/cam/wrist", 96, 96]]
JOINTS = [f"j{i}" for i in range(1, 10)]  # 7 arm joints + 2 fingers: the stand-in's 9-D robot0_proprio
# actuating needs limits and the stand-in records no action statistics: limits it never reaches
WIDE_LIMITS = Path(__file__).with_name("wide_limits.yaml")


def node_params(url: str, **overrides) -> dict:
    """Parameters matching the synthetic image policy (two cameras, 9-D proprio, 7-D actions)."""
    params = {
        "server_url": url,
        "control_rate_hz": 10.0,
        "dry_run": False,
        "camera_topics": [c[0] for c in CAMERAS],
        "camera_keys": ["agentview_image", "robot0_eye_in_hand_image"],
        "joint_names": JOINTS,
        "joint_state_key": "robot0_proprio",
        "command_joint_names": JOINTS[:6],  # 7-D actions: 6 arm joints + the gripper
        "command_topic": "/arm/joint_trajectory",
        "executor_mode": "async",
        "max_frame_age_s": 0.3,
        # a loaded 2-core machine delays the fake robot's joint states past 2 periods; state staleness has its
        # own tests (test_encodings_observation.py), camera staleness uses max_frame_age_s above
        "max_state_age_s": 0.6,
        "reconnect_interval_s": 0.2,
        "diagnostics_period_s": 0.5,
        "safety_file": str(WIDE_LIMITS),
        "allow_rate_mismatch": True,  # the stand-in says 20 Hz; these tests run at 10 Hz
    }
    params.update(overrides)
    return params


class RosRun:
    """A node of the package (``policy_node`` by default) and the fake robot, each in its own ROS-venv
    subprocess; ``robot`` adds to / overrides the fake robot's configuration (see ros_harness.py)."""

    def __init__(
        self, env: dict, tmp: Path, params: dict, node: str = "policy_node", robot: dict | None = None
    ):
        self.params = params
        params_file = tmp / "params.yaml"
        params_file.write_text(yaml.safe_dump({node: {"ros__parameters": params}}))
        self.node_log = tmp / "node.log"
        self._node_out = self.node_log.open("w")
        self.node = subprocess.Popen(
            [str(ROS_PYTHON), "-m", f"real.{node}", "--ros-args", "--params-file", str(params_file)],
            env=env,
            cwd=PACKAGE,
            stdout=self._node_out,
            stderr=subprocess.STDOUT,
        )
        robot_config = {
            "cameras": CAMERAS,
            "joint_names": JOINTS,
            "positions": [0.5] * len(JOINTS),
            "command_topic": params.get("command_topic", ""),
            **(robot or {}),
        }
        self.robot = subprocess.Popen(
            [str(ROS_PYTHON), str(HARNESS), json.dumps(robot_config)],
            env=env,
            cwd=PACKAGE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        first = json.loads(self.robot.stdout.readline() or "{}")
        if not first.get("ready"):
            self.close()
            raise RuntimeError("the fake robot did not start")

    def ask(self, cmd: str, **kwargs) -> dict:
        self.robot.stdin.write(json.dumps({"cmd": cmd, **kwargs}) + "\n")
        self.robot.stdin.flush()
        line = self.robot.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake robot died; node log:\n{self.node_log.read_text()[-3000:]}")
        return json.loads(line)

    def events(self, kind: str | None = None, since: float = 0.0) -> list[dict]:
        events = self.ask("events", since=since)["events"]
        return [e for e in events if kind is None or e["kind"] == kind]

    def wait_for(
        self, predicate, timeout_s: float = 20.0, kind: str | None = None, since: float = 0.0
    ) -> dict:
        """The first event (of ``kind``, after ``since``) satisfying ``predicate``; fails after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in self.events(kind, since):
                if predicate(event):
                    return event
            time.sleep(0.05)
        statuses = [e["message"] for e in self.events("status")][-5:]
        raise AssertionError(f"timed out waiting; last statuses {statuses}; node log:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.node_log.read_text()[-3000:]

    def close(self) -> int | None:
        """Stop both processes; returns the node's exit status."""
        if self.robot.poll() is None:
            try:
                self.robot.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.robot.stdin.flush()
                self.robot.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.robot.kill()
        if self.node.poll() is None:
            self.node.send_signal(subprocess.signal.SIGINT)
            try:
                self.node.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.node.kill()
                self.node.wait()
        self._node_out.close()
        return self.node.returncode


@pytest.fixture
def ros_run(ros_env, tmp_path):
    """``ros_run(params, node=..., robot=...)`` starts a node + the fake robot; both stop after the test."""
    runs = []

    def start(params: dict, **kwargs) -> RosRun:
        path = tmp_path / f"run{len(runs)}"
        path.mkdir()
        run = RosRun(ros_env, path, params, **kwargs)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()
