"""Packed CPU convolutions: the same outputs and state as PyTorch's own, repacked when the weights change."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from manip.policies.backbones.packed_conv import (
    PackedConv1d,
    PackedConvTranspose1d,
    cpu_packing_available,
    set_cpu_packing,
)
from manip.policies.backbones.unet1d import UNet1D, UNet1DConfig

CONVS = [
    (PackedConv1d, dict(in_channels=6, out_channels=5, kernel_size=5, padding=2)),
    (PackedConv1d, dict(in_channels=6, out_channels=5, kernel_size=3, stride=2, padding=1)),
    (PackedConv1d, dict(in_channels=6, out_channels=5, kernel_size=1)),
    (PackedConv1d, dict(in_channels=6, out_channels=5, kernel_size=3, bias=False)),
    (PackedConvTranspose1d, dict(in_channels=6, out_channels=5, kernel_size=4, stride=2, padding=1)),
    (PackedConvTranspose1d, dict(in_channels=6, out_channels=5, kernel_size=3, stride=1, padding=0)),
]


def test_this_build_packs():
    assert cpu_packing_available()  # x86 and arm64 torch builds ship oneDNN: the fast path is what runs here


@pytest.mark.parametrize(("cls", "kwargs"), CONVS)
def test_packed_output_equals_the_parent_class(cls, kwargs):
    torch.manual_seed(0)
    packed = cls(**kwargs)
    plain = (nn.Conv1d if cls is PackedConv1d else nn.ConvTranspose1d)(**kwargs)
    plain.load_state_dict(packed.state_dict())
    for batch, length in ((1, 16), (3, 7)):
        x = torch.randn(batch, kwargs["in_channels"], length)
        with torch.inference_mode():
            out = packed(x)
            assert packed._packed_cache is not None  # the packed path ran
            torch.testing.assert_close(out, plain(x), rtol=1e-5, atol=1e-5)


def test_training_runs_the_parent_path_and_gradients_flow():
    torch.manual_seed(0)
    conv = PackedConv1d(4, 3, 5, padding=2)
    x = torch.randn(2, 4, 8)
    conv(x).square().sum().backward()
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    assert getattr(conv, "_packed_cache", None) is None


def test_changed_weights_are_repacked():
    torch.manual_seed(0)
    conv = PackedConv1d(4, 3, 5, padding=2)
    x = torch.randn(1, 4, 8)
    with torch.no_grad():
        before = conv(x)
        optimizer = torch.optim.SGD(conv.parameters(), lr=0.5)
    with torch.enable_grad():
        conv(x).sum().backward()
    optimizer.step()  # in place: the cached packed weights are stale now
    with torch.no_grad():
        after = conv(x)
        set_cpu_packing(conv, False)
        torch.testing.assert_close(after, conv(x), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(before, after)
    with torch.no_grad():
        set_cpu_packing(conv, True)
        conv.load_state_dict({k: torch.zeros_like(v) for k, v in conv.state_dict().items()})
        assert conv(x).abs().max() == 0
        conv.weight.data = torch.ones_like(conv.weight)  # replaced, not changed in place: a new tensor
        conv.bias.data = torch.zeros_like(conv.bias)
        torch.testing.assert_close(conv(x), nn.functional.conv1d(x, conv.weight, conv.bias, padding=2))
        assert conv(x).abs().max() > 0
        conv.double()  # converted: the float32 matrix is dropped and the float64 path runs
        assert getattr(conv, "_packed_cache", None) is None
        torch.testing.assert_close(
            conv(x.double()), nn.functional.conv1d(x.double(), conv.weight, conv.bias, padding=2)
        )
        conv.float()
        torch.testing.assert_close(conv(x), nn.functional.conv1d(x, conv.weight, conv.bias, padding=2))
        assert conv._packed_cache is not None


def test_unet_state_dict_keys_equal_plain_convolutions_and_copies_repack():
    torch.manual_seed(0)
    config = UNet1DConfig(down_dims=(16, 32), time_embed_dim=16)
    unet = UNet1D(action_dim=3, horizon=8, cond_dim=5, uses_time2=False, config=config).eval()
    keys = set(unet.state_dict())
    assert any(k.endswith("residual.weight") for k in keys) and not any("packed" in k for k in keys)
    x, time, cond = torch.randn(2, 8, 3), torch.tensor([3.0, 4.0]), torch.randn(2, 5)
    with torch.inference_mode():
        out = unet(x, time, cond)
    twin = copy.deepcopy(unet)  # the packed matrices are not copied; the copy packs its own
    assert all(getattr(m, "_packed_cache", None) is None for m in twin.modules())
    assert any(
        getattr(m, "_packed_cache", None) is not None for m in unet.modules()
    )  # the original keeps its own
    with torch.inference_mode():
        torch.testing.assert_close(twin(x, time, cond), out)
        assert any(getattr(m, "_packed_cache", None) is not None for m in twin.modules())
        convolutions = sum(isinstance(m, nn.Conv1d | nn.ConvTranspose1d) for m in twin.modules())
        assert set_cpu_packing(twin, False) == convolutions
        torch.testing.assert_close(twin(x, time, cond), out, rtol=1e-5, atol=1e-5)


def test_inference_tensor_weights_run_the_parent_path():
    with torch.inference_mode():  # weights made here are inference tensors: no version counter to watch
        conv = PackedConv1d(4, 3, 5, padding=2)
        x = torch.randn(1, 4, 8)
        out = conv(x)
        assert getattr(conv, "_packed_cache", None) is None
        torch.testing.assert_close(out, nn.functional.conv1d(x, conv.weight, conv.bias, padding=2))


def test_time_film_cache_follows_the_weights():
    torch.manual_seed(0)
    config = UNet1DConfig(down_dims=(16, 32), time_embed_dim=16)
    unet = UNet1D(action_dim=3, horizon=8, cond_dim=5, uses_time2=True, config=config).eval()
    x, time, time2, cond = torch.randn(1, 8, 3), torch.tensor([3.0]), torch.tensor([1.0]), torch.randn(1, 5)
    with torch.inference_mode():
        bound = unet.bind(cond)
        first = bound(x, time, cond, time2)
        assert len(unet.time_film_weights()["films"]) == 1
        torch.testing.assert_close(bound(x, time, cond, time2), first)
        assert len(unet.time_film_weights()["films"]) == 1  # the same time: served from the cache
        torch.testing.assert_close(bound(x, time, cond, time2 * 0), unet(x, time, cond, time2 * 0))
        assert len(unet.time_film_weights()["films"]) == 2
    with torch.no_grad():
        unet.time_embed[1].weight.mul_(2.0)  # a weight the time part depends on
        torch.testing.assert_close(unet.bind(cond)(x, time, cond, time2), unet(x, time, cond, time2))
        assert len(unet.time_film_weights()["films"]) == 1
