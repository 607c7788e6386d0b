"""Generative heads on the UNet backbone: loss and sample shapes, runtime step counts, prefix inpainting."""

from __future__ import annotations

import pytest
import torch

from manip.core.errors import ManipError
from manip.policies.backbones.base import BACKBONES
from manip.policies.heads.base import HEADS, masked_mse

HORIZON, ACTION_DIM, COND_DIM, BATCH = 8, 3, 5, 4
HEAD_PARAMS = {
    "diffusion": {"sampler": "ddim", "default_steps": 5},
    "diffusion-ddpm-sample": {"sampler": "ddpm", "prediction_type": "sample", "num_train_timesteps": 20},
    "flow": {"solver": "euler", "default_steps": 4},
    "flow-heun-beta": {"solver": "heun", "time_sampling": "beta", "default_steps": 3},
    "flow-prefix": {"default_steps": 4, "prefix_training": 0.5, "max_prefix": 4},
    "meanflow": {},
    "meanflow-sample": {"prediction": "sample"},
    "flow-sample": {"prediction": "sample", "default_steps": 3},
}


BACKBONE_PARAMS = {
    "unet1d": {"down_dims": [16, 32], "time_embed_dim": 16, "n_groups": 4},
    "mlp": {"width": 32, "depth": 2, "time_embed_dim": 16},
}


def build(variant: str, backbone: str = "unet1d"):
    name = variant.split("-")[0]
    head = HEADS.get(name).cls(HEADS.parse_params(name, HEAD_PARAMS[variant], "head"))
    config = BACKBONES.parse_params(backbone, BACKBONE_PARAMS[backbone], "bb")
    cond_dim = COND_DIM + head.extra_cond_dim(HORIZON)
    return head, BACKBONES.get(backbone).cls(ACTION_DIM, HORIZON, cond_dim, head.uses_time2, config)


class CountingBackbone(torch.nn.Module):
    """Wraps a real backbone and counts network evaluations."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)


@pytest.mark.parametrize("backbone_name", list(BACKBONE_PARAMS))
@pytest.mark.parametrize("variant", list(HEAD_PARAMS))
def test_loss_is_a_differentiable_scalar(variant, backbone_name):
    torch.manual_seed(0)
    head, backbone = build(variant, backbone_name)
    loss, metrics = head.loss(backbone, torch.randn(BATCH, HORIZON, ACTION_DIM), torch.randn(BATCH, COND_DIM))
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in backbone.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert metrics["loss"] == pytest.approx(loss.item())


@pytest.mark.parametrize("variant", list(HEAD_PARAMS))
@pytest.mark.parametrize("steps", [None, 2])
def test_sample_shape_and_step_count(variant, steps):
    head, backbone = build(variant)
    counting = CountingBackbone(backbone)
    out = head.sample(counting, torch.randn(BATCH, COND_DIM), HORIZON, ACTION_DIM, steps=steps)
    assert out.shape == (BATCH, HORIZON, ACTION_DIM) and torch.isfinite(out).all()
    expected = steps or head.default_steps
    evals_per_step = 2 if variant == "flow-heun-beta" else 1
    assert counting.calls == expected * evals_per_step


def test_meanflow_samples_in_one_network_evaluation():
    head, backbone = build("meanflow")
    counting = CountingBackbone(backbone)
    head.sample(counting, torch.randn(BATCH, COND_DIM), HORIZON, ACTION_DIM)
    assert counting.calls == 1


def test_meanflow_sample_prediction_returns_the_clean_chunk_in_one_step():
    """With ``prediction: sample`` the backbone's output is x̂ and u = (z - x̂) / max(t, ε)."""
    head, backbone = build("meanflow-sample")
    cond = torch.randn(BATCH, COND_DIM)
    noise = torch.randn(BATCH, HORIZON, ACTION_DIM, generator=torch.Generator().manual_seed(1))
    one = torch.ones(BATCH)
    x_hat = backbone(noise, one * head.config.time_scale, cond, 0 * one)
    out = head.sample(backbone, cond, HORIZON, ACTION_DIM, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, x_hat)
    z, t = torch.randn(BATCH, HORIZON, ACTION_DIM), torch.tensor([0.01, 0.3, 0.6, 1.0])
    r = t / 2
    u = head.average_velocity(backbone, z, r, t, cond)
    raw = backbone(z, t * head.config.time_scale, cond, r * head.config.time_scale)
    torch.testing.assert_close(u, (z - raw) / t.clamp(min=0.05)[:, None, None])


def test_flow_sample_prediction_turns_the_clean_chunk_into_a_velocity():
    head, backbone = build("flow-sample")
    cond = torch.randn(BATCH, COND_DIM)
    noise = torch.randn(BATCH, HORIZON, ACTION_DIM, generator=torch.Generator().manual_seed(2))
    x_hat = backbone(noise, torch.zeros(BATCH), cond)
    one_step = head.sample(
        backbone, cond, HORIZON, ACTION_DIM, steps=1, generator=torch.Generator().manual_seed(2)
    )
    torch.testing.assert_close(one_step, x_hat)  # one Euler step from noise lands on x̂
    x, t = torch.randn(BATCH, HORIZON, ACTION_DIM), torch.tensor([0.0, 0.5, 0.9, 0.99])
    raw = backbone(x, t * head.config.time_scale, cond)
    expected = (raw - x) / (1 - t).clamp(min=0.05)[:, None, None]
    torch.testing.assert_close(head.velocity(backbone, x, t, cond), expected)


@pytest.mark.parametrize("backbone_name", list(BACKBONE_PARAMS))
@pytest.mark.parametrize("variant", list(HEAD_PARAMS))
def test_prefix_is_held_exactly(variant, backbone_name):
    head, backbone = build(variant, backbone_name)
    prefix = torch.randn(BATCH, 3, ACTION_DIM)
    out = head.sample(backbone, torch.randn(BATCH, COND_DIM), HORIZON, ACTION_DIM, prefix=prefix)
    assert torch.equal(out[:, :3], prefix)
    assert not torch.equal(out[:, 3:], torch.zeros_like(out[:, 3:]))


def test_sampling_is_reproducible_with_a_generator():
    head, backbone = build("flow")
    cond = torch.randn(BATCH, COND_DIM)
    a = head.sample(backbone, cond, HORIZON, ACTION_DIM, generator=torch.Generator().manual_seed(3))
    b = head.sample(backbone, cond, HORIZON, ACTION_DIM, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_bad_prefix_and_steps_are_one_line_errors():
    head, backbone = build("flow")
    cond = torch.randn(BATCH, COND_DIM)
    with pytest.raises(ManipError, match="prefix has shape"):
        head.sample(backbone, cond, HORIZON, ACTION_DIM, prefix=torch.zeros(BATCH, 2, ACTION_DIM + 1))
    with pytest.raises(ManipError, match="steps must be >= 1"):
        head.sample(backbone, cond, HORIZON, ACTION_DIM, steps=0)


def test_unknown_head_and_bad_params_fail_with_one_line():
    with pytest.raises(ManipError, match="unknown head 'nope'"):
        HEADS.get("nope")
    with pytest.raises(ManipError, match="unknown key"):
        HEADS.parse_params("flow", {"stepz": 3}, "policy.head")
    with pytest.raises(ManipError, match="horizon 6 must be divisible"):
        build_backbone_with_horizon(6)


def build_backbone_with_horizon(horizon: int):
    config = BACKBONES.parse_params("unet1d", {"down_dims": [16, 32, 64], "n_groups": 4}, "bb")
    return BACKBONES.get("unet1d").cls(ACTION_DIM, horizon, COND_DIM, False, config)


def test_masked_mse_counts_only_the_learned_timesteps():
    pred, target = torch.zeros(2, 4, 3), torch.ones(2, 4, 3)
    pred[:, :2] = 100.0  # wrong everywhere, wildly so on the first two timesteps
    learned = torch.tensor([[False, False, True, True], [False, False, True, True]])
    assert masked_mse(pred, target, learned) == pytest.approx(1.0)  # the masked-out error does not count
    assert masked_mse(pred, target, torch.ones(2, 4, dtype=torch.bool)) == pytest.approx((99.0**2 + 1.0) / 2)
    assert masked_mse(pred, target, torch.zeros(2, 4, dtype=torch.bool)) == 0.0  # nothing learned: no loss
