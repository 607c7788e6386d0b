"""The real policy node (rclpy, ROS venv subprocess) against a real policy server on 127.0.0.1 and a fake robot
made of real rclpy publishers/subscribers (tests/ros/ros_harness.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.ros.conftest import JOINTS, WIDE_LIMITS, Server, node_params, run_node_until_exit

pytestmark = pytest.mark.ros


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
    deadline = time.monotonic() + 30  # previews keep coming (a loaded machine may run the node slowly)
    while len(run.events("preview")) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(run.events("preview")) >= 5
    assert run.events("command") == []
    assert run.events("gripper") == []


def test_killed_server_holds_within_one_control_period(ros_run, tmp_path):
    own = Server(tmp_path)
    try:
        run = ros_run(node_params(own.url))
        assert run.ask("enable", data=True)["success"]
        run.wait_for(lambda e: bool(e["points"]), kind="command")
        killed = run.ask("events", since=0.0)["now"]
        own.stop()
        held = run.wait_for(lambda e: e["held"] and "server" in e["message"], kind="status", since=killed)
        # at most the one tick already under way when the server died executes before the server fault holds
        # (counted in ticks: a loaded machine stretches wall time, not the number of ticks the node runs)
        executing = [e for e in run.events("status", since=killed) if not e["held"] and e["t"] < held["t"]]
        assert len(executing) <= 1, executing
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
        server.url, command_interface="cartesian", command_topic="/arm/pose", frame_id="base",
        allow_action_mismatch=True,  # the stand-in's actions are joint positions: command them as poses
    )  # fmt: skip
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


def test_dry_run_status_says_previewing_never_executing(server, ros_run):
    run = ros_run(node_params(server.url, dry_run=True))
    run.wait_for(lambda e: bool(e["points"]), kind="preview")
    time.sleep(0.5)
    messages = {e["message"] for e in run.events("status") if not e["held"]}
    assert messages and all("dry run" in m for m in messages), messages


def test_receding_mode_runs_chunk_after_chunk_without_stopping(server, ros_run):
    # input limits loose: only the chunk boundaries are under test here (a loaded machine delays frames)
    run = ros_run(node_params(server.url, executor_mode="receding", max_frame_age_s=1.0, max_state_age_s=1.0))
    assert run.ask("enable", data=True)["success"]
    start = run.wait_for(lambda e: bool(e["points"]), kind="command")["t"]
    time.sleep(3.0)
    end = run.ask("events")["now"]
    commands = run.events("command", since=start - 1e-6)
    assert len([e for e in commands if e["points"]]) >= 15  # several chunks of 8 actions at 10 Hz
    statuses = [e for e in run.events("status", since=start) if e["t"] < end]
    assert statuses and not any(e["held"] for e in statuses), [e["message"] for e in statuses if e["held"]]
    assert [e for e in commands if not e["points"]] == []  # never a stop trajectory between chunks
    # within a chunk, one action per tick: the synthetic actions step by 1 in every dimension
    offsets = expected_offsets([e["points"][0] for e in commands if e["points"]])
    assert (np.diff(np.round(offsets)) == 1).mean() > 0.5, offsets


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_restarted_server_does_not_resume_motion_until_enabled_again(ros_run, tmp_path):
    port = free_port()
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    first, second = Server(tmp_path / "first", port=port), None
    try:
        run = ros_run(node_params(first.url))
        assert run.ask("enable", data=True)["success"]
        run.wait_for(lambda e: bool(e["points"]), kind="command")
        killed = run.ask("events")["now"]
        first.stop()
        lost = run.wait_for(lambda e: e["held"] and "server" in e["message"], kind="status", since=killed)
        second = Server(tmp_path / "second", port=port)
        back = run.wait_for(lambda e: not e["held"], kind="status", since=lost["t"])
        assert "~/enable" in back["message"], back  # connected again, but not actuating
        time.sleep(1.0)
        assert [e for e in run.events("command", since=lost["t"]) if e["points"]] == []
        assert "actuation disabled" in run.log_tail()
        assert run.events("preview", since=back["t"])  # the policy still runs: previews only
        enabled = run.ask("enable", data=True)
        assert enabled["success"], enabled
        run.wait_for(lambda e: bool(e["points"]), kind="command", since=enabled["now"])
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_a_stale_input_holds_within_one_period_of_a_limit_set_by_the_control_rate(server, ros_run):
    params = node_params(server.url, control_rate_hz=0.0)  # the checkpoint's 20 Hz: stale after 0.1 s
    del params["max_frame_age_s"], params["max_state_age_s"]
    run = ros_run(params)
    assert run.ask("enable", data=True)["success"]
    run.wait_for(lambda e: bool(e["points"]), kind="command")
    assert "20 Hz, inputs stale after 0.1 s (images) / 0.1 s (state)" in run.log_tail()
    run.ask("set", publish_cameras=False)
    stale_at = run.ask("events")["last_camera_publish"] + 0.1  # two periods of age allowed
    held = run.wait_for(lambda e: e["held"] and "stale" in e["message"], kind="status", since=stale_at)
    executing = [e for e in run.events("status", since=stale_at) if not e["held"] and e["t"] < held["t"]]
    # then at most the one tick already under way (with the old fixed 0.25 s limit: 3 more ticks)
    assert len(executing) <= 1, executing


def test_without_limits_the_node_refuses_to_actuate_and_says_why(server, ros_run):
    run = ros_run(node_params(server.url, safety_file=""))
    run.wait_for(lambda e: bool(e["points"]), kind="preview")  # the stand-in records no action statistics
    reply = run.ask("enable", data=True)
    assert not reply["success"] and "limits" in reply["message"], reply
    time.sleep(0.5)
    assert run.events("command") == [] and run.events("gripper") == []
    assert "actuation is refused" in run.log_tail()


def test_diagnostics_have_a_fixed_set_of_readable_keys_and_count_motion_commands(server, ros_run):
    run = ros_run(node_params(server.url, dry_run=True))
    run.wait_for(lambda e: bool(e["points"]), kind="preview")
    time.sleep(1.2)
    for change in ({"encoding": "bgr8"}, {"joint_names": list("abcdefghi")}, {"publish_cameras": False}):
        changed = run.ask("set", **change)["now"]
        run.wait_for(lambda e: e["held"], kind="status", since=changed + 0.05)
        time.sleep(0.6)
        run.ask("set", encoding="rgb8", joint_names=JOINTS, publish_cameras=True)
        time.sleep(0.6)
    reports = [e["values"] for e in run.events("diagnostics")]
    keys = [tuple(values) for values in reports]
    assert len(set(keys)) == 1, set(keys)  # the same keys whatever faults happened
    assert not any("#" in key for key in keys[0])
    assert {"command_rate_hz", "holds", "holds_input", "stop_trajectories", "latency_p50_ms"} <= set(keys[0])
    assert int(reports[-1]["holds_input"]) > 0 and reports[-1]["limits"] == f"safety_file {WIDE_LIMITS}"
    # a dry run ticks and previews but commands nothing: the command rate is 0
    assert all(float(v["command_rate_hz"]) == 0.0 for v in reports)
    assert float(reports[-1]["tick_rate_hz"]) > 0


# -- a checkpoint trained by this stack: low-dim Lift observations, OSC deltas, 20 Hz, action statistics -------
LIFT_SHAPES = {"robot0_eef_pos": (3,), "robot0_eef_quat": (4,), "robot0_gripper_qpos": (2,), "object": (10,)}
LIFT_MAP = """
robot0_eef_pos:      {topic: /eef_pose, type: pose, field: position}
robot0_eef_quat:     {topic: /eef_pose, type: pose, field: orientation}
robot0_gripper_qpos: {topic: /joint_states, type: joint_state, field: position, joints: [j8, j9]}
object:              {topic: /object_state, type: array}
"""
EEF = {
    "topic": "/eef_pose",
    "position": [0.1, -0.2, 1.0],
    "quaternion": [0.0, 1.0, 0.0, 0.0],
    "frame_id": "world",
}


def lift_checkpoint(path):
    """An untrained low-dim flow policy with Lift's keys, as training writes it (control rate, OSC semantics)."""
    import torch

    from manip.core.specs import FeatureSpec, Spec
    from manip.data.normalizer import Normalizer
    from manip.policies.checkpoint import set_action_semantics
    from manip.policies.config import POLICY_TYPES, parse_policy_config
    from manip.real.client.sources import ROBOSUITE_OSC_ACTION

    rng = np.random.default_rng(0)
    data = {k: rng.normal(size=(32, *s)).astype(np.float32) for k, s in LIFT_SHAPES.items()}
    data["action"] = rng.uniform(-0.3, 0.3, size=(32, 7)).astype(np.float32)
    config = parse_policy_config(
        {
            "obs_keys": list(LIFT_SHAPES),
            "horizon": 16,
            "n_action_steps": 8,
            "backbone": {"name": "unet1d", "down_dims": [16, 32], "time_embed_dim": 16},
            "head": {"name": "flow", "default_steps": 1},
        }
    )
    torch.manual_seed(0)
    policy = POLICY_TYPES.get(config.type).cls(
        config,
        Spec(tuple(FeatureSpec(k, s) for k, s in LIFT_SHAPES.items())),
        Spec((FeatureSpec("action", (7,)),)),
        Normalizer.fit([data], dict.fromkeys(data, "minmax")),
    )
    set_action_semantics(policy, 20.0, ROBOSUITE_OSC_ACTION)
    policy.save_pretrained(path)
    return path, data["action"].min(0), data["action"].max(0)


@pytest.fixture(scope="module")
def lift_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lift")
    path, low, high = lift_checkpoint(tmp / "checkpoint")
    (tmp / "map.yaml").write_text(LIFT_MAP)
    srv = Server(tmp, checkpoint=path)
    srv.map_file, srv.low, srv.high = tmp / "map.yaml", low, high
    yield srv
    srv.stop()


def lift_params(srv, **overrides) -> dict:
    return {
        "server_url": srv.url,
        "dry_run": False,
        "observation_map_file": str(srv.map_file),
        "command_interface": "cartesian",
        "command_topic": "/arm/pose",
        "executor_mode": "async",
        "reconnect_interval_s": 0.2,
        "max_state_age_s": 0.5,  # a loaded test machine delays messages; staleness has its own test
        **overrides,
    }


def test_a_lift_checkpoint_is_fed_from_the_map_and_its_deltas_become_absolute_pose_targets(
    lift_server, ros_run
):
    from real.semantics import delta_target

    robot = {"eef_pose": EEF, "arrays": {"/object_state": [0.0] * 10}, "pose_topic": "/arm/pose"}
    run = ros_run(lift_params(lift_server), robot={**robot, "command_topic": ""})
    run.wait_for(lambda e: not e["held"], kind="status", timeout_s=60)
    log = run.log_tail()
    assert "20 Hz" in log and "(ee_delta)" in log and "the checkpoint's action range" in log
    assert run.ask("enable", data=True)["success"]
    first = run.wait_for(lambda e: True, kind="pose")
    time.sleep(2.0)
    poses = run.events("pose", since=first["t"] - 1e-6)
    low = lift_server.low - 0.1 * (lift_server.high - lift_server.low)
    high = lift_server.high + 0.1 * (lift_server.high - lift_server.low)
    rows = np.clip(np.concatenate([e["rows"] for e in run.events("chunk")]), low, high)  # the node's clamps
    targets = [delta_target(EEF["position"], EEF["quaternion"], row[:6], 0.05, 0.5) for row in rows]
    assert len(poses) >= 5
    for pose in poses:
        assert pose["frame_id"] == "world"  # the frame of the end-effector pose
        matches = [
            np.allclose(pose["position"], p, atol=1e-5) and abs(np.dot(pose["quaternion"], q)) > 1 - 1e-6
            for p, q in targets
        ]
        assert any(matches), pose  # = current pose ⊕ (a clamped chunk action)·scale, never the raw action
        # a delta of at most 0.36 (the range +10%) moves the target at most 0.018 m per axis from the pose
        assert np.abs(np.subtract(pose["position"], EEF["position"])).max() <= 0.05 * 0.36 + 1e-6
    grippers = [e["value"] for e in run.events("gripper", since=first["t"] - 1e-6)]
    assert grippers and low[6] - 1e-6 <= min(grippers) and max(grippers) <= high[6] + 1e-6


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (
            {"command_interface": "joint_trajectory"},
            ["ee_delta", "joint_trajectory", "allow_action_mismatch"],
        ),
        ({"control_rate_hz": 10.0}, ["10", "20 Hz", "allow_rate_mismatch"]),
    ],
    ids=["action-space", "rate"],
)
def test_a_checkpoint_that_does_not_fit_the_parameters_is_refused_at_start(
    lift_server, ros_env, overrides, words
):
    params = {k: v for k, v in lift_params(lift_server, **overrides).items() if k != "dry_run"}
    result = run_node_until_exit(ros_env, "policy_node", **{k: str(v) for k, v in params.items()})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("policy_node:")]  # one line
    for word in words:
        assert word in line, line


def test_action_semantics_go_from_the_dataset_through_the_checkpoint_to_the_served_metadata(tmp_path, capsys):
    import json

    from manip.data.store import EpisodeStore
    from manip.policies.serving import LocalPolicySource
    from manip.policies.training import action_semantics_of
    from manip.real.client.sources import ROBOSUITE_OSC_ACTION, SourceMetadata

    store = EpisodeStore.create(tmp_path / "old.zarr")
    assert action_semantics_of(store) == (20.0, ROBOSUITE_OSC_ACTION)  # a store that does not say
    assert "assuming robosuite OSC_POSE" in capsys.readouterr().err
    joint = {"space": "joint_position", "gripper": "last dim"}
    store.set_attrs(control_rate=10.0, action_semantics=joint)
    assert action_semantics_of(store) == (10.0, joint)

    path, low, high = lift_checkpoint(tmp_path / "checkpoint")
    config = json.loads((path / "config.json").read_text())
    assert config["control_rate"] == 20.0 and config["action"] == ROBOSUITE_OSC_ACTION
    meta = SourceMetadata.from_json(LocalPolicySource.from_checkpoint(path, device="cpu").metadata.to_json())
    assert meta.control_rate == 20.0 and meta.action == ROBOSUITE_OSC_ACTION
    np.testing.assert_allclose(meta.action_stats["min"], low, rtol=1e-6)
    np.testing.assert_allclose(meta.action_stats["max"], high, rtol=1e-6)
