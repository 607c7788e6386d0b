"""``manip serve --checkpoint`` with a real (tiny) policy checkpoint: metadata, chunks, RTC prefix, batching."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from manip.policies.serving import LocalPolicySource
from manip.real.client.connection import PolicyClient, ServerError
from manip.real.client.loop import ChunkedController, executor_config_for
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


def test_chunks_and_rtc_prefix(checkpoint_server):
    with PolicyClient(checkpoint_server.url) as client:
        reply = client.infer(synthetic_obs("lowdim", 0.3))
        assert reply.chunk.shape == (8, 7) and np.isfinite(reply.chunk).all()
        assert client.infer(synthetic_obs("lowdim", 0.3), steps=1).chunk.shape == (8, 7)
        assert reply.timings["infer_ms"] > 0
        prefix = np.linspace(-0.5, 0.5, 21, dtype=np.float32).reshape(3, 7)
        chunk = client.request(synthetic_obs("lowdim", 0.3), 0.0, prefix=prefix)
        np.testing.assert_allclose(chunk[:3], prefix, atol=1e-5)  # held exactly by the flow head
        with pytest.raises(ServerError, match="'prefix' has shape"):
            client.request(synthetic_obs("lowdim"), 0.0, prefix=np.zeros((3, 6), np.float32))


def test_concurrent_clients_share_forward_passes(checkpoint_server):
    sizes: list[float] = []
    barrier = threading.Barrier(6)

    def one(seed: int) -> None:
        with PolicyClient(checkpoint_server.url) as client:
            barrier.wait()
            for _ in range(4):
                sizes.append(client.infer(synthetic_obs("lowdim", seed)).timings["batch_size"])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(sizes) == 24 and max(sizes) > 1


def test_sim_style_loop_through_the_checkpoint_server(checkpoint_server):
    with PolicyClient(checkpoint_server.url) as client:
        ctl = ChunkedController(client, executor_config_for(client.metadata, mode="rtc"))
        step = {k: v[-1] for k, v in synthetic_obs("lowdim", 0.1).items()}
        out = [ctl.act(step, k * 0.05) for k in range(12)]
    assert not any(a.held for a in out)
    assert len(ctl.request_seconds) == 3  # 12 ticks / 4 actions per chunk
