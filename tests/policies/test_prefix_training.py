"""Training-time action-prefix conditioning of the flow head (real-time chunking trained in, not only inpainted)."""

from __future__ import annotations

import torch

from manip.policies.heads.base import HEADS
from tests.policies import recording
from tests.policies.recording import RecordingBackbone as Recorder

HORIZON, ACTION_DIM, COND_DIM, BATCH = 8, 2, 3, 16


def flow_head(**params):
    return HEADS.get("flow").cls(HEADS.parse_params("flow", {"default_steps": 8, **params}, "head"))


def mlp_backbone(head):
    return recording.mlp_backbone(head, COND_DIM, HORIZON, ACTION_DIM)


def test_plain_flow_head_adds_no_conditioning():
    assert flow_head().extra_cond_dim(HORIZON) == 0
    assert flow_head(prefix_training=0.3).extra_cond_dim(HORIZON) == HORIZON


def test_training_chunks_get_a_clean_prefix_and_a_matching_mask():
    torch.manual_seed(0)
    head = flow_head(prefix_training=1.0, max_prefix=5)
    backbone = Recorder(mlp_backbone(head))
    actions = torch.randn(BATCH, HORIZON, ACTION_DIM)
    head.loss(backbone, actions, torch.zeros(BATCH, COND_DIM))
    ((x, cond, _),) = backbone.calls
    mask = cond[:, COND_DIM:]
    lengths = mask.sum(dim=1).long()
    assert ((lengths >= 1) & (lengths <= 5)).all() and len(set(lengths.tolist())) > 1
    for row, length in enumerate(lengths.tolist()):
        assert torch.equal(mask[row], (torch.arange(HORIZON) < length).float())  # a prefix, not scattered
        assert torch.equal(x[row, :length], actions[row, :length])  # given clean
        assert not torch.allclose(x[row, length:], actions[row, length:])  # the rest is noised


def test_prefix_steps_do_not_count_in_the_loss():
    torch.manual_seed(0)
    head = flow_head(prefix_training=1.0, max_prefix=HORIZON)
    backbone = mlp_backbone(head)
    actions = torch.randn(BATCH, HORIZON, ACTION_DIM, requires_grad=True)
    loss, _ = head.loss(backbone, actions, torch.zeros(BATCH, COND_DIM))
    loss.backward()
    # The velocity target (actions - noise) is only used on the learned steps; the last step is never given.
    assert actions.grad[:, -1].abs().sum() > 0


def test_sampling_gives_the_prefix_clean_at_every_step_and_tells_the_backbone():
    torch.manual_seed(0)
    head = flow_head(prefix_training=0.5, max_prefix=4)
    backbone = Recorder(mlp_backbone(head))
    prefix = torch.randn(BATCH, 3, ACTION_DIM)
    out = head.sample(backbone, torch.zeros(BATCH, COND_DIM), HORIZON, ACTION_DIM, prefix=prefix)
    assert torch.equal(out[:, :3], prefix)
    assert len(backbone.calls) == head.default_steps
    for x, cond, _ in backbone.calls:
        assert torch.equal(x[:, :3], prefix)
        assert torch.equal(cond[:, COND_DIM:], (torch.arange(HORIZON) < 3).float().expand(BATCH, HORIZON))
    backbone.calls.clear()
    head.sample(backbone, torch.zeros(BATCH, COND_DIM), HORIZON, ACTION_DIM)
    assert all(cond[:, COND_DIM:].abs().sum() == 0 for _, cond, _ in backbone.calls)


def _train(head, steps=400):
    torch.manual_seed(0)
    backbone = mlp_backbone(head)
    optimizer = torch.optim.Adam(backbone.parameters(), lr=3e-3)
    for _ in range(steps):
        level = torch.randn(64, 1, 1)  # each chunk holds one random level: its prefix says which
        actions = level.expand(64, HORIZON, ACTION_DIM).contiguous()
        loss, _ = head.loss(backbone, actions, torch.zeros(64, COND_DIM))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return backbone


def _tail_error(head, backbone) -> float:
    generator = torch.Generator().manual_seed(1)
    level = torch.randn(64, 1, 1, generator=generator)
    prefix = level.expand(64, 3, ACTION_DIM)
    with torch.no_grad():
        out = head.sample(backbone, torch.zeros(64, COND_DIM), HORIZON, ACTION_DIM, prefix=prefix)
    return float((out[:, 3:] - level).abs().mean())


def test_a_prefix_trained_head_continues_its_prefix():
    """The chunk is one random level; only the prefix tells which. Trained with prefixes, the head continues
    it; the same head trained without prefixes and inpainted at sampling does much worse."""
    trained = flow_head(prefix_training=0.5, max_prefix=4)
    inpainted = flow_head()
    trained_error = _tail_error(trained, _train(trained))
    inpainted_error = _tail_error(inpainted, _train(inpainted))
    assert trained_error < 0.25
    assert trained_error < 0.5 * inpainted_error
