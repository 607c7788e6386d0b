"""``sim_robot`` as a real ROS 2 process: every topic with its type and shape, reproducible resets that match
``manip eval``'s initial state for the same seed, and commands (pose targets, joint trajectories, stops) that
move the simulated arm."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.ros.conftest import PACKAGE, ROS_PYTHON

PROBE = Path(__file__).with_name("sim_probe.py")
CAMERA = "agentview"
ARM = [f"robot0_joint{i}" for i in range(1, 8)]
FINGERS = ["gripper0_right_finger_joint1", "gripper0_right_finger_joint2"]

pytestmark = [pytest.mark.ros, pytest.mark.slow]


class SimRobotRun:
    """``python -m real.sim_robot_node`` with ``params`` and the probe, both in the ROS venv."""

    def __init__(self, env: dict, tmp: Path, params: dict):
        params_file = tmp / "sim_robot.yaml"
        params_file.write_text(yaml.safe_dump({"sim_robot": {"ros__parameters": params}}))
        self.log = tmp / "sim_robot.log"
        self._out = self.log.open("w")
        env = {**env, "MUJOCO_GL": "egl"}
        self.node = subprocess.Popen(
            [str(ROS_PYTHON), "-m", "real.sim_robot_node", "--ros-args", "--params-file", str(params_file)],
            env=env, cwd=PACKAGE, stdout=self._out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.probe = subprocess.Popen(
            [str(ROS_PYTHON), str(PROBE), json.dumps(params.get("cameras", []))],
            env=env, cwd=PACKAGE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert json.loads(self.probe.stdout.readline())["ready"]

    def ask(self, cmd: str, **kwargs) -> dict:
        self.probe.stdin.write(json.dumps({"cmd": cmd, **kwargs}) + "\n")
        self.probe.stdin.flush()
        line = self.probe.stdout.readline()
        assert line, f"the probe died; sim_robot log:\n{self.log.read_text()[-3000:]}"
        return json.loads(line)

    def latest(self, topics: list[str], after: float = 0.0, timeout_s: float = 120.0, until=None) -> dict:
        """The newest message of each of ``topics`` received after ``after`` (and satisfying ``until``)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.ask("latest", after=after)["topics"]
            if all(t in got for t in topics) and (until is None or until(got)):
                return got
            assert self.node.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.1)
        raise AssertionError(f"no {topics} in {timeout_s} s; sim_robot log:\n{self.log.read_text()[-3000:]}")

    def reset(self, seed: int) -> dict:
        """Reset to ``seed``; the first state published after it (the physics waits for a command)."""
        reply = self.ask("reset", seed=seed)
        assert reply["message"].endswith(f"seed {seed}"), reply
        topics = ["/eef_pose", "/object_state", "/sim_robot/status"]
        after, previous = reply["now"] + 0.3, None
        for _ in range(
            20
        ):  # the state the robot holds: the same in two reads (a loaded DDS may deliver late)
            got = self.latest(
                topics, after, until=lambda g: g["/sim_robot/status"]["values"]["seed"] == str(seed)
            )
            state = (got["/eef_pose"]["position"], got["/object_state"]["data"])
            if state == previous:
                return got
            after, previous = time.monotonic() + 0.2, state
        raise AssertionError(f"the state after reset({seed}) never settled")

    def status(self, after: float = 0.0, until=None) -> dict:
        got = self.latest(
            ["/sim_robot/status"], after, until=until and (lambda g: until(g["/sim_robot/status"]))
        )
        return got["/sim_robot/status"]["values"]

    def close(self) -> None:
        if self.probe.poll() is None:
            self.probe.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.probe.stdin.flush()
            self.probe.wait(timeout=20)
        if self.node.poll() is None:
            self.node.send_signal(subprocess.signal.SIGINT)
            try:
                self.node.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.node.kill()
        self._out.close()


@pytest.fixture
def sim_robot(ros_env, tmp_path):
    runs = []

    def start(**params) -> SimRobotRun:
        run = SimRobotRun(ros_env, tmp_path, {"task": "Lift", **params})
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.close()


def test_sim_robot_publishes_every_topic_and_resets_reproducibly(sim_robot):
    robot = sim_robot(
        cameras=[CAMERA], depth_cameras=[CAMERA], depth_encoding="16UC1", image_height=48, image_width=64
    )
    topics = [
        "/joint_states", "/eef_pose", "/object_state", "/task_success", "/sim_robot/status",
        f"/{CAMERA}/color/image_raw", f"/{CAMERA}/color/camera_info", f"/{CAMERA}/depth/image_raw",
    ]  # fmt: skip
    got = robot.latest(topics)
    joints = got["/joint_states"]
    assert joints["name"] == ARM + FINGERS
    assert len(joints["position"]) == len(joints["velocity"]) == 9
    pose = got["/eef_pose"]
    assert pose["frame_id"] == "world" and pose["stamp"] > 0
    assert abs(np.linalg.norm(pose["quaternion"]) - 1) < 1e-4
    assert len(got["/object_state"]["data"]) == 10  # Lift: cube pos, cube quat, gripper-to-cube
    assert got["/task_success"]["data"] is False
    image = got[f"/{CAMERA}/color/image_raw"]
    assert (image["encoding"], image["height"], image["width"], image["step"]) == ("rgb8", 48, 64, 192)
    assert image["max"] > image["min"]  # a rendered scene, not a blank frame
    info = got[f"/{CAMERA}/color/camera_info"]
    assert (info["height"], info["width"]) == (48, 64) and info["k"][2] == 32.0 and info["k"][5] == 24.0
    depth = got[f"/{CAMERA}/depth/image_raw"]
    assert (depth["encoding"], depth["height"], depth["width"], depth["step"]) == ("16UC1", 48, 64, 128)
    assert 300 < depth["min"] <= depth["max"] < 10000  # millimetres: the table and the arm, within metres
    assert got["/sim_robot/status"]["values"]["waiting"] == "true"  # no command yet: the physics waits

    first = robot.reset(5)
    other = robot.reset(9)
    again = robot.reset(5)
    for topic in ("/eef_pose", "/object_state"):
        key = "position" if topic == "/eef_pose" else "data"
        assert again[topic][key] == first[topic][key], topic
    assert other["/object_state"]["data"] != first["/object_state"]["data"]
    assert again["/sim_robot/status"]["values"]["seed"] == "5"

    # the same initial state as `manip eval --seed 5` (make_env, model seed 0, episode seed 5)
    from manip.sim.env import make_env

    env = make_env("Lift")
    obs = env.reset(seed=5)
    env.close()
    np.testing.assert_allclose(first["/object_state"]["data"], obs["object"], atol=1e-6)
    np.testing.assert_allclose(first["/eef_pose"]["position"], obs["robot0_eef_pos"], atol=1e-6)
    np.testing.assert_allclose(first["/eef_pose"]["quaternion"], obs["robot0_eef_quat"], atol=1e-6)


def forward_kinematics(arm_positions) -> np.ndarray:
    """The Panda's end-effector site position with the arm joints at ``arm_positions`` (MuJoCo, this process)."""
    import mujoco

    from manip.sim.env import make_env

    env = make_env("Lift")
    env.reset(seed=0)
    model, data = env.raw.sim.model._model, env.raw.sim.data._data
    robot = env.raw.robots[0]
    data.qpos[robot._ref_joint_pos_indexes] = arm_positions
    mujoco.mj_kinematics(model, data)
    position = np.array(data.site_xpos[robot.eef_site_id[robot.arms[0]]])
    env.close()
    return position


def test_commands_move_the_arm_toward_their_targets(sim_robot):
    robot = sim_robot(horizon=1000)
    start = robot.reset(2)
    eef = np.array(start["/eef_pose"]["position"])
    quat = start["/eef_pose"]["quaternion"]
    target = eef + np.array([0.05, -0.04, 0.08])
    sent = robot.ask("pose_target", position=target.tolist(), quaternion=quat, gripper=1.0)["now"]
    values = robot.status(sent, until=lambda s: int(s["values"]["steps"]) >= 30)
    assert values["commands"] == "1" and values["waiting"] == "false"
    reached = np.array(robot.latest(["/eef_pose"], after=time.monotonic())["/eef_pose"]["position"])
    assert np.linalg.norm(reached - target) < 0.25 * np.linalg.norm(eef - target)  # it moved most of the way
    fingers = robot.latest(["/joint_states"], after=time.monotonic())["/joint_states"]["position"][7:]
    assert fingers[0] < 0.02  # gripper +1: closed (fingers together; open is about 0.04)

    # a joint trajectory: absolute targets for the named joints, held; then an empty one stops the arm
    joints = np.array(
        robot.latest(["/joint_states"], after=time.monotonic())["/joint_states"]["position"][:7]
    )
    goal = joints.copy()
    goal[0] += 0.3
    sent = robot.ask("trajectory", names=ARM, positions=goal.tolist())["now"]
    robot.status(sent, until=lambda s: s["values"]["commands"] == "2")
    steps = int(robot.status()["steps"])
    robot.status(until=lambda s: int(s["values"]["steps"]) >= steps + 30)
    reached = np.array(robot.latest(["/eef_pose"], after=time.monotonic())["/eef_pose"]["position"])
    # the documented conversion: the arm follows the end-effector pose of the target joint positions
    goal_eef = forward_kinematics(goal)
    assert np.linalg.norm(reached - goal_eef) < 0.3 * np.linalg.norm(forward_kinematics(joints) - goal_eef)
    sent = robot.ask("trajectory", names=[], positions=[])["now"]
    assert robot.status(sent, until=lambda s: s["values"]["stops"] == "1")["commands"] == "2"


def test_publish_clock_steps_in_lockstep_with_the_commands(sim_robot):
    """With publish_clock the robot is /clock (one control period per tick, every message stamped with it) and
    steps once the command answering the last tick has arrived (stamped at that tick's time or later), or after
    lockstep_timeout_s without one (counted)."""
    robot = sim_robot(horizon=1000, publish_clock=True, lockstep_timeout_s=3.0)
    start = robot.reset(4)
    # time flows while the robot waits for its first command (a node on this clock must be able to tick) ...
    ticks = set()
    while len(ticks) < 4:
        ticks.add(robot.latest(["/clock"], after=time.monotonic())["/clock"]["t"])
    assert robot.status()["steps"] == "0"
    # ... in whole periods (20 Hz), and a tick's state carries that tick's time
    assert all(round(d / 0.05, 6) == round(d / 0.05) for d in np.diff(sorted(ticks)))
    robot.latest(["/clock", "/eef_pose"], until=lambda g: g["/clock"]["t"] == g["/eef_pose"]["stamp"])

    eef, quat = start["/eef_pose"]["position"], start["/eef_pose"]["quaternion"]

    answered = [0.0]  # the tick times answered so far (the clock stands still until a tick is answered)

    def answer(stamped: bool = True) -> float:
        """Command the current pose stamped with the time of the newest tick not yet answered (or unstamped)."""
        now = robot.latest(["/clock"], until=lambda g: g["/clock"]["t"] > answered[-1])["/clock"]["t"]
        robot.ask("pose_target", position=eef, quaternion=quat, gripper=-1.0, stamp=now if stamped else 0.0)
        if stamped:
            answered.append(now)
        return now

    def steps() -> tuple[int, int]:
        values = robot.status()  # the newest status: the robot publishes one per tick, none while it waits
        return int(values["steps"]), int(values["lockstep_timeouts"])

    answer()
    robot.status(until=lambda s: s["values"]["steps"] == "1")
    # a command stamped before the tick it would answer (here: unstamped) does not release the step ...
    answer(stamped=False)
    time.sleep(1.0)
    assert steps() == (1, 0)
    # ... the timeout does: a holding controller does not stop time
    robot.status(until=lambda s: s["values"]["steps"] == "2")
    assert steps() == (2, 1)
    # each answered tick is one step of one period; unanswered, the clock stands still
    clocks = []
    for expected in range(3, 8):
        clocks.append(answer())
        robot.status(until=lambda s, n=expected: int(s["values"]["steps"]) >= n)
    assert np.diff(clocks) == pytest.approx([0.05] * 4, abs=1e-6), clocks
    stepped, timeouts = steps()
    assert stepped - 2 == 5 + (timeouts - 1), (
        stepped,
        timeouts,
    )  # steps not answered were counted as timeouts
    assert timeouts == 1 and robot.status()["commands"] == "7"
