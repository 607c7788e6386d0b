"""The recorder node writes demonstrations from live topics into a real Zarr store; the camera node republishes
a RealSense (played-back recording) through the camera process as sensor_msgs/Image."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from manip.data.store import EpisodeStore
from tests.ros.conftest import CAMERAS, JOINTS, run_node_until_exit

pytestmark = pytest.mark.ros


def recorder_params(store) -> dict:
    return {
        "store_path": str(store),
        "record_rate_hz": 10.0,
        "camera_topics": [c[0] for c in CAMERAS],
        "camera_keys": ["agentview_image", "robot0_eye_in_hand_image"],
        "joint_state_topic": "/joint_states",
        "joint_names": JOINTS[:3],
        "joint_state_key": "robot0_joint_pos",
        "action_topic": "/teleop/joint_trajectory",
        "task": "PickCube",
        "max_frame_age_s": 0.3,
    }


def test_recorder_records_commits_and_discards_episodes(ros_run, tmp_path):
    store_path = tmp_path / "demos.zarr"
    run = ros_run(
        recorder_params(store_path), node="recorder_node", robot={"teleop_topic": "/teleop/joint_trajectory"}
    )
    call = lambda service, **kw: run.ask("call", service=f"/recorder_node/{service}", **kw)  # noqa: E731
    run.wait_for(lambda e: True, kind="recorder")
    assert call("stop", data=True)["success"] is False  # not recording yet
    assert call("start")["success"]
    assert call("start")["success"] is False  # already recording
    time.sleep(1.0)
    run.ask("set", intervention=True)
    time.sleep(0.6)
    run.ask("set", intervention=False)
    time.sleep(0.4)
    reply = call("stop", data=True)
    assert reply["success"], reply
    assert call("start")["success"]
    time.sleep(0.5)
    assert call("discard")["success"]
    assert call("start")["success"]
    time.sleep(0.5)
    assert call("stop", data=False)["success"]
    assert run.close() == 0

    with EpisodeStore.open(store_path) as store:
        assert store.num_episodes == 2  # the discarded one never landed
        first, meta = store.get_episode(0), store.episode_meta(0)
        assert store.episode_meta(1)["success"] is False
    assert meta["success"] is True and meta["task"] == "PickCube"
    steps = len(first["action"])
    assert 12 <= steps <= 24  # 10 Hz for ~2 s
    gaps = np.diff(first["timestamp"])
    assert np.median(gaps) == pytest.approx(0.1, abs=0.02)  # fixed rate, per-step timestamps
    assert (
        first["agentview_image"].shape == (steps, 120, 160, 3) and first["agentview_image"].dtype == np.uint8
    )
    assert first["robot0_eye_in_hand_image"].shape == (steps, 96, 96, 3)
    np.testing.assert_allclose(first["robot0_joint_pos"], 0.5)
    # action = the teleop's newest trajectory point (v, -v) + the gripper command 0.5
    assert first["action"].shape == (steps, 3)
    np.testing.assert_allclose(first["action"][:, 1], -first["action"][:, 0])
    np.testing.assert_allclose(first["action"][:, 2], 0.5)
    # the newest point at each tick: never an older one (the same one again when the teleop did not publish
    # between two ticks, as on a loaded machine), and it advances over the episode
    assert (np.diff(first["action"][:, 0]) >= 0).all() and first["action"][-1, 0] > first["action"][0, 0]
    flags = first["intervention"].astype(bool)
    assert flags.any() and not flags.all() and not flags[0]


def test_recorder_skips_steps_while_a_camera_is_stale(ros_run, tmp_path):
    run = ros_run(
        recorder_params(tmp_path / "demos.zarr"),
        node="recorder_node",
        robot={"teleop_topic": "/teleop/joint_trajectory"},
    )
    assert run.ask("call", service="/recorder_node/start")["success"]
    # every input live first (on a loaded machine the teleop's first action can arrive after the start), so the
    # skipping below can only come from the cameras going quiet
    run.wait_for(lambda e: e["message"] == "recording", kind="recorder")
    quiet_from = run.ask("set", publish_cameras=False)["now"]
    skipping = run.wait_for(lambda e: "skipping" in e["message"], kind="recorder", since=quiet_from)
    assert skipping["message"].startswith("skipping: stale /"), skipping["message"]
    assert any(topic in skipping["message"] for topic, *_ in CAMERAS)
    assert run.node.poll() is None


def test_camera_node_publishes_realsense_frames_from_its_own_process(ros_run, tmp_path):
    pytest.importorskip("pyrealsense2")
    from manip.real.cameras.synthetic import record_synthetic, synthetic_frame

    recording = record_synthetic(tmp_path / "cam.db3", serial="SIM0042", frames=60, width=32, height=24)
    params = {
        "names": ["front"],
        "playback_files": [str(recording)],
        "width": 32,
        "height": 24,
        "camera_python": sys.executable,  # the main venv has pyrealsense2; the ROS venv does not
    }
    topics = ["/front/color/image_raw", "/front/aligned_depth_to_color/image_raw"]
    run = ros_run(params, node="camera_node", robot={"cameras": [], "watch_images": topics})
    color = run.wait_for(lambda e: True, kind=f"image:{topics[0]}")
    depth = run.wait_for(lambda e: True, kind=f"image:{topics[1]}")
    assert (color["encoding"], color["height"], color["width"]) == ("rgb8", 24, 32)
    assert (depth["encoding"], depth["height"], depth["width"]) == ("16UC1", 24, 32)
    red = color["head"][0]
    expected, _ = synthetic_frame(red, 32, 24)
    assert color["head"] == expected.reshape(-1)[:12].tolist()  # the recorded pixels, unchanged
    assert color["stamp"] > 0
    assert "serial SIM0042" in run.log_tail()


def test_recorder_with_an_unusable_store_exits_with_one_line(ros_env, tmp_path):
    not_a_store = tmp_path / "notes.zarr"
    not_a_store.write_text("not a store")
    result = run_node_until_exit(ros_env, "recorder_node", store_path=str(not_a_store))
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr
        == f"recorder_node: {not_a_store}: not a Zarr store (expected a directory or a .zarr.zip file)\n"
    )


def test_recorder_records_every_key_of_the_observation_map_and_what_the_actions_mean(ros_run, tmp_path):
    (tmp_path / "map.yaml").write_text(
        "robot0_eef_pos: {topic: /eef_pose, type: pose, field: position}\n"
        "robot0_gripper_qpos: {topic: /joint_states, type: joint_state, field: position, joints: [j9, j8]}\n"
        "object: {topic: /object_state, type: array}\n"
        "agentview_image: {topic: /cam/agentview, type: image}\n"
    )
    store_path = tmp_path / "demos.zarr"
    params = {
        **recorder_params(store_path),
        "observation_map_file": str(tmp_path / "map.yaml"),
        "max_frame_age_s": 1.0,
    }
    robot = {
        "teleop_topic": "/teleop/joint_trajectory",
        "eef_pose": {"topic": "/eef_pose", "position": [1, 2, 3], "quaternion": [0, 0, 0, 1]},
        "arrays": {"/object_state": list(range(10))},
    }
    run = ros_run(params, node="recorder_node", robot=robot)
    assert run.ask("call", service="/recorder_node/start")["success"]
    run.wait_for(lambda e: e["message"] == "recording", kind="recorder")
    time.sleep(0.8)
    assert run.ask("call", service="/recorder_node/stop", data=True)["success"]
    assert run.close() == 0
    with EpisodeStore.open(store_path) as store:
        episode, attrs = store.get_episode(0), store.attrs
        assert {"robot0_eef_pos", "robot0_gripper_qpos", "object", "agentview_image"} <= set(store.keys)
        assert "robot0_joint_pos" not in store.keys  # the map replaces the camera/joint parameters
    np.testing.assert_allclose(
        episode["robot0_eef_pos"], np.tile([1.0, 2.0, 3.0], (len(episode["action"]), 1))
    )
    np.testing.assert_allclose(episode["object"][0], np.arange(10.0))
    assert episode["robot0_gripper_qpos"].shape[1:] == (2,)
    assert attrs["control_rate"] == 10.0 and attrs["action_semantics"]["space"] == "joint_position"
    assert attrs["observation_map"]["robot0_gripper_qpos"]["joints"] == ["j9", "j8"]
