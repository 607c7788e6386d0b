"""The streaming head: per-position noise levels in training, a buffer that shifts one step per control tick."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from manip.core.errors import ManipError
from manip.policies.backbones.base import BACKBONES
from manip.policies.heads.base import HEADS

HORIZON, ACTION_DIM, COND_DIM, BATCH = 8, 3, 5, 2


def build(front: int = 1):
    head = HEADS.get("streaming").cls(
        HEADS.parse_params("streaming", {"front": front, "default_steps": 3}, "head")
    )
    config = BACKBONES.parse_params("mlp", {"width": 32, "depth": 2, "time_embed_dim": 16}, "backbone")
    backbone = BACKBONES.get("mlp").cls(
        ACTION_DIM, HORIZON, COND_DIM + head.extra_cond_dim(HORIZON), False, config
    )
    return head, backbone


class CountingBackbone(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, *args, **kwargs):
        self.calls += 1
        return self.inner(*args, **kwargs)


def test_staircase_levels_rise_toward_the_front_and_past_steps_are_clean():
    head, _ = build(front=1)
    levels = head.staircase(HORIZON, torch.tensor([0.0, 1.0]))
    assert torch.all(levels[:, :1] == 1.0)
    assert torch.all(levels[:, 1:].diff(dim=1) < 0)  # noisier toward the tail
    assert levels[0, -1] == 0.0 and levels[1, 1] == 1.0  # tail pure noise before a tick; front clean after it


def test_loss_trains_only_the_noisy_positions():
    torch.manual_seed(0)
    head, backbone = build()
    actions, cond = torch.randn(BATCH, HORIZON, ACTION_DIM), torch.randn(BATCH, COND_DIM)
    loss, _ = head.loss(backbone, actions, cond)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone.parameters())


def test_buffer_shifts_one_step_per_tick_and_costs_steps_per_tick_evaluations():
    torch.manual_seed(0)
    head, inner = build(front=1)
    backbone = CountingBackbone(inner)
    cond = torch.randn(BATCH, COND_DIM)
    buffer, estimate = head.start_stream(backbone, cond, HORIZON, ACTION_DIM, steps=3)
    assert backbone.calls == 3  # the first tick is a full sample
    assert torch.allclose(buffer[:, :2], estimate[:, :2])  # the front (and the past) are clean
    for _ in range(4):
        backbone.calls = 0
        new, estimate = head.advance_stream(backbone, buffer, cond, steps_per_tick=2)
        assert backbone.calls == 2
        assert torch.equal(new[:, 0], buffer[:, 1])  # the executed action moved into the clean past
        assert not torch.equal(new[:, 1], buffer[:, 2])  # the new front was denoised this tick
        assert torch.equal(estimate[:, 1], new[:, 1])  # the action to execute is the buffer's clean front
        assert torch.isfinite(new).all() and torch.isfinite(estimate).all()
        buffer = new


def streaming_policy(tmp_path, tiny_store, tiny_train_raw, **sampling):
    from manip.policies.train_config import TrainConfig
    from manip.policies.training import build_policy_and_dataset

    raw = tiny_train_raw(tiny_store, head="streaming")
    raw["policy"]["n_action_steps"] = 1
    raw["policy"]["sampling"] = {"mode": "streaming", **sampling}
    policy, dataset = build_policy_and_dataset(TrainConfig(**raw), quiet=True)
    return policy.eval(), dataset


def test_policy_streams_across_calls_and_resets_per_episode(tmp_path, tiny_store, tiny_train_raw):
    policy, dataset = streaming_policy(tmp_path, tiny_store, tiny_train_raw, steps_per_tick=1)
    item = dataset[0]
    obs = {k: v[None].numpy() for k, v in item["obs"].items()}
    first = policy.predict_chunk(obs)
    buffer = policy._stream.clone()
    second = policy.predict_chunk(obs)
    assert np.isfinite(first).all() and np.isfinite(second).all() and first.shape == second.shape
    assert torch.equal(policy._stream[:, 0], buffer[:, 1])  # one step per call
    policy.reset_sampling()
    assert policy._stream is None


def test_streaming_needs_one_action_per_tick(tmp_path, tiny_store, tiny_train_raw):
    from manip.policies.train_config import TrainConfig
    from manip.policies.training import build_policy_and_dataset

    raw = tiny_train_raw(tiny_store, head="streaming")
    raw["policy"]["sampling"] = {"mode": "streaming"}
    policy, dataset = build_policy_and_dataset(TrainConfig(**raw), quiet=True)
    obs = {k: v[None].numpy() for k, v in dataset[0]["obs"].items()}
    with pytest.raises(ManipError, match="n_action_steps 1"):
        policy.predict_chunk(obs)
