"""Image decoding (shared by the node and the rosbag converter) and the node's observation assembly: numpy
only, so these run in the main test process without rclpy."""

from __future__ import annotations

from types import SimpleNamespace

import imagecodecs
import numpy as np
import pytest
from real.observation import ObservationAssembler
from real.observation_map import MapError, read_observation_map, sources_from_params

from manip.core.specs import FeatureSpec, Spec
from manip.real.cameras.encodings import (
    ImageError,
    array_to_image_fields,
    compressed_to_array,
    image_to_array,
    image_to_rgb,
    resize_nearest,
)
from real import semantics
from tests.ros.conftest import PACKAGE

RNG = np.random.default_rng(0)


def image_msg(array, encoding, **changes):
    return SimpleNamespace(**{**array_to_image_fields(array, encoding), **changes})


def test_rgb8_and_depth_round_trip_and_row_padding_is_skipped():
    rgb = RNG.integers(0, 255, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_array(image_msg(rgb, "rgb8")), rgb)
    padded = np.zeros((5, 7 * 3 + 4), np.uint8)
    padded[:, :21] = rgb.reshape(5, 21)
    msg = SimpleNamespace(height=5, width=7, encoding="rgb8", is_bigendian=0, step=25, data=padded.tobytes())
    np.testing.assert_array_equal(image_to_array(msg), rgb)
    depth = RNG.integers(0, 4000, (4, 6), dtype=np.uint16)
    np.testing.assert_array_equal(image_to_array(image_msg(depth, "16UC1"), "16UC1")[..., 0], depth)
    big = SimpleNamespace(
        height=4, width=6, encoding="16UC1", is_bigendian=1, step=12, data=depth.astype(">u2").tobytes()
    )
    np.testing.assert_array_equal(image_to_array(big, "16UC1")[..., 0], depth)


def test_wrong_encodings_and_short_data_are_refused_with_the_reason():
    rgb = np.zeros((2, 3, 3), np.uint8)
    with pytest.raises(ImageError, match="'bgr8', expected 'rgb8'"):
        image_to_array(image_msg(rgb, "bgr8"))
    with pytest.raises(ImageError, match="'32FC1', expected '16UC1'"):
        image_to_array(image_msg(np.zeros((2, 3), np.float32), "32FC1"), "16UC1")
    with pytest.raises(ImageError, match="bytes"):
        image_to_array(image_msg(rgb, "rgb8", data=b"\0" * 5))
    np.testing.assert_array_equal(image_to_rgb(image_msg(rgb[..., ::-1] + 1, "bgr8")), rgb + 1)


def test_compressed_png_is_exact_jpeg_is_close_and_garbage_is_refused():
    rgb = RNG.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    png = SimpleNamespace(format="rgb8; png compressed", data=imagecodecs.png_encode(rgb))
    np.testing.assert_array_equal(compressed_to_array(png), rgb)
    flat = np.full((16, 16, 3), 120, np.uint8)
    jpeg = SimpleNamespace(format="jpeg", data=imagecodecs.jpeg8_encode(flat, level=95))
    assert np.abs(compressed_to_array(jpeg).astype(int) - 120).max() <= 2
    with pytest.raises(ImageError, match="neither JPEG nor PNG"):
        compressed_to_array(SimpleNamespace(format="jpeg", data=b"not an image"))
    with pytest.raises(ImageError, match="BGR"):
        compressed_to_array(SimpleNamespace(format="bgr8; jpeg compressed bgr8", data=jpeg.data))


def test_resize_nearest_picks_evenly_spaced_pixels():
    img = np.arange(4 * 6).reshape(4, 6, 1)
    out = resize_nearest(img, 2, 3)
    np.testing.assert_array_equal(out[..., 0], [[0, 2, 4], [12, 14, 16]])
    assert resize_nearest(img, 4, 6) is img


SPEC = Spec(
    (
        FeatureSpec("robot0_proprio", (3,)),
        FeatureSpec("agentview_image", (4, 4, 3), dtype="uint8", kind="rgb"),
    )
)


@pytest.fixture
def assembler():
    sources = sources_from_params(
        ["agentview_image"], ["/cam"], "/joint_states", ["a", "b", "c"], "robot0_proprio"
    )
    a = ObservationAssembler(sources, 0.2, 0.1)
    assert a.set_needs(SPEC) == []
    return a


def joints(a, names, positions, stamp):
    a.put_joint_state("/joint_states", names, {"position": positions}, stamp)


def test_assembler_builds_the_observation_in_spec_shape(assembler):
    assembler.put_frame("agentview_image", np.full((8, 8, 3), 9, np.uint8), stamp=10.0)
    joints(assembler, ["c", "a", "b"], [3.0, 1.0, 2.0], stamp=10.0)
    obs, fault = assembler.assemble(10.05)
    assert fault == ""
    np.testing.assert_array_equal(obs["robot0_proprio"], [1.0, 2.0, 3.0])  # reordered by name
    assert obs["robot0_proprio"].dtype == np.float32
    assert obs["agentview_image"].shape == (4, 4, 3) and obs["agentview_image"].dtype == np.uint8


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda a: joints(a, ["a", "b", "c"], [0, 0, 0], 10.0), ["no message on /cam"]),
        (
            lambda a: (
                a.put_frame("agentview_image", np.zeros((4, 4, 3), np.uint8), 9.0),
                joints(a, ["a", "b", "c"], [0, 0, 0], 10.0),
            ),
            ["stale /cam", "0.20"],
        ),
        (
            lambda a: (
                a.put_frame("agentview_image", np.zeros((4, 4, 3), np.uint8), 10.0),
                joints(a, ["a", "x", "c"], [0, 0, 0], 10.0),
            ),
            ["/joint_states", "'b'"],
        ),
        (
            lambda a: (
                a.put_frame("agentview_image", np.zeros((4, 4, 3), np.uint8), 10.0),
                joints(a, ["a", "b", "c"], [0, np.nan, 0], 10.0),
            ),
            ["NaN"],
        ),
        (
            lambda a: (
                a.put_frame("agentview_image", None, 10.0, "encoding 'bgr8', expected 'rgb8'"),
                joints(a, ["a", "b", "c"], [0, 0, 0], 10.0),
            ),
            ["/cam", "bgr8"],
        ),
        (
            lambda a: (
                a.put_frame("agentview_image", np.zeros((4, 4, 1), np.uint8), 10.0),
                joints(a, ["a", "b", "c"], [0, 0, 0], 10.0),
            ),
            ["frame shape"],
        ),
    ],
    ids=["missing-camera", "stale-camera", "wrong-joint", "nan", "bad-encoding", "wrong-channels"],
)
def test_assembler_faults_name_the_topic_and_the_problem(assembler, setup, words):
    setup(assembler)
    obs, fault = assembler.assemble(10.05)
    assert obs is None
    for word in words:
        assert word in fault


def test_keys_the_policy_needs_but_no_topic_feeds_are_reported():
    a = ObservationAssembler(sources_from_params([], [], "/joint_states", ["a"], "robot0_proprio"), 0.2, 0.2)
    problems = a.set_needs(SPEC)
    assert len(problems) == 1 and "agentview_image" in problems[0]


# -- the observation map: every key a checkpoint needs, from the topic and field the map names ------------------
LIFT_MAP = """
robot0_eef_pos:      {topic: /eef_pose, type: pose, field: position}
robot0_eef_quat:     {topic: /eef_pose, type: pose, field: orientation}
robot0_gripper_qpos: {topic: /joint_states, type: joint_state, field: position, joints: [f1, f2]}
robot0_joint_vel:    {topic: /joint_states, type: joint_state, field: velocity, joints: [j2, j1]}
object:              {topic: /object_state, type: array, max_age_s: 0.5}
agentview_image:     {topic: /agentview/color/image_raw, type: image}
"""
LIFT_SPEC = Spec(
    (
        FeatureSpec("robot0_eef_pos", (3,)),
        FeatureSpec("robot0_eef_quat", (4,)),
        FeatureSpec("robot0_gripper_qpos", (2,)),
        FeatureSpec("robot0_joint_vel", (2,)),
        FeatureSpec("object", (10,)),
        FeatureSpec("agentview_image", (4, 4, 3), dtype="uint8", kind="rgb"),
    )
)


def test_the_map_feeds_several_low_dim_keys_from_one_message_each_by_field_and_joint_name(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text(LIFT_MAP)
    a = ObservationAssembler(read_observation_map(path), 0.1, 0.1)
    assert a.set_needs(LIFT_SPEC) == []
    assert sorted(a.topics()) == ["/agentview/color/image_raw", "/eef_pose", "/joint_states", "/object_state"]
    a.put_pose("/eef_pose", (1, 2, 3), (0, 0, 0.6, 0.8), "world", 10.0)
    a.put_joint_state(
        "/joint_states",
        ["j1", "j2", "f1", "f2"],
        {"position": [0.1, 0.2, 0.04, -0.04], "velocity": [1.0, 2.0, 0.0, 0.0], "effort": []},
        10.0,
    )
    a.put_array("/object_state", np.arange(10.0), 9.7)  # older than 0.1 s but within its own max_age_s
    a.put_frame("agentview_image", np.zeros((4, 4, 3), np.uint8), 10.0)
    obs, fault = a.assemble(10.05)
    assert fault == ""
    np.testing.assert_allclose(obs["robot0_eef_pos"], [1, 2, 3])
    np.testing.assert_allclose(obs["robot0_eef_quat"], [0, 0, 0.6, 0.8])
    np.testing.assert_allclose(obs["robot0_gripper_qpos"], [0.04, -0.04])
    np.testing.assert_allclose(
        obs["robot0_joint_vel"], [2.0, 1.0]
    )  # the map's joint order, not the message's
    np.testing.assert_allclose(obs["object"], np.arange(10.0))
    pose, fault = a.current_pose(10.05)
    assert fault == "" and pose.frame_id == "world"
    np.testing.assert_allclose(a.current_joints(["j2", "j1"], 10.05)[0], [0.2, 0.1])
    _, fault = a.assemble(10.25)
    assert fault.startswith("stale /eef_pose") or fault.startswith("stale /joint_states")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("k: {topic: /t, type: twist}", ["'k'", "twist", "joint_state"]),
        ("k: {topic: /t, type: joint_state}", ["'k'", "joints"]),
        ("k: {topic: /t, type: pose, field: yaw}", ["'k'", "yaw", "orientation"]),
        ("k: {topic: /t, type: array, topci: /x}", ["'k'", "topci"]),
        ("a: {topic: /t, type: array}\nb: {topic: /t, type: pose}", ["/t", "one message type"]),
        ("k: {topic: /t, type: depth, encoding: mono8}", ["mono8", "16UC1"]),
        ("[1, 2]", ["mapping"]),
    ],
    ids=["type", "joints", "field", "unknown-setting", "one-type-per-topic", "depth-encoding", "not-a-map"],
)
def test_a_bad_map_is_one_line_naming_the_key_and_the_fix(tmp_path, text, words):
    path = tmp_path / "map.yaml"
    path.write_text(text)
    with pytest.raises(MapError) as caught:
        read_observation_map(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    for word in words:
        assert word in message


def test_the_worked_example_map_parses():
    sources = read_observation_map(PACKAGE / "config" / "panda_realsense_map.yaml")
    assert {"agentview_image", "robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos"} <= set(sources)
    assert sources["robot0_eef_quat"].field == "orientation"


# -- action semantics: deltas become absolute targets as robosuite's OSC_POSE does ------------------------------
def test_delta_target_matches_robosuite_osc_goal():
    from manip.sim.render import import_robosuite

    import_robosuite()  # robosuite's settings for this process (upright images) before any robosuite import
    from robosuite.utils import transform_utils as T
    from robosuite.utils.control_utils import set_goal_orientation

    rng = np.random.default_rng(3)
    for _ in range(20):
        position = rng.normal(size=3)
        quaternion = T.random_quat(rng.random(3))  # x, y, z, w
        delta = rng.uniform(-1.2, 1.2, size=6)
        target_position, target_quaternion = semantics.delta_target(position, quaternion, delta, 0.05, 0.5)
        clipped = np.clip(delta, -1, 1)  # robosuite clips the input to [-1, 1] before scaling
        np.testing.assert_allclose(target_position, position + clipped[:3] * 0.05, atol=1e-12)
        goal = set_goal_orientation(clipped[3:] * 0.5, T.quat2mat(quaternion))
        np.testing.assert_allclose(T.quat2mat(target_quaternion), goal, atol=1e-6)  # robosuite: float32


def test_action_space_and_rate_checks():
    assert semantics.action_space("cartesian", {"space": "ee_delta"}) == ("ee_delta", "")
    space, problem = semantics.action_space("joint_trajectory", {"space": "ee_delta"})
    assert space == "ee_delta" and "allow_action_mismatch" in problem and "cartesian" not in problem
    space, problem = semantics.action_space("cartesian", {})  # a checkpoint that does not say: refused
    assert space == "ee_absolute" and "does not record what its actions mean" in problem
    assert semantics.rate_problem(0.0, 20.0) == "" and semantics.rate_problem(20.0, 20.0) == ""
    assert "allow_rate_mismatch" in semantics.rate_problem(10.0, 20.0)


def test_default_limits_widen_the_checkpoint_action_range():
    low, high = semantics.default_limits({"min": [-1.0, 0.0], "max": [1.0, 0.5]}, 2)
    np.testing.assert_allclose(low, [-1.2, -0.05])
    np.testing.assert_allclose(high, [1.2, 0.55])
    assert semantics.default_limits({}, 2) is None
    assert semantics.default_limits({"min": [0.0], "max": [1.0]}, 2) is None  # wrong size: no limits
