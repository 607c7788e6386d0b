"""CudaGraphPolicy without CUDA: it says why it cannot capture and serves the policy's own chunks unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from manip.bench.inference import Case, build_policy, random_obs
from manip.policies.cuda_graph import CudaGraphPolicy

SMALL_UNET = {"backbone": {"name": "unet1d", "down_dims": [16, 32], "time_embed_dim": 16}}


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield build_policy(Case("lowdim", "diffusion", 10), SMALL_UNET)
    torch.set_num_threads(before)


def test_without_cuda_the_wrapper_falls_back_to_the_policy(policy):
    wrapped = CudaGraphPolicy(policy)  # a CPU policy: no CUDA here, or the policy is not on it
    reason = (
        "the policy is on cpu, not on a CUDA device" if torch.cuda.is_available() else "CUDA is not available"
    )
    assert not wrapped.enabled and wrapped.unavailable == reason
    obs = random_obs(policy.obs_spec, 2, policy.n_obs_steps, seed=3)
    wrapped.seed(7)
    chunk = wrapped.predict_chunk(obs, steps=4)
    torch.manual_seed(7)
    np.testing.assert_array_equal(chunk, policy.predict_chunk(obs, steps=4))
    assert chunk.shape == (2, policy.horizon, 7) and wrapped.fallback_reason == reason
    assert wrapped.graphs == {}  # nothing captured


def test_calls_a_graph_cannot_serve_run_the_policy_with_the_same_arguments(policy):
    wrapped = CudaGraphPolicy(policy)
    obs = random_obs(policy.obs_spec, 1, policy.n_obs_steps, seed=4)
    prefix = np.zeros((1, 2, 7), np.float32)
    chunk = wrapped.predict_chunk(obs, steps=3, prefix=prefix, generator=torch.Generator().manual_seed(2))
    expected = policy.predict_chunk(obs, steps=3, prefix=prefix, generator=torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(chunk, expected)
    assert wrapped.fallback_reason is not None
