"""Point-cloud policies: the "points" encoder, a points policy trained through the real trainer on a real Zarr
store (with every head), and the dispersive loss."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from manip.core.config import validate_config
from manip.core.specs import FeatureSpec
from manip.data.store import EpisodeStore
from manip.policies.dispersive import backbone_dispersion, dispersive_loss, hidden_layers
from manip.policies.encoders.points import PointCloudEncoder, PointEncoderConfig
from manip.policies.train_config import TrainConfig
from manip.policies.training import run_training

POINTS = 64


def test_point_encoder_is_invariant_to_the_order_of_the_points():
    torch.manual_seed(0)
    encoder = PointCloudEncoder(
        [FeatureSpec("point_cloud", (POINTS, 3), kind="points")], 2, PointEncoderConfig()
    )
    clouds = torch.randn(4, 2, POINTS, 3)
    shuffled = clouds[:, :, torch.randperm(POINTS)]
    out = encoder({"point_cloud": clouds})
    assert out.shape == (4, encoder.cond_dim) == (4, 2 * 64)
    torch.testing.assert_close(encoder({"point_cloud": shuffled}), out)
    moved = clouds.clone()
    moved[:, :, 0] += 1.0  # one point moves: the encoding changes
    assert not torch.allclose(encoder({"point_cloud": moved}), out)


def test_point_encoder_uses_colours_only_when_asked():
    torch.manual_seed(0)
    feature = [FeatureSpec("point_cloud", (POINTS, 6), kind="points")]
    xyz_only = PointCloudEncoder(feature, 1, PointEncoderConfig(use_colors=False))
    with_rgb = PointCloudEncoder(feature, 1, PointEncoderConfig(use_colors=True))
    clouds = torch.rand(2, 1, POINTS, 6)
    recoloured = clouds.clone()
    recoloured[..., 3:] = torch.rand_like(recoloured[..., 3:])
    torch.testing.assert_close(xyz_only({"point_cloud": recoloured}), xyz_only({"point_cloud": clouds}))
    assert not torch.allclose(with_rgb({"point_cloud": recoloured}), with_rgb({"point_cloud": clouds}))


def write_point_store(path: Path, episodes: int = 4, length: int = 12, seed: int = 0) -> Path:
    """Episodes whose action points at a "target" visible only in the cloud (a blob of points)."""
    rng = np.random.default_rng(seed)
    store = EpisodeStore.create(path)
    for i in range(episodes):
        target = rng.uniform(-0.3, 0.3, size=3).astype(np.float32)
        eef = np.linspace(0, 1, length, dtype=np.float32)[:, None] * target
        cloud = np.concatenate(
            [rng.uniform(-0.5, 0.5, (POINTS // 2, 3)), target + rng.normal(0, 0.01, (POINTS // 2, 3))]
        )
        clouds = np.repeat(cloud[None].astype(np.float32), length, 0)
        action = np.concatenate([np.repeat(target[None], length, 0) - eef, np.ones((length, 1))], 1)
        store.add_episode(
            {"robot0_eef_pos": eef, "point_cloud": clouds, "action": action.astype(np.float32)},
            {"success": True, "seed": i, "task": "pick-place-v3"},
        )
    return path


@pytest.fixture(scope="module")
def point_store(tmp_path_factory) -> Path:
    return write_point_store(tmp_path_factory.mktemp("points") / "points.zarr")


def points_config(store: Path, head: str, backbone: dict, dispersive: dict | None = None) -> TrainConfig:
    policy = {
        "obs_keys": ["robot0_eef_pos", "point_cloud"],
        "n_obs_steps": 2,
        "horizon": 4,
        "n_action_steps": 3,
        "encoders": {"points": {"hidden": [16, 32], "out_dim": 16}},
        "backbone": backbone,
        "head": {"name": head},
    }
    if dispersive is not None:
        policy["dispersive"] = dispersive
    raw = {
        "task": "pick-place-v3",
        "data": {"path": str(store)},
        "policy": policy,
        "trainer": {"steps": 2, "batch_size": 8, "warmup_steps": 1, "log_every": 1, "save_every": 2},
    }
    return validate_config(TrainConfig, raw)


UNET = {"name": "unet1d", "down_dims": [16, 32], "time_embed_dim": 16, "n_groups": 4}
MLP = {"name": "mlp", "width": 32, "depth": 2, "time_embed_dim": 16}


@pytest.mark.parametrize("head", ["meanflow", "flow", "diffusion"])
def test_a_points_policy_trains_two_steps_and_predicts_a_chunk(point_store, tmp_path, head):
    from manip.policies.checkpoint import load_policy

    checkpoint = run_training(
        points_config(point_store, head, UNET, {"weight": 0.5}), tmp_path / head, quiet=True
    )
    policy = load_policy(checkpoint)
    assert policy.obs_spec["point_cloud"].kind == "points"
    assert policy.obs_spec["point_cloud"].shape == (POINTS, 3)
    assert policy.point_keys == ["point_cloud"]
    assert "point_cloud" not in list(policy.normalizer.keys())  # clouds stay in metres
    store = EpisodeStore.open(point_store)
    episode = store.get_episode(0, ["robot0_eef_pos", "point_cloud"])
    obs = {key: value[None, :2] for key, value in episode.items()}
    chunk = policy.predict_chunk(obs)
    assert chunk.shape == (1, 4, 4) and np.isfinite(chunk).all()
    metrics = [json.loads(line) for line in (tmp_path / head / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2] and all("dispersive" in m for m in metrics)


def test_dispersive_loss_is_lower_for_spread_features_and_zero_weight_turns_it_off(point_store, tmp_path):
    torch.manual_seed(0)
    spread = torch.eye(8) * 3.0
    clumped = torch.ones(8, 8) + 0.01 * torch.randn(8, 8)
    assert dispersive_loss(spread) < dispersive_loss(clumped)
    run_training(points_config(point_store, "meanflow", MLP, {"weight": 0.0}), tmp_path / "off", quiet=True)
    metrics = json.loads((tmp_path / "off" / "metrics.jsonl").read_text().splitlines()[0])
    assert "dispersive" not in metrics


@pytest.mark.parametrize("backbone", [UNET, MLP])
def test_dispersive_gradient_reaches_the_backbone_through_its_hidden_layers(point_store, backbone):
    from manip.policies.training import build_policy_and_dataset

    policy, _dataset = build_policy_and_dataset(points_config(point_store, "meanflow", backbone), quiet=True)
    layers = hidden_layers(policy.backbone)
    assert layers and all(any(p.requires_grad for p in layer.parameters()) for layer in layers)
    actions = torch.randn(6, 4, 4)
    cond = torch.randn(6, policy.backbone_cond_dim)
    loss = backbone_dispersion(policy.backbone, actions, cond, True, 1.0)
    loss.backward()
    grads = [p.grad for p in layers[0].parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
