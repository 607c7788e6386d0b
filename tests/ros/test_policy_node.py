"""The real policy node (rclpy, ROS venv subprocess) against a real policy server on 127.0.0.1 and a fake robot
made of real rclpy publishers/subscribers (tests/ros/ros_harness.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.ros.conftest import JOINTS, Server, node_params, run_node_until_exit

pytestmark = pytest.mark.ros

PERIOD = 0.1  # node_params: 10 Hz


def expected_offsets(points: list[list[float]], base: float = 0.5) -> list[float]:
    """The synthetic policy's action i is mean(proprio) + i in every dimension: return i for each command."""
    out = []
    for positions in points:
        assert len(positions) == 6
        assert np.ptp(positions) < 1e-5, positions  # same value in every joint
        out.append(positions[0] - base)
    return out


def test_commands_arrive_at_the_control_rate_with_the_policy_s_actions(server, ros_run):
    run = ros_run(node_params(server.url))
    run.wait_for(lambda e: not e["held"], kind="status")
    assert run.events("command") == []  # nothing is commanded before ~/enable
    reply = run.ask("enable", data=True)
    assert reply["success"], reply
    start = run.wait_for(lambda e: True, kind="command")["t"]
    window = 3.0
    time.sleep(window + 0.3)
    commands = [e for e in run.events("command", since=start) if e["t"] <= start + window]
    # 10 Hz for 3 s: about 30 commands (loose bounds: a shared 2-core machine)
    assert 20 <= len(commands) <= 36, len(commands)
    for event in commands:
        assert event["joint_names"] == JOINTS[:6]
        assert len(event["points"]) == 1
    offsets = expected_offsets([e["points"][0] for e in commands])
    for offset in offsets:
        assert offset == pytest.approx(round(offset), abs=1e-4) and 0 <= round(offset) < 16
    # within a chunk the policy's actions are executed one per tick, in order
    steps = np.diff(np.round(offsets))
    assert (steps == 1).mean() > 0.5, offsets
    grippers = [e["value"] - 0.5 for e in run.events("gripper", since=start)]
    assert grippers, "the 7-D action's last element should reach the gripper topic"
    assert set(np.round(grippers, 4)) <= set(np.round(offsets, 4)) | set(range(16))

    reply = run.ask("enable", data=False)
    assert reply["success"]
    after = run.ask("events", since=0.0)["now"]
    time.sleep(0.5)
    late = [e for e in run.events("command", since=after + 0.05) if e["points"]]  # 50 ms: DDS delivery
    assert late == []  # disabled: nothing but (possibly) one empty stop trajectory
    assert run.ask("enable", data=True)["success"]
    run.wait_for(lambda e: bool(e["points"]), kind="command", since=after + 0.5)
    assert run.ask("reset")["success"]
    assert run.close() == 0


def test_dry_run_previews_and_commands_nothing(server, ros_run):
    run = ros_run(node_params(server.url, dry_run=True))
    preview = run.wait_for(lambda e: bool(e["points"]), kind="preview")
    offset = expected_offsets(preview["points"])[0]
    assert offset == pytest.approx(round(offset), abs=1e-4)
    reply = run.ask("enable", data=True)
    assert not reply["success"] and "dry_run" in reply["message"]
    time.sleep(1.0)
    assert run.events("command") == []
    assert run.events("gripper") == []
    assert len(run.events("preview")) >= 5


def test_killed_server_holds_within_one_control_period(ros_run, tmp_path):
    own = Server(tmp_path)
    try:
        run = ros_run(node_params(own.url))
        assert run.ask("enable", data=True)["success"]
        run.wait_for(lambda e: bool(e["points"]), kind="command")
        killed = run.ask("events", since=0.0)["now"]
        own.stop()
        held = run.wait_for(lambda e: e["held"], kind="status", since=killed)
        assert "server" in held["message"], held
        # at most the one tick already under way when the server died executes without a hold
        executing = [e for e in run.events("status", since=killed) if not e["held"] and e["t"] < held["t"]]
        assert len(executing) <= 1, executing
        assert held["t"] - killed <= 2 * PERIOD
        time.sleep(0.5)
        assert [e for e in run.events("command", since=held["t"]) if e["points"]] == []
        statuses = run.events("status", since=held["t"])
        assert statuses and all(e["held"] for e in statuses)
        assert run.node.poll() is None  # holds, never crashes
        holds = [line.split("holding:")[1] for line in run.log_tail().splitlines() if "holding:" in line]
        assert len(holds) == len(set(holds)) and len(holds) <= 5, holds  # one line per fault, not per tick
    finally:
        own.stop()


def test_stale_camera_holds_within_one_control_period(server, ros_run):
    params = node_params(server.url)
    run = ros_run(params)
    assert run.ask("enable", data=True)["success"]
    run.wait_for(lambda e: bool(e["points"]), kind="command")
    run.ask("set", publish_cameras=False)
    reply = run.ask("events", since=0.0)
    stale_at = reply["last_camera_publish"] + params["max_frame_age_s"]
    held = run.wait_for(lambda e: e["held"] and "stale" in e["message"], kind="status", since=stale_at)
    assert "/cam/" in held["message"]
    executing = [e for e in run.events("status", since=stale_at) if not e["held"] and e["t"] < held["t"]]
    assert len(executing) <= 1, executing
    run.ask("set", publish_cameras=True)
    run.wait_for(lambda e: not e["held"], kind="status", since=held["t"] + 0.2)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"encoding": "bgr8"}, ["bgr8", "rgb8"]),
        ({"joint_names": ["a", "b", "c", "d", "e", "f", "g", "h", "i"]}, ["/joint_states", "j1"]),
        ({"positions": [float("nan")] * 9}, ["NaN"]),
    ],
    ids=["bgr8-camera", "wrong-joint-names", "nan-joint-state"],
)
def test_bad_input_holds_with_one_clear_reason(server, ros_run, change, words):
    run = ros_run(node_params(server.url))
    assert run.ask("enable", data=True)["success"]
    run.wait_for(lambda e: bool(e["points"]), kind="command")
    changed = run.ask("set", **change)["now"]
    held = run.wait_for(lambda e: e["held"], kind="status", since=changed + 0.05)
    for word in words:
        assert word in held["message"], held
    time.sleep(0.5)
    assert [e for e in run.events("command", since=held["t"] + 0.15) if e["points"]] == []
    assert run.node.poll() is None


def test_unreachable_server_is_reported_and_the_node_keeps_running(ros_run):
    run = ros_run(node_params("ws://127.0.0.1:9"))  # discard port: refused
    held = run.wait_for(lambda e: e["held"] and "cannot connect" in e["message"], kind="status")
    assert "127.0.0.1:9" in held["message"] and "refused" in held["message"].lower()
    assert run.events("command") == [] and run.node.poll() is None


@pytest.fixture
def wrong_protocol_server():
    """A real websocket server on 127.0.0.1 whose metadata says protocol 99."""
    import asyncio
    import threading

    from websockets.asyncio.server import serve

    from manip.real.client.protocol import pack
    from manip.real.synthetic import synthetic_metadata

    ready, stop = threading.Event(), None
    state = {}

    async def handler(ws):
        await ws.send(pack({"type": "metadata", **synthetic_metadata("image").to_json(), "protocol": 99}))
        await ws.wait_closed()

    async def main():
        nonlocal stop
        stop = asyncio.Event()
        async with serve(handler, "127.0.0.1", 0) as server:
            state["url"] = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
            state["loop"] = asyncio.get_running_loop()
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield state["url"]
    state["loop"].call_soon_threadsafe(stop.set)
    thread.join(10)


def test_a_server_speaking_another_protocol_version_is_refused(wrong_protocol_server, ros_run):
    run = ros_run(node_params(wrong_protocol_server))
    held = run.wait_for(lambda e: e["held"] and "protocol" in e["message"], kind="status")
    assert "99" in held["message"]
    time.sleep(0.5)
    assert run.events("command") == [] and run.node.poll() is None


def test_cartesian_interface_sends_pose_targets_and_the_gripper(server, ros_run):
    params = node_params(
        server.url, command_interface="cartesian", command_topic="/arm/pose", frame_id="base"
    )
    run = ros_run(params, robot={"pose_topic": "/arm/pose", "command_topic": ""})
    assert run.ask("enable", data=True)["success"]
    pose = run.wait_for(lambda e: True, kind="pose")
    v = pose["position"][0]
    assert pose["frame_id"] == "base"
    np.testing.assert_allclose(pose["position"], [v, v, v], atol=1e-5)
    assert v - 0.5 == pytest.approx(round(v - 0.5), abs=1e-4)
    # action[3:6] = (v, v, v) as axis-angle → quaternion about (1, 1, 1)/√3 by v·√3
    angle = v * np.sqrt(3)
    axis = np.ones(3) / np.sqrt(3)
    expected = np.concatenate([axis * np.sin(angle / 2), [np.cos(angle / 2)]])
    np.testing.assert_allclose(pose["quaternion"], expected, atol=1e-5)
    gripper = run.wait_for(lambda e: True, kind="gripper")["value"] - 0.5  # action[6]
    assert gripper == pytest.approx(round(gripper), abs=1e-4) and 0 <= round(gripper) < 16


def test_compressed_camera_transport(server, ros_run):
    run = ros_run(node_params(server.url, camera_transport="compressed"), robot={"transport": "compressed"})
    preview = run.wait_for(lambda e: bool(e["points"]), kind="preview")
    offset = expected_offsets(preview["points"])[0]
    assert offset == pytest.approx(round(offset), abs=1e-4)


def test_token_protected_server_needs_the_right_token(ros_run, tmp_path):
    (tmp_path / "token").write_text("s3cret\n")
    (tmp_path / "wrong").write_text("guess\n")
    own = Server(tmp_path, token_file=tmp_path / "token")
    try:
        refused = ros_run(node_params(own.url, token_file=str(tmp_path / "wrong")))
        held = refused.wait_for(lambda e: "cannot connect" in e["message"], kind="status")
        assert "401" in held["message"] or "403" in held["message"], held
        refused.close()
        accepted = ros_run(node_params(own.url, token_file=str(tmp_path / "token"), dry_run=True))
        accepted.wait_for(lambda e: bool(e["points"]), kind="preview")
    finally:
        own.stop()


def test_safety_file_clamps_every_command(server, ros_run, tmp_path):
    safety = tmp_path / "safety.yaml"
    safety.write_text("high: [0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]\nlow: [0, 0, 0, 0, 0, 0, 0]\nhold: repeat\n")
    run = ros_run(node_params(server.url, safety_file=str(safety)))
    assert run.ask("enable", data=True)["success"]
    run.wait_for(lambda e: bool(e["points"]), kind="command")
    time.sleep(1.0)
    positions = np.array([e["points"][0] for e in run.events("command") if e["points"]])
    assert len(positions) >= 5
    assert positions.max() == pytest.approx(0.6, abs=1e-6)  # the policy asks up to 0.5 + 15
    assert positions.min() >= 0.5 - 1e-6
    assert max(e["value"] for e in run.events("gripper")) <= 0.6 + 1e-6


def test_a_bad_safety_file_stops_the_node_with_one_line(ros_env, tmp_path):
    safety = tmp_path / "safety.yaml"
    safety.write_text("hgih: [1.0]\n")
    result = run_node_until_exit(ros_env, "policy_node", safety_file=str(safety))
    assert result.returncode == 2
    assert "hgih" in result.stderr and result.stderr.strip().count("\n") == 0
