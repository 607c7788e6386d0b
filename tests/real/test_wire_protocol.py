"""msgpack + numpy extension: round trips, and frames that must be refused with a message naming the problem."""

from __future__ import annotations

import dataclasses

import msgpack
import numpy as np
import pytest

from manip.core.errors import ManipError
from manip.real.client.messages import check_keys, parse_infer, request_type
from manip.real.client.protocol import NDARRAY_EXT, ProtocolError, pack, unpack
from manip.real.synthetic import synthetic_metadata


@pytest.mark.parametrize(
    "arr",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.zeros((2, 96, 96, 3), dtype=np.uint8),
        np.array([True, False]),
        np.array(3.5, dtype=np.float64),
        np.zeros((0, 7), dtype=np.int16),
        np.arange(6, dtype=">i4").reshape(2, 3),
        np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    ],
)
def test_ndarray_round_trip(arr):
    back = unpack(pack({"a": arr}))["a"]
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)


def test_extension_payload_is_the_documented_layout():
    arr = np.arange(4, dtype="<f4").reshape(2, 2)
    ext = msgpack.unpackb(pack({"a": arr}), ext_hook=lambda code, data: (code, data))["a"]
    code, payload = ext
    assert code == NDARRAY_EXT
    assert msgpack.unpackb(payload) == ["<f4", [2, 2], arr.tobytes(order="C")]


def test_numpy_scalars_become_plain_numbers():
    assert unpack(pack({"x": np.float32(1.5), "n": np.int64(3)})) == {"x": 1.5, "n": 3}


def ext(payload) -> bytes:
    return msgpack.packb({"a": msgpack.ExtType(NDARRAY_EXT, msgpack.packb(payload))})


@pytest.mark.parametrize(
    ("frame", "words"),
    [
        (b"\xc1\xc1garbage", "not valid msgpack"),
        (msgpack.packb([1, 2]), "must be a msgpack map"),
        (ext(["|O", [1], b"x" * 8]), "not allowed"),
        (ext(["<f4", [2, 2], b"\x00" * 4]), "needs 16 bytes, got 4"),
        (ext(["<f4", [-1], b""]), "negative"),
        (ext("nonsense"), "bad ndarray extension"),
        (msgpack.packb({"a": msgpack.ExtType(9, b"")}), "unknown msgpack extension type 9"),
    ],
)
def test_bad_frames_are_refused_with_a_reason(frame, words):
    with pytest.raises(ProtocolError, match=words):
        unpack(frame)


def test_frame_size_limit_and_text_frames():
    with pytest.raises(ProtocolError, match="exceeds the limit"):
        unpack(pack({"a": np.zeros(1000)}), max_bytes=100)
    with pytest.raises(ProtocolError, match="text frames"):
        unpack("{}")


def test_object_arrays_cannot_be_sent():
    with pytest.raises(ProtocolError, match="dtype object"):
        pack({"a": np.array([{}], dtype=object)})


META = synthetic_metadata("lowdim")


def good_obs() -> dict:
    return {"robot0_proprio": np.zeros((2, 9), np.float64), "object": np.zeros((2, 10), np.float32)}


def test_parse_infer_accepts_a_good_request_and_casts_dtypes():
    req = parse_infer({"type": "infer", "id": 7, "obs": good_obs(), "t_obs": 1.5}, META)
    assert req.id == 7 and req.t_obs == 1.5
    assert req.obs["robot0_proprio"].dtype == np.float32


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda m: m.update(bogus=1), "unknown key"),
        (lambda m: m.pop("obs"), "missing key"),
        (lambda m: m["obs"].pop("object"), "missing key.*object"),
        (lambda m: m["obs"].update(extra=np.zeros(3)), "unexpected key.*extra"),
        (lambda m: m["obs"].update(object=np.zeros((2, 11))), "'object' has shape"),
        (lambda m: m["obs"].update(object=np.zeros((3, 10))), "n_obs_steps=2"),
        (lambda m: m["obs"].update(object=np.full((2, 10), np.nan)), "NaN"),
        (lambda m: m["obs"].update(object=[0.0] * 10), "not ndarrays"),
        (lambda m: m.update(t_obs="now"), "'t_obs' must be a number"),
        (lambda m: m.update(t_obs=float("nan")), "'t_obs' must be a finite number"),
        (lambda m: m.update(t_obs=float("-inf")), "'t_obs' must be a finite number"),
        (lambda m: m.update(instruction="lift the cube"), "takes no 'instruction'"),
        (lambda m: m.update(prefix=np.zeros((20, 7))), "'prefix' has shape"),
        (lambda m: m.update(prefix=np.full((2, 7), np.inf)), "finite"),
        (lambda m: m.update(steps=0), "'steps'"),
        (lambda m: m.update(instruction=3), "'instruction' must be a string"),
    ],
)
def test_parse_infer_names_the_problem(change, words):
    message = {"type": "infer", "id": 1, "obs": good_obs()}
    change(message)
    with pytest.raises(ManipError, match=words):
        parse_infer(message, META)


def test_t_obs_may_be_an_integer_number_of_seconds():
    assert parse_infer({"type": "infer", "id": 1, "obs": good_obs(), "t_obs": 3}, META).t_obs == 3.0


def test_a_policy_that_takes_an_instruction_requires_one():
    meta = dataclasses.replace(META, takes_instruction=True)
    message = {"type": "infer", "id": 1, "obs": good_obs()}
    with pytest.raises(ManipError, match="needs an 'instruction'"):
        parse_infer(message, meta)
    assert parse_infer({**message, "instruction": "lift the cube"}, meta).instruction == "lift the cube"


@pytest.mark.parametrize("kind", ["ping", "metadata"])
def test_every_request_type_has_exactly_its_keys(kind):
    check_keys({"type": kind, "id": 1}, kind)
    with pytest.raises(ManipError, match=f"unknown key.*extra for type '{kind}'"):
        check_keys({"type": kind, "id": 1, "extra": 0}, kind)
    with pytest.raises(ManipError, match=f"missing key.*id for type '{kind}'"):
        check_keys({"type": kind}, kind)


def test_message_type_is_required():
    with pytest.raises(ProtocolError, match="unknown message type"):
        request_type({"id": 1})
