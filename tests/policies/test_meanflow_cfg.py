"""Classifier-free guidance of the MeanFlow head, trained in so that sampling stays at one network evaluation."""

from __future__ import annotations

import pytest
import torch
from torch.func import jvp

from manip.core.config import apply_overrides, validate_config
from manip.core.errors import ManipError
from manip.policies.heads.base import HEADS
from manip.policies.train_config import TrainConfig
from manip.policies.training import build_policy_and_dataset
from tests.policies import recording
from tests.policies.recording import RecordingBackbone as Recorder

HORIZON, ACTION_DIM, COND_DIM, BATCH = 8, 2, 3, 64


def meanflow_head(**params):
    return HEADS.get("meanflow").cls(HEADS.parse_params("meanflow", params, "head"))


def mlp_backbone(head, cond_dim=COND_DIM, horizon=HORIZON, action_dim=ACTION_DIM, width=64):
    return recording.mlp_backbone(head, cond_dim, horizon, action_dim, width)


def unguided_reference_loss(head, backbone, actions, cond):
    """The MeanFlow loss as it was before guidance existed (same random draws, same formula)."""
    config = head.config
    noise = torch.randn_like(actions)
    normal = torch.randn(actions.shape[0], 2) * config.logit_normal_std + config.logit_normal_mean
    times = torch.sigmoid(normal)
    t, r = times.max(dim=1).values, times.min(dim=1).values
    r = torch.where(torch.rand(actions.shape[0]) >= config.ratio_r_neq_t, t, r)
    z = (1 - t[:, None, None]) * actions + t[:, None, None] * noise
    v = noise - actions
    s = config.time_scale
    u, dudt = jvp(lambda z_, r_, t_: backbone(z_, t_ * s, cond, r_ * s), (z, r, t), (v, 0 * r, 0 * t + 1))
    err = ((u - (v - (t - r)[:, None, None] * dudt).detach()) ** 2).flatten(1).mean(dim=1)
    return ((err.detach() + config.adaptive_weight_eps) ** -config.adaptive_weight_power * err).mean()


def test_cfg_scale_one_is_exactly_the_unguided_loss_with_one_forward():
    head = meanflow_head(cfg_scale=1.0, cond_dropout=0.5)
    assert not head.guided and head.extra_cond_dim(HORIZON) == 0
    torch.manual_seed(0)
    backbone = Recorder(mlp_backbone(head))
    actions, cond = torch.randn(BATCH, HORIZON, ACTION_DIM), torch.randn(BATCH, COND_DIM)
    torch.manual_seed(1)
    loss, _ = head.loss(backbone, actions, cond)
    torch.manual_seed(1)
    reference = unguided_reference_loss(head, backbone.inner, actions, cond)
    assert torch.equal(loss, reference)
    ((_, seen, _),) = backbone.calls  # the JVP forward only, with the cond untouched
    assert torch.equal(seen, cond)


def test_guided_loss_drops_cond_and_adds_one_no_grad_forward():
    torch.manual_seed(0)
    head = meanflow_head(cfg_scale=2.0, cond_dropout=0.5)
    assert head.guided and head.extra_cond_dim(HORIZON) == 1
    backbone = Recorder(mlp_backbone(head))
    cond = torch.randn(BATCH, COND_DIM, requires_grad=True)
    loss, metrics = head.loss(backbone, torch.randn(BATCH, HORIZON, ACTION_DIM), cond)
    assert loss.ndim == 0 and torch.isfinite(loss) and metrics["loss"] == pytest.approx(loss.item())

    (_, null, null_grad), (_, seen, seen_grad) = backbone.calls
    assert not null_grad and seen_grad  # the unconditional velocity is a no-grad forward, before the JVP one
    assert torch.equal(null, torch.zeros(BATCH, COND_DIM + 1))  # zeroed cond, flag 0
    kept = seen[:, -1] == 1
    assert torch.equal(seen[:, -1], kept.float()) and 0 < kept.sum() < BATCH
    assert torch.equal(seen[kept, :COND_DIM], cond.detach()[kept])  # conditioned samples: the real cond
    assert torch.equal(seen[~kept, :COND_DIM], torch.zeros(int((~kept).sum()), COND_DIM))  # dropped: null

    loss.backward()
    grads = [p.grad for p in backbone.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert (cond.grad[~kept] == 0).all() and (cond.grad[kept].abs().sum(dim=1) > 0).all()


def test_guided_sampling_is_still_one_evaluation_with_the_real_cond():
    torch.manual_seed(0)
    head = meanflow_head(cfg_scale=3.0)
    backbone = Recorder(mlp_backbone(head))
    cond = torch.randn(4, COND_DIM)
    out = head.sample(backbone, cond, HORIZON, ACTION_DIM)
    assert out.shape == (4, HORIZON, ACTION_DIM) and torch.isfinite(out).all()
    ((_, seen, _),) = backbone.calls
    assert torch.equal(seen, torch.cat([cond, torch.ones(4, 1)], dim=-1))


def test_guidance_without_dropout_is_refused():
    with pytest.raises(ManipError, match="cond_dropout"):
        meanflow_head(cfg_scale=2.0, cond_dropout=0.0)
    meanflow_head(cfg_scale=1.0, cond_dropout=0.0)  # irrelevant when guidance is off


def test_cfg_scale_override_builds_a_guided_policy(tiny_store, tiny_train_raw, tmp_path):
    raw = apply_overrides(tiny_train_raw(tiny_store, "meanflow"), ["policy.head.cfg_scale=2.0"])
    torch.manual_seed(0)
    policy, dataset = build_policy_and_dataset(validate_config(TrainConfig, raw))
    assert policy.head.guided and policy.head.config.cfg_scale == 2.0
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    loss, _ = policy.compute_loss(batch)
    assert torch.isfinite(loss)
    loss.backward()


def _toy_level(omega: float, steps: int = 200) -> float:
    """Two classes (cond ±1) whose chunks sit at level ±1 (plus N(0, 0.5²) noise). Returns the mean 1-step
    sampled level along the class sign: guidance (ω > 1) pushes it further from 0 than the plain conditional
    model (the exact guided ODE gives 1.37 at ω = 3; this short training overshoots, only the direction is
    checked)."""
    head = meanflow_head(cfg_scale=omega, cond_dropout=0.2)
    torch.manual_seed(0)
    backbone = mlp_backbone(head, cond_dim=1, horizon=2, action_dim=1, width=64)
    optimizer = torch.optim.Adam(backbone.parameters(), lr=3e-3)
    for _ in range(steps):
        sign = torch.randint(0, 2, (128, 1)).float() * 2 - 1
        actions = sign[:, :, None] + 0.5 * torch.randn(128, 2, 1)
        loss, _ = head.loss(backbone, actions, sign)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    sign = torch.tensor([1.0, -1.0]).repeat_interleave(256)[:, None]
    out = head.sample(backbone, sign, 2, 1, generator=torch.Generator().manual_seed(1))
    return float((out.mean(dim=(1, 2)) * sign[:, 0]).mean())


def test_guidance_pushes_the_toy_classes_apart():
    plain, guided = _toy_level(1.0), _toy_level(3.0)
    assert 0.6 < plain < 1.5
    assert guided > plain + 0.2
