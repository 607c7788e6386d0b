"""The protocol's rules as docs/PROTOCOL.md states them, checked on a real ``manip serve`` on 127.0.0.1: which
errors carry ``id: nil``, strict keys for every request type, ``t_obs``, ``instruction``, the message size
limit, health's content type, the Bearer scheme, batching next to an idle connection, and the document's own
minimal client. (The bit-exact prefix is in test_checkpoint_serving.py: it needs a real policy.)"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.request
from pathlib import Path

import msgpack
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from manip.real.client.connection import AsyncPolicyClient, PolicyClient
from manip.real.client.protocol import NDARRAY_EXT, PROTOCOL_VERSION, pack, unpack
from manip.real.synthetic import synthetic_obs

PROTOCOL_DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"


def infer(request_id=1, **keys) -> dict:
    return {"type": "infer", "id": request_id, "obs": synthetic_obs("lowdim", 1.0), **keys}


def exchange(ws, frame) -> dict:
    ws.send(frame)
    return unpack(ws.recv(timeout=10))


@pytest.fixture
def raw(lowdim_server):
    """A raw websocket to the synthetic server, its metadata already read."""
    with connect(lowdim_server.url, compression=None) as ws:
        assert unpack(ws.recv(timeout=10))["type"] == "metadata"
        yield ws


NIL_ID_CASES = [
    ("a text message", "a text message", "bad_frame"),
    ("bytes that are not msgpack", b"\xc1\xc1", "bad_frame"),
    ("msgpack that is not a map", msgpack.packb([1, 2]), "bad_frame"),
    (
        "a bad ndarray extension next to an id",
        msgpack.packb({"type": "infer", "id": 5, "obs": msgpack.ExtType(NDARRAY_EXT, b"junk")}),
        "bad_frame",
    ),
    (
        "an unknown ext code next to an id",
        msgpack.packb({"id": 6, "x": msgpack.ExtType(9, b"")}),
        "bad_frame",
    ),
    ("a map without id or type", pack({"obs": 1}), "bad_frame"),
    ("an infer without id", pack({"type": "infer", "obs": synthetic_obs("lowdim")}), "bad_request"),
    ("a ping without id", pack({"type": "ping"}), "bad_request"),
    ("a metadata request without id", pack({"type": "metadata"}), "bad_request"),
    ("an explicit nil id", pack({"type": "ping", "id": None, "x": 1}), "bad_request"),
]


@pytest.mark.parametrize(("case", "frame", "code"), NIL_ID_CASES, ids=[c[0] for c in NIL_ID_CASES])
def test_errors_carry_a_nil_id_exactly_when_the_message_has_none(raw, case, frame, code):
    reply = exchange(raw, frame)
    assert reply["type"] == "error" and reply["code"] == code, reply
    assert "id" in reply and reply["id"] is None, reply


ECHOED_ID_CASES = [
    ("an unknown type", {"type": "shout", "id": 11}, "bad_frame", "unknown message type"),
    ("a missing type", {"id": 12, "obs": {}}, "bad_frame", "unknown message type"),
    ("a bad observation", {"type": "infer", "id": 13, "obs": {}}, "bad_request", "missing key"),
    (
        "an unknown ping key",
        {"type": "ping", "id": 14, "x": 1},
        "bad_request",
        "unknown key(s) x for type 'ping'",
    ),
    (
        "an unknown metadata key",
        {"type": "metadata", "id": [1, "a"], "verbose": True},
        "bad_request",
        "unknown key(s) verbose for type 'metadata'",
    ),
    ("an unknown infer key", {**infer(15), "x": 1}, "bad_request", "unknown key(s) x for type 'infer'"),
]


@pytest.mark.parametrize(
    ("case", "message", "code", "words"), ECHOED_ID_CASES, ids=[c[0] for c in ECHOED_ID_CASES]
)
def test_errors_echo_the_id_of_a_decodable_map(raw, case, message, code, words):
    reply = exchange(raw, pack(message))
    assert reply["type"] == "error" and reply["code"] == code and reply["id"] == message["id"], reply
    assert words in reply["error"], reply


def test_overloaded_replies_carry_the_request_id(server_factory):
    srv = server_factory(
        "--synthetic", "lowdim", "--port", "0", "--synthetic-ms", "1000", "--max-queue", "1", "--warmup", "0"
    )
    with connect(srv.url, compression=None) as ws:
        assert unpack(ws.recv(timeout=10))["server"]["max_queue"] == 1
        ws.send(pack(infer(1)))
        time.sleep(0.3)  # the first request is in the forward pass, the queue is empty
        ws.send(pack(infer(2)))  # waits in the queue
        reply = exchange(ws, pack(infer(3)))
        assert reply["type"] == "error" and reply["code"] == "overloaded" and reply["id"] == 3, reply
        answered = {unpack(ws.recv(timeout=10))["id"] for _ in range(2)}
        assert answered == {1, 2}


def test_ping_and_metadata_with_their_keys_are_answered(raw):
    assert exchange(raw, pack({"type": "ping", "id": "p"})) == {
        "type": "pong",
        "id": "p",
        "t_server": pytest.approx(time.time(), abs=60),
    }
    meta = exchange(raw, pack({"type": "metadata", "id": 7}))
    assert meta["type"] == "metadata" and meta["id"] == 7 and meta["protocol"] == PROTOCOL_VERSION == 2


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_t_obs_is_refused(raw, value):
    reply = exchange(raw, pack(infer(21, t_obs=value)))
    assert reply["code"] == "bad_request" and reply["id"] == 21 and "'t_obs'" in reply["error"], reply
    assert "finite" in reply["error"]


def test_integer_t_obs_is_seconds_and_echoed_as_a_float(raw):
    reply = exchange(raw, pack(infer(22, t_obs=3)))
    assert reply["type"] == "chunk" and reply["t_obs"] == 3.0 and isinstance(reply["t_obs"], float)
    assert exchange(raw, pack(infer(23, t_obs=None)))["t_obs"] is None
    reply = exchange(raw, pack(infer(24, t_obs=True)))
    assert reply["code"] == "bad_request" and "'t_obs' must be a number" in reply["error"]


def test_an_instruction_to_a_policy_that_takes_none_is_refused(raw, lowdim_server):
    reply = exchange(raw, pack(infer(31, instruction="lift the cube")))
    assert reply["type"] == "error" and reply["code"] == "bad_request" and reply["id"] == 31, reply
    assert "takes no 'instruction'" in reply["error"]
    with PolicyClient(lowdim_server.url) as client:
        assert client.metadata.takes_instruction is False
        assert client.server_info["takes_instruction"] is False
        # the reference client leaves the instruction out for such a policy (a task's instruction is harmless)
        assert client.infer(synthetic_obs("lowdim", 2.0), instruction="lift the cube").chunk[0, 0] == 2.0


def test_the_size_limit_applies_to_the_whole_fragmented_message(server_factory):
    srv = server_factory(
        "--synthetic", "lowdim", "--port", "0", "--max-frame-bytes", "65536", "--warmup", "0"
    )
    with connect(srv.url, compression=None, max_size=None) as ws:
        assert unpack(ws.recv(timeout=10))["server"]["max_frame_bytes"] == 65536
        frame = pack(infer(41))
        ws.send([frame[:100], frame[100:]])  # one message in two frames, under the limit: served
        assert unpack(ws.recv(timeout=10))["id"] == 41
        with pytest.raises(ConnectionClosed) as closed:  # the close may arrive while the second frame is sent
            ws.send([b"\x00" * 40_000, b"\x00" * 40_000])  # every frame under the limit, the message over it
            ws.recv(timeout=10)
        assert closed.value.rcvd.code == 1009


def test_health_is_served_as_json(lowdim_server):
    with urllib.request.urlopen(f"http://127.0.0.1:{lowdim_server.port}/healthz", timeout=10) as resp:
        assert resp.headers.get_content_type() == "application/json"
        assert resp.headers.get_all("Content-Type") == ["application/json"]


def test_bearer_scheme_is_case_insensitive_and_401_names_it(server_factory, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    srv = server_factory(
        "--synthetic", "lowdim", "--port", "0", "--token-file", str(token_file), "--warmup", "0"
    )
    for value in ("bearer s3cret", "BEARER s3cret", "Bearer   s3cret "):
        with connect(srv.url, additional_headers={"Authorization": value}, compression=None) as ws:
            assert unpack(ws.recv(timeout=10))["server"]["auth"] is True
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        with pytest.raises(InvalidStatus) as refused:
            connect(srv.url, additional_headers=headers, compression=None)
        assert refused.value.response.status_code == 401
        assert refused.value.response.headers.get_all("WWW-Authenticate") == ["Bearer"]


def test_an_idle_connection_does_not_make_a_lone_client_wait(server_factory):
    srv = server_factory("--synthetic", "lowdim", "--port", "0", "--batch-wait-ms", "500", "--warmup", "0")
    with connect(srv.url, compression=None) as idle, PolicyClient(srv.url) as active:
        idle.recv(timeout=10)
        for value in range(5):
            reply = active.infer(synthetic_obs("lowdim", float(value)))
            assert reply.chunk[0, 0] == value
            assert reply.timings["wait_ms"] == 0.0 and reply.timings["batch_size"] == 1, reply.timings
        assert exchange(idle, pack({"type": "ping", "id": 1}))["type"] == "pong"  # a ping is not activity
        assert active.infer(synthetic_obs("lowdim")).timings["wait_ms"] == 0.0


def test_the_batcher_waits_for_another_active_client(server_factory):
    srv = server_factory("--synthetic", "lowdim", "--port", "0", "--batch-wait-ms", "5000", "--warmup", "0")

    async def main():
        async with AsyncPolicyClient(srv.url) as first, AsyncPolicyClient(srv.url) as second:
            await second.infer(synthetic_obs("lowdim", 2.0))  # the second client is now active

            async def later():
                await asyncio.sleep(0.2)
                return await second.infer(synthetic_obs("lowdim", 2.0))

            return await asyncio.gather(first.infer(synthetic_obs("lowdim", 1.0)), later())

    replies = asyncio.run(main())
    assert [r.chunk[0, 0] for r in replies] == [1.0, 2.0]
    for reply in replies:
        assert reply.timings["batch_size"] == 2, reply.timings
    assert replies[0].timings["wait_ms"] > 0


def test_the_documented_minimal_client_works(lowdim_server):
    code = re.search(r"```python\n(.*?)```", PROTOCOL_DOC.read_text(), re.S).group(1)
    code = code.replace("ws://127.0.0.1:8000", lowdim_server.url)
    namespace: dict = {}
    exec(compile(code, str(PROTOCOL_DOC), "exec"), namespace)
    reply = namespace["reply"]
    assert reply["type"] == "chunk" and reply["id"] == 1
    assert reply["chunk"].shape == (16, 7) and reply["chunk"].dtype == np.float32
