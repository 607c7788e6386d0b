"""Sampling with the observation conditioning bound once per chunk and the convolutions on packed weights equals
the plain per-step forward pass."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from manip.bench.inference import Case, build_policy, random_obs
from manip.policies.backbones.base import BoundBackbone
from manip.policies.backbones.packed_conv import set_cpu_packing

SMALL_UNET = {"backbone": {"name": "unet1d", "down_dims": [32, 64, 128], "time_embed_dim": 32}}
HEADS = [
    ("diffusion", 10, {}),
    ("diffusion", 20, {"sampler": "ddpm"}),
    ("flow", 10, {"solver": "heun"}),
    ("flow", 4, {"prefix_training": 0.5}),
    ("meanflow", 1, {}),
    ("meanflow", 2, {"cfg_scale": 2.0}),
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a loaded machine, spinning OpenMP threads make small forward passes 20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def policy_pair(head: str, head_params: dict, obs_mode: str = "lowdim"):
    """The same weights twice: bound with packed convolutions (default) and the plain per-step reference."""
    torch.manual_seed(0)
    overrides = {**SMALL_UNET, "head": {"name": head, **head_params}}
    bound = build_policy(Case(obs_mode, head, 1), overrides)
    eager = copy.deepcopy(bound)
    eager.head.bind_condition = False
    assert set_cpu_packing(eager, False) > 0
    return bound, eager


@pytest.mark.parametrize(("head", "steps", "params"), HEADS)
def test_bound_sampling_equals_the_per_step_path(head, steps, params):
    bound, eager = policy_pair(head, params)
    obs = random_obs(bound.obs_spec, 3, bound.n_obs_steps, seed=4)
    prefix = np.random.default_rng(5).uniform(-1, 1, (3, 2, 7)).astype(np.float32)
    with torch.inference_mode():
        for kwargs in ({}, {"prefix": prefix}):
            fast = bound.predict_chunk(obs, steps=steps, generator=torch.Generator().manual_seed(1), **kwargs)
            slow = eager.predict_chunk(obs, steps=steps, generator=torch.Generator().manual_seed(1), **kwargs)
            np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-4)
            assert not np.allclose(fast, bound.predict_chunk(obs, steps=steps), atol=1e-6)  # noise matters


def test_image_policy_bound_sampling_equals_the_per_step_path():
    bound, eager = policy_pair("diffusion", {}, obs_mode="image")
    obs = random_obs(bound.obs_spec, 1, bound.n_obs_steps, seed=2)
    with torch.inference_mode():
        fast = bound.predict_chunk(obs, generator=torch.Generator().manual_seed(3))
        slow = eager.predict_chunk(obs, generator=torch.Generator().manual_seed(3))
    np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-4)


def test_unet_precomputes_one_film_projection_per_block_and_matches_forward():
    torch.manual_seed(0)
    policy = build_policy(Case("lowdim", "meanflow", 1), SMALL_UNET)
    backbone = policy.backbone
    cond, x = torch.randn(2, backbone.film_blocks()[0].film[1].in_features - 64), torch.randn(2, 16, 7)
    time, time2 = torch.tensor([30.0, 70.0]), torch.tensor([10.0, 20.0])
    bound = backbone.bind(cond)
    assert len(bound.precomputed["cond_film"]) == len(backbone.film_blocks()) == 3 * 2 + 2 + 2 * 2
    with torch.no_grad():
        torch.testing.assert_close(bound(x, time, cond, time2), backbone(x, time, cond, time2))
        other = torch.randn_like(cond)  # another conditioning runs the plain forward pass, not the bound one
        torch.testing.assert_close(bound(x, time, other, time2), backbone(x, time, other, time2))


def test_backbones_without_precomputation_bind_to_the_plain_forward():
    torch.manual_seed(0)
    policy = build_policy(
        Case("lowdim", "flow", 1, backbone="mlp"), {"backbone": {"name": "mlp", "width": 32, "depth": 1}}
    )
    cond = torch.randn(1, 38)
    bound = policy.backbone.bind(cond)
    assert isinstance(bound, BoundBackbone) and bound.precomputed is None
    x, time = torch.randn(1, 16, 7), torch.tensor([5.0])
    with torch.no_grad():
        torch.testing.assert_close(bound(x, time, cond), policy.backbone(x, time, cond))


def test_heads_use_the_backbone_itself_when_binding_is_off():
    bound, eager = policy_pair("flow", {})
    cond = torch.randn(1, 38)
    assert eager.head.conditioned(eager.backbone, cond) is eager.backbone
    assert isinstance(bound.head.conditioned(bound.backbone, cond), BoundBackbone)
    plain = lambda x, time, cond, time2=None: x  # noqa: E731 - a callable without bind() is used as is
    assert bound.head.conditioned(plain, cond) is plain
