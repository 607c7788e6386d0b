"""Image encoder (ResNet-GN, spatial softmax, crops, pretrained loading) and the transformer backbone with every head."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from manip.core.errors import ManipError
from manip.core.specs import FeatureSpec
from manip.policies.backbones.base import BACKBONES
from manip.policies.encoders.base import ENCODERS
from manip.policies.encoders.image import SpatialSoftmax, crop_images
from manip.policies.heads.base import HEADS

CAMERAS = [
    FeatureSpec("agentview_image", (32, 32, 3), "uint8", "rgb"),
    FeatureSpec("robot0_eye_in_hand_image", (32, 32, 3), "uint8", "rgb"),
]
TINY_IMAGE = {"width": 8, "blocks": [1, 1], "keypoints": 4, "feature_dim": 16}
TINY_TRANSFORMER = {"d_model": 32, "n_layers": 2, "n_heads": 4}


def image_encoder(**params):
    entry = ENCODERS.get("image")
    return entry.cls(CAMERAS, 2, ENCODERS.parse_params("image", {**TINY_IMAGE, **params}, "test"))


def camera_obs(batch=3, steps=2, size=32):
    torch.manual_seed(0)
    return {f.name: torch.rand(batch, steps, 3, size, size) * 2 - 1 for f in CAMERAS}


@pytest.mark.parametrize("shared", [False, True])
def test_image_encoder_shapes_and_gradients_reach_every_camera_trunk(shared):
    encoder = image_encoder(shared=shared)
    out = encoder(camera_obs())
    assert out.shape == (3, encoder.cond_dim) == (3, 2 * 2 * 16)
    assert len(encoder.camera_encoders) == (1 if shared else 2)
    out.square().sum().backward()
    for name, param in encoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in encoder.modules())


def test_image_encoder_crops_randomly_in_training_and_at_the_center_in_eval():
    encoder = image_encoder()
    obs = camera_obs()
    encoder.eval()
    assert torch.equal(encoder(obs), encoder(obs))
    crop = encoder.crop_sizes["agentview_image"]
    top = (32 - crop[0]) // 2
    center = {k: v[..., top : top + crop[0], top : top + crop[1]] for k, v in obs.items()}
    features_center = torch.cat(
        [encoder.encoder_for(k)(center[k].flatten(0, 1)).reshape(3, 2, -1) for k in encoder.cameras], dim=-1
    ).flatten(1)
    assert torch.allclose(encoder(obs), features_center, atol=1e-6)
    encoder.train()
    torch.manual_seed(1)
    first = encoder(obs)
    second = encoder(obs)
    assert not torch.allclose(first, second)


def test_random_crop_takes_real_windows_of_each_image():
    images = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    torch.manual_seed(0)
    crops = crop_images(images, (4, 3), random=True)
    assert crops.shape == (2, 1, 4, 3)
    for n in range(2):
        windows = [images[n, :, i : i + 4, j : j + 3] for i in range(3) for j in range(4)]
        assert any(torch.equal(crops[n], w) for w in windows)
    assert torch.equal(crop_images(images, (4, 4), random=False), images[:, :, 1:5, 1:5])


def test_spatial_softmax_finds_a_peak():
    softmax = SpatialSoftmax(channels=1, keypoints=1)
    with torch.no_grad():
        softmax.to_heatmaps.weight.fill_(1.0)
        softmax.to_heatmaps.bias.zero_()
        softmax.log_temperature.fill_(-3.0)
    features = torch.zeros(1, 1, 5, 5)
    features[0, 0, 4, 0] = 10.0  # bottom-left corner: x = -1, y = +1
    x, y = softmax(features)[0].tolist()
    assert x == pytest.approx(-1.0, abs=1e-3) and y == pytest.approx(1.0, abs=1e-3)


def test_image_encoder_rejects_bad_input():
    with pytest.raises(ManipError, match="crop_fraction"):
        image_encoder(crop_fraction=1.5)
    with pytest.raises(ManipError, match="unknown key"):
        ENCODERS.parse_params("image", {"widht": 8}, "policy.encoders.image")
    encoder = image_encoder()
    with pytest.raises(ManipError, match="robot0_eye_in_hand_image"):
        encoder({"agentview_image": torch.zeros(1, 2, 3, 32, 32)})
    with pytest.raises(ManipError, match="expected"):
        encoder({f.name: torch.zeros(1, 2, 32, 32, 3) for f in CAMERAS})


@pytest.fixture(scope="module")
def tiny_pretrained_resnet(tmp_path_factory):
    """A tiny Hugging Face ResNet (BatchNorm, random weights with non-trivial running stats) saved locally."""
    from transformers import ResNetConfig, ResNetModel

    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    model = ResNetModel(config)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(pixel_values=torch.randn(4, 3, 32, 32) * 2 + 0.5)  # moves the running statistics
    model.eval()
    path = tmp_path_factory.mktemp("tiny_resnet")
    model.save_pretrained(path)
    return path, model


def test_pretrained_trunk_loads_locally_and_matches_the_original_with_batchnorm_folded(
    tiny_pretrained_resnet,
):
    path, original = tiny_pretrained_resnet
    encoder = image_encoder(pretrained_path=str(path), shared=True)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in encoder.modules())
    trunk = encoder.encoder_for("agentview_image").trunk
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    pixels = ((images + 1) / 2 - trunk.mean) / trunk.std
    with torch.no_grad():
        expected = original(pixel_values=pixels).last_hidden_state
        assert torch.allclose(trunk(images), expected, atol=1e-4)
    encoder.train()
    encoder(camera_obs()).sum().backward()  # trainable end to end
    assert all(p.grad is not None for p in trunk.parameters())


def test_pretrained_path_errors_are_one_line(tmp_path):
    with pytest.raises(ManipError, match=r"no config\.json"):
        image_encoder(pretrained_path=str(tmp_path / "missing"))


def transformer(cond_dim: int, uses_time2: bool, horizon: int = 8, action_dim: int = 5):
    entry = BACKBONES.get("transformer")
    config = BACKBONES.parse_params("transformer", TINY_TRANSFORMER, "test")
    return entry.cls(action_dim, horizon, cond_dim, uses_time2, config)


@pytest.mark.parametrize("head_name", ["diffusion", "flow", "meanflow"])
def test_transformer_trains_and_samples_with_every_head(head_name):
    entry = HEADS.get(head_name)
    head = entry.cls(entry.config_cls())
    torch.manual_seed(0)
    backbone = transformer(cond_dim=12, uses_time2=head.uses_time2)
    actions, cond = torch.randn(4, 8, 5), torch.randn(4, 12)
    loss, metrics = head.loss(backbone, actions, cond)
    assert torch.isfinite(loss) and "loss" in metrics
    loss.backward()
    unused = [n for n, p in backbone.named_parameters() if p.grad is None]
    assert not unused
    for steps in (1, 3):
        assert head.sample(backbone, cond, 8, 5, steps=steps).shape == (4, 8, 5)
    prefix = torch.randn(4, 3, 5)
    assert torch.equal(head.sample(backbone, cond, 8, 5, steps=2, prefix=prefix)[:, :3], prefix)


@pytest.mark.slow
def test_transformer_learns_a_conditional_mapping():
    """A few hundred flow-matching steps on a cond → chunk mapping get the sampled chunk close to the target."""
    torch.manual_seed(0)
    entry = HEADS.get("flow")
    head = entry.cls(entry.config_cls())
    backbone = transformer(cond_dim=2, uses_time2=False, horizon=4, action_dim=2)
    cond = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    target = torch.stack([torch.full((4, 2), 0.8), torch.full((4, 2), -0.8)])
    optimizer = torch.optim.AdamW(backbone.parameters(), lr=2e-3)
    for _ in range(200):
        loss, _ = head.loss(backbone, target.repeat(8, 1, 1), cond.repeat(8, 1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    sample = head.sample(backbone, cond, 4, 2, steps=10, generator=torch.Generator().manual_seed(0))
    assert (sample - target).abs().mean() < 0.2  # an unconditioned model would be ~0.8 off


def test_transformer_depends_on_time2_only_when_built_for_it():
    backbone = transformer(cond_dim=4, uses_time2=True)
    with torch.no_grad():
        for p in backbone.parameters():
            p.normal_(std=0.2)
    x, t, cond = torch.randn(2, 8, 5), torch.rand(2), torch.randn(2, 4)
    assert not torch.allclose(backbone(x, t, cond, torch.zeros(2)), backbone(x, t, cond, torch.ones(2)))
    with pytest.raises(ManipError, match="d_model"):
        BACKBONES.get("transformer").cls(
            5, 8, 4, False, BACKBONES.parse_params("transformer", {"d_model": 30, "n_heads": 4}, "t")
        )
