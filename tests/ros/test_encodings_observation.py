"""Image decoding (shared by the node and the rosbag converter) and the node's observation assembly: numpy
only, so these run in the main test process without rclpy."""

from __future__ import annotations

from types import SimpleNamespace

import imagecodecs
import numpy as np
import pytest
from real.observation import ObservationAssembler

from manip.core.specs import FeatureSpec, Spec
from manip.real.cameras.encodings import (
    ImageError,
    array_to_image_fields,
    compressed_to_array,
    image_to_array,
    image_to_rgb,
    resize_nearest,
)

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
    a = ObservationAssembler(
        {"agentview_image": "/cam"}, "/joint_states", ["a", "b", "c"], "robot0_proprio", 0.2, 0.1
    )
    assert a.set_needs(SPEC) == []
    return a


def test_assembler_builds_the_observation_in_spec_shape(assembler):
    assembler.put_frame("agentview_image", np.full((8, 8, 3), 9, np.uint8), stamp=10.0)
    assembler.put_joint_state(["c", "a", "b"], [3.0, 1.0, 2.0], stamp=10.0)
    obs, fault = assembler.assemble(10.05)
    assert fault == ""
    np.testing.assert_array_equal(obs["robot0_proprio"], [1.0, 2.0, 3.0])  # reordered by name
    assert obs["robot0_proprio"].dtype == np.float32
    assert obs["agentview_image"].shape == (4, 4, 3) and obs["agentview_image"].dtype == np.uint8


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda a: a.put_joint_state(["a", "b", "c"], [0, 0, 0], 10.0), ["no message on /cam"]),
        (
            lambda a: (
                a.put_frame("agentview_image", np.zeros((4, 4, 3), np.uint8), 9.0),
                a.put_joint_state(["a", "b", "c"], [0, 0, 0], 10.0),
            ),
            ["stale /cam", "0.20"],
        ),
        (
            lambda a: (
                a.put_frame("agentview_image", np.zeros((4, 4, 3), np.uint8), 10.0),
                a.put_joint_state(["a", "x", "c"], [0, 0, 0], 10.0),
            ),
            ["/joint_states", "'b'"],
        ),
        (
            lambda a: (
                a.put_frame("agentview_image", np.zeros((4, 4, 3), np.uint8), 10.0),
                a.put_joint_state(["a", "b", "c"], [0, np.nan, 0], 10.0),
            ),
            ["NaN"],
        ),
        (
            lambda a: (
                a.put_frame("agentview_image", None, 10.0, "encoding 'bgr8', expected 'rgb8'"),
                a.put_joint_state(["a", "b", "c"], [0, 0, 0], 10.0),
            ),
            ["/cam", "bgr8"],
        ),
        (
            lambda a: (
                a.put_frame("agentview_image", np.zeros((4, 4, 1), np.uint8), 10.0),
                a.put_joint_state(["a", "b", "c"], [0, 0, 0], 10.0),
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
    a = ObservationAssembler({}, "/joint_states", ["a"], "robot0_proprio", 0.2, 0.2)
    problems = a.set_needs(SPEC)
    assert len(problems) == 1 and "agentview_image" in problems[0]
