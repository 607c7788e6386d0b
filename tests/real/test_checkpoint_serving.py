"""``manip serve --checkpoint`` with a real (tiny) policy checkpoint: metadata, chunks, RTC prefix, batching."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from websockets.sync.client import connect

from manip.policies.serving import LocalPolicySource
from manip.real.client.connection import PolicyClient, ServerError
from manip.real.client.loop import ChunkedController, executor_config_for
from manip.real.client.protocol import pack, unpack
from manip.real.synthetic import synthetic_obs


def test_metadata_describes_the_checkpoint(checkpoint_server, tiny_checkpoint):
    with PolicyClient(checkpoint_server.url) as client:
        meta = client.metadata
    local = LocalPolicySource.from_checkpoint(tiny_checkpoint).metadata
    assert meta == local
    assert meta.policy_type == "chunk" and meta.horizon == 8 and meta.n_action_steps == 4
    assert meta.action_offset == -1 and meta.checkpoint_id.startswith("tiny@")


def test_an_episode_seed_fixes_the_sampling_noise(tiny_checkpoint):
    source = LocalPolicySource.from_checkpoint(tiny_checkpoint, device="cpu")
    obs = synthetic_obs("lowdim", 0.3)
    chunks = []
    for seed in (7, 7, 8):
        source.start_episode(seed)
        chunks.append(source.request(obs, 0.0))
    np.testing.assert_array_equal(chunks[0], chunks[1])
    assert not np.allclose(chunks[0], chunks[2])


def test_warm_up_leaves_no_sampling_state_for_the_first_client(tmp_path):
    from manip.policies.sampling import with_sampling
    from manip.real.server import PolicyServer, ServerConfig, dummy_observation
    from tests.sim.tiny_checkpoint import lift_checkpoint

    checkpoint = with_sampling(
        lift_checkpoint(tmp_path / "base"), tmp_path / "coh", candidates=4, selector="coherence"
    )
    source = LocalPolicySource.from_checkpoint(checkpoint, device="cpu")
    server = PolicyServer(source, ServerConfig(port=0, warmup=1))
    try:
        source.request(dummy_observation(source), 0.0)
        assert source.policy._previous_chunk is not None  # coherence keeps the chunk it chose
        server.warm_up()
        assert source.policy._previous_chunk is None
    finally:
        server.worker.shutdown()


def test_chunks_and_rtc_prefix(checkpoint_server):
    with PolicyClient(checkpoint_server.url) as client:
        reply = client.infer(synthetic_obs("lowdim", 0.3))
        assert reply.chunk.shape == (8, 7) and np.isfinite(reply.chunk).all()
        assert client.infer(synthetic_obs("lowdim", 0.3), steps=1).chunk.shape == (8, 7)
        assert reply.timings["infer_ms"] > 0
        with pytest.raises(ServerError, match="'prefix' has shape"):
            client.request(synthetic_obs("lowdim"), 0.0, prefix=np.zeros((3, 6), np.float32))


def test_the_served_prefix_is_bit_identical_to_the_sent_one(checkpoint_server):
    # these values move by 1 ulp through the policy's normalize → hold → unnormalize
    prefix = np.linspace(-0.5, 0.5, 21, dtype=np.float32).reshape(3, 7)
    with connect(checkpoint_server.url, compression=None) as ws:
        ws.recv(timeout=10)
        for request_id, sent in enumerate((prefix, prefix.astype(">f4"), prefix.astype(np.float64))):
            obs = synthetic_obs("lowdim", 0.3)
            ws.send(pack({"type": "infer", "id": request_id, "obs": obs, "prefix": sent}))
            reply = unpack(ws.recv(timeout=30))
            assert reply["type"] == "chunk", reply
            assert reply["chunk"][:3].tobytes() == prefix.tobytes()
            assert np.isfinite(reply["chunk"][3:]).all()
    with PolicyClient(checkpoint_server.url) as client:
        np.testing.assert_array_equal(
            client.request(synthetic_obs("lowdim", 0.3), 0.0, prefix=prefix)[:3], prefix
        )


def test_concurrent_clients_share_forward_passes(checkpoint_server):
    sizes: list[float] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def one(seed: int) -> None:
        try:  # a CPU shared with other work can make a forward pass slow: a generous request timeout
            with PolicyClient(checkpoint_server.url, request_timeout_s=120) as client:
                barrier.wait()
                for _ in range(4):
                    sizes.append(client.infer(synthetic_obs("lowdim", seed)).timings["batch_size"])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors
    assert len(sizes) == 24 and max(sizes) > 1, sizes


def test_sim_style_loop_through_the_checkpoint_server(checkpoint_server):
    with PolicyClient(checkpoint_server.url) as client:
        ctl = ChunkedController(client, executor_config_for(client.metadata, mode="rtc"))
        step = {k: v[-1] for k, v in synthetic_obs("lowdim", 0.1).items()}
        out = [ctl.act(step, k * 0.05) for k in range(12)]
    assert not any(a.held for a in out)
    assert len(ctl.request_seconds) == 3  # 12 ticks / 4 actions per chunk


@pytest.mark.slow
def test_a_language_policy_requires_an_instruction(server_factory, vla_checkpoint):
    srv = server_factory("--checkpoint", str(vla_checkpoint), "--port", "0", "--warmup", "1")
    obs = synthetic_obs("lowdim", 0.3)
    with connect(srv.url, compression=None) as ws:
        meta = unpack(ws.recv(timeout=30))
        assert meta["policy_type"] == "vla" and meta["takes_instruction"] is True
        ws.send(pack({"type": "infer", "id": 1, "obs": obs}))
        reply = unpack(ws.recv(timeout=30))
        assert (
            reply["code"] == "bad_request" and reply["id"] == 1 and "needs an 'instruction'" in reply["error"]
        )
        ws.send(pack({"type": "infer", "id": 2, "obs": obs, "instruction": "lift the cube"}))
        assert unpack(ws.recv(timeout=30))["chunk"].shape == (8, 7)
    with PolicyClient(srv.url) as client:
        assert client.metadata.takes_instruction is True
        assert client.infer(obs, instruction="lift the cube").chunk.shape == (8, 7)
        with pytest.raises(ServerError, match="needs an 'instruction'"):
            client.infer(obs)
