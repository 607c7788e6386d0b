"""`manip data convert episode.mcap out.zarr`: a rosbag2 written here (rosbags' MCAP / SQLite writer, real CDR
messages) becomes one episode resampled at a fixed rate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

rosbags = pytest.importorskip("rosbags")

from rosbags.rosbag2 import StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

from manip.data.store import EpisodeStore  # noqa: E402

TS = get_typestore(Stores.ROS2_JAZZY)
T = TS.types
SEC = 1_000_000_000
START = 1_700_000_000 * SEC
JOINTS = ["j1", "j2", "j3"]


def header(t_ns: int):
    stamp = T["builtin_interfaces/msg/Time"](sec=t_ns // SEC, nanosec=t_ns % SEC)
    return T["std_msgs/msg/Header"](stamp=stamp, frame_id="")


def frame(i: int, h: int = 6, w: int = 8) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = i % 256, 10, 200
    return img


def write_bag(path: Path, storage=StoragePlugin.MCAP, with_action: bool = True) -> Path:
    """2 s: agentview rgb8 and wrist bgr8 at 30 Hz, wrist PNG-compressed at 15 Hz, joint states at 50 Hz (names
    shuffled), a trajectory command at 10 Hz, gripper at 10 Hz, intervention true from 1.0 s to 1.5 s."""
    import imagecodecs

    messages = []
    for i in range(60):
        t = START + i * SEC // 30
        img = frame(i)
        messages.append(("/agentview/image_raw", T["sensor_msgs/msg/Image"], t, _image(t, img, "rgb8")))
        messages.append(("/side/image_raw", T["sensor_msgs/msg/Image"], t, _image(t, img[..., ::-1], "bgr8")))
        if i % 2 == 0:
            png = T["sensor_msgs/msg/CompressedImage"](
                header=header(t),
                format="rgb8; png compressed",
                data=np.frombuffer(imagecodecs.png_encode(img), np.uint8),
            )
            messages.append(("/wrist/image_raw/compressed", T["sensor_msgs/msg/CompressedImage"], t, png))
    for i in range(100):
        t = START + i * SEC // 50
        order = [2, 0, 1] if i % 2 else [0, 1, 2]
        js = T["sensor_msgs/msg/JointState"](
            header=header(t),
            name=[JOINTS[k] for k in order],
            position=np.array([float(k) + i / 100 for k in order]),
            velocity=np.array([], float),
            effort=np.array([], float),
        )
        messages.append(("/joint_states", T["sensor_msgs/msg/JointState"], t, js))
    for i in range(20):
        t = START + i * SEC // 10 + SEC // 1000  # 1 ms after each step boundary
        if with_action:
            point = T["trajectory_msgs/msg/JointTrajectoryPoint"](
                positions=np.array([i, i + 0.5, i + 0.25]),
                velocities=np.array([], float),
                accelerations=np.array([], float),
                effort=np.array([], float),
                time_from_start=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=100_000_000),
            )
            traj = T["trajectory_msgs/msg/JointTrajectory"](
                header=header(t), joint_names=JOINTS, points=[point]
            )
            messages.append(("/arm/joint_trajectory", T["trajectory_msgs/msg/JointTrajectory"], t, traj))
        messages.append(
            ("/gripper_command", T["std_msgs/msg/Float64"], t, T["std_msgs/msg/Float64"](data=-1.0 + i * 0.1))
        )
        flag = T["std_msgs/msg/Bool"](data=10 <= i < 15)
        messages.append(("/teleop/intervention", T["std_msgs/msg/Bool"], t, flag))
    messages.sort(key=lambda m: m[2])
    with Writer(path, version=9, storage_plugin=storage) as writer:
        connections = {}
        for topic, msgtype, t, msg in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype.__msgtype__, typestore=TS)
            writer.write(connections[topic], t, TS.serialize_cdr(msg, msgtype.__msgtype__))
    return path


def _image(t: int, img: np.ndarray, encoding: str):
    h, w, _ = img.shape
    return T["sensor_msgs/msg/Image"](
        header=header(t),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=w * 3,
        data=img.reshape(-1).copy(),
    )


def manip_convert(src: Path, dst: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-P", "-m", "manip.cli.main", "data", "convert", str(src), str(dst)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    return write_bag(tmp_path_factory.mktemp("bags") / "episode")


def test_mcap_file_converts_to_one_resampled_episode(bag, tmp_path):
    (mcap,) = bag.glob("*.mcap")
    result = manip_convert(mcap, tmp_path / "out.zarr")
    assert result.returncode == 0, result.stderr
    with EpisodeStore.open(tmp_path / "out.zarr") as store:
        assert store.num_episodes == 1
        ep = store.get_episode(0)
        meta = store.episode_meta(0)
    assert meta["task"] == "real" and meta["source"].startswith("rosbag2:")
    steps = len(ep["action"])
    assert 18 <= steps <= 20  # 10 Hz over the ~1.9 s where every topic has spoken
    np.testing.assert_allclose(np.diff(ep["timestamp"]), 0.1, atol=1e-6)
    for k in range(steps):
        t = ep["timestamp"][k] - START / SEC
        i = int(np.floor((t - 0.001) * 10 + 1e-6))  # newest command logged at or before the step
        np.testing.assert_allclose(ep["action"][k], [i, i + 0.5, i + 0.25, -1.0 + i * 0.1], atol=1e-5)
        assert bool(ep["intervention"][k]) == (10 <= i < 15)
        j = int(np.floor(t * 30 + 1e-6))
        np.testing.assert_array_equal(ep["agentview_image"][k], frame(j))
        np.testing.assert_array_equal(ep["side_image"][k], frame(j))  # bgr8 converted to RGB
        np.testing.assert_array_equal(ep["wrist_image"][k], frame(j - j % 2))  # PNG, 15 Hz
        m = int(np.floor(t * 50 + 1e-6))
        np.testing.assert_allclose(
            ep["robot0_joint_pos"][k], [0 + m / 100, 1 + m / 100, 2 + m / 100], atol=1e-6
        )
    assert ep["agentview_image"].dtype == np.uint8


def test_sqlite_bag_directory_converts_too(tmp_path):
    bag = write_bag(tmp_path / "sqlite_bag", storage=StoragePlugin.SQLITE3)
    result = manip_convert(bag, tmp_path / "out.zarr")
    assert result.returncode == 0, result.stderr
    with EpisodeStore.open(tmp_path / "out.zarr") as store:
        assert store.num_episodes == 1 and store.num_steps >= 18


def test_bag_without_an_action_topic_is_a_one_line_error(tmp_path):
    bag = write_bag(tmp_path / "no_action", with_action=False)
    (mcap,) = bag.glob("*.mcap")
    result = manip_convert(mcap, tmp_path / "out.zarr")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "no action topic" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"manip data: {mcap}: no action topic")  # names the bag
    assert not (tmp_path / "out.zarr").exists()


def test_a_sidecar_mapping_picks_topics_keys_and_rate(bag, tmp_path):
    (mcap,) = bag.glob("*.mcap")
    local = tmp_path / mcap.name
    local.symlink_to(mcap)
    sidecar = tmp_path / (mcap.name + ".manip.yaml")
    sidecar.write_text("rate_hz: 5\ncameras: {/side/image_raw: front_image}\ntask: Lift\n")
    result = manip_convert(local, tmp_path / "out.zarr")
    assert result.returncode == 0, result.stderr
    with EpisodeStore.open(tmp_path / "out.zarr") as store:
        ep = store.get_episode(0)
        assert store.episode_meta(0)["task"] == "Lift"
    assert "front_image" in ep and "agentview_image" not in ep and "wrist_image" not in ep
    np.testing.assert_allclose(np.diff(ep["timestamp"]), 0.2, atol=1e-6)
    sidecar.write_text("rate_hz: 5\nframes_per_second: 3\n")
    result = manip_convert(local, tmp_path / "bad.zarr")
    assert result.returncode != 0 and "frames_per_second" in result.stderr


def test_a_damaged_mcap_is_refused_not_converted_short(bag, tmp_path):
    (mcap,) = bag.glob("*.mcap")
    data = bytearray(mcap.read_bytes())
    third = len(data) // 3
    data[third : third + 3000] = b"A" * 3000  # overwrite part of the message data
    damaged = tmp_path / "damaged.mcap"
    damaged.write_bytes(bytes(data))
    result = manip_convert(damaged, tmp_path / "out.zarr")
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith(f"manip data: {damaged}: ") and result.stderr.count("\n") == 1, (
        result.stderr
    )
    assert not (tmp_path / "out.zarr").exists()
