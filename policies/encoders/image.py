"""Image observation encoder: ResNet-18-style trunk with GroupNorm, spatial-softmax keypoints, random crops.

Input: a dict of normalized observations ``{key: (B, To, C, H, W)}``: float CHW images in [-1, 1] (the policy
converts the stored uint8 HWC). Each camera frame goes through a trunk (one per camera, or one shared by all
cameras: ``shared``), then a spatial softmax that turns the last feature map into 2-D keypoints, then a linear
layer; the camera features of all ``To`` frames are concatenated into ``(B, cond_dim)``. The composite encoder
(``manip.policies.encoders.base``) concatenates that with the low-dim encoder's output, as Diffusion Policy does.

Augmentation: a random crop of ``crop_fraction`` of the image in training, the center crop at evaluation.

A pretrained vision trunk can be loaded from a local Hugging Face directory (``pretrained_path``; never from the
hub). Its BatchNorm layers are folded into fixed per-channel affine layers (the running statistics become a
scale and a shift), so the encoder never depends on batch statistics, and EMA stays valid. The checkpoint then
holds all trunk weights; the directory is needed again only to rebuild the architecture (its ``config.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from pydantic import Field
from torch import nn

from manip.core.config import StrictConfig
from manip.core.errors import ManipError, require
from manip.core.specs import FeatureSpec
from manip.policies.encoders.base import ENCODERS, ObsEncoder

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageEncoderConfig(StrictConfig):
    """Image encoder options.

    ``width`` is the channel count of the first stage (64 for ResNet-18; stages double it),
    ``blocks`` the number of basic blocks per stage, ``keypoints`` the spatial-softmax keypoints per camera,
    ``feature_dim`` the per-camera feature size after the keypoints.
    """

    width: int = 64
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    group_size: int = 16
    keypoints: int = 32
    feature_dim: int = 64
    shared: bool = False
    crop_fraction: float = Field(0.9, gt=0, le=1)
    pretrained_path: str | None = None


def group_norm(channels: int, group_size: int) -> nn.GroupNorm:
    """GroupNorm with groups of ``group_size`` channels (at least one group)."""
    return nn.GroupNorm(max(1, channels // group_size), channels)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3×3 convolutions) with GroupNorm instead of BatchNorm."""

    def __init__(self, c_in: int, c_out: int, stride: int, group_size: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = group_norm(c_out, group_size)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = group_norm(c_out, group_size)
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), group_norm(c_out, group_size))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(h)) + self.skip(x))


class ResNetGN(nn.Module):
    """ResNet-18-style trunk (7×7 stem, max-pool, stages of basic blocks) with GroupNorm; output a feature map."""

    def __init__(self, width: int, blocks: tuple[int, ...], group_size: int, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
            group_norm(width, group_size),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, 1),
        )
        stages, c_in = [], width
        for i, n in enumerate(blocks):
            c_out = width * 2**i
            stage = [BasicBlock(c_in, c_out, 1 if i == 0 else 2, group_size)]
            stage += [BasicBlock(c_out, c_out, 1, group_size) for _ in range(n - 1)]
            stages.append(nn.Sequential(*stage))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.out_channels = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class FrozenBatchNormAffine(nn.Module):
    """A BatchNorm folded into a per-channel affine map (trainable scale and shift, no batch statistics)."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        std = torch.sqrt(bn.running_var + bn.eps)
        weight = bn.weight.detach() if bn.weight is not None else torch.ones_like(std)
        bias = bn.bias.detach() if bn.bias is not None else torch.zeros_like(std)
        self.scale = nn.Parameter(weight / std)
        self.shift = nn.Parameter(bias - bn.running_mean * weight / std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return x * self.scale.view(shape) + self.shift.view(shape)


def fold_batch_norms(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm inside ``module`` by a :class:`FrozenBatchNormAffine` (in place); return it."""
    for name, child in module.named_children():
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, FrozenBatchNormAffine(child))
        else:
            fold_batch_norms(child)
    return module


class PretrainedTrunk(nn.Module):
    """A convolutional vision model from a local Hugging Face directory, returning its last feature map.

    Images arrive in [-1, 1] and are renormalized with the ImageNet statistics these models are trained with.
    """

    def __init__(self, path: str):
        super().__init__()
        transformers = require("transformers", "train")
        directory = Path(path).expanduser()
        if not (directory / "config.json").is_file():
            raise ManipError(
                f"pretrained vision backbone '{path}': no config.json there (a local HF directory)"
            )
        transformers.utils.logging.disable_progress_bar()
        try:
            model = transformers.AutoModel.from_pretrained(str(directory), local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ManipError(f"pretrained vision backbone '{path}': cannot load ({exc})") from None
        self.model = fold_batch_norms(model)
        channels = getattr(model.config, "num_channels", 3)
        with torch.no_grad():
            probe = self._features(torch.zeros(1, channels, 64, 64))
        if probe.ndim != 4:
            raise ManipError(f"pretrained vision backbone '{path}' is not convolutional (no 2-D feature map)")
        self.out_channels = probe.shape[1]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixels).last_hidden_state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._features(((x + 1) / 2 - self.mean) / self.std)


class SpatialSoftmax(nn.Module):
    """Feature map (N, C, h, w) → expected image coordinates of ``keypoints`` learned heat maps: (N, 2·keypoints)."""

    def __init__(self, channels: int, keypoints: int):
        super().__init__()
        self.to_heatmaps = nn.Conv2d(channels, keypoints, 1)
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        n, _, h, w = features.shape
        heat = self.to_heatmaps(features).flatten(2) / self.log_temperature.exp()
        attention = heat.softmax(dim=-1)  # (N, K, h*w)
        ys = torch.linspace(-1, 1, h, device=features.device, dtype=attention.dtype)
        xs = torch.linspace(-1, 1, w, device=features.device, dtype=attention.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        coords = torch.stack([grid_x.reshape(-1), grid_y.reshape(-1)], dim=-1)  # (h*w, 2)
        return (attention @ coords).reshape(n, -1)


def crop_size(shape: tuple[int, ...], fraction: float) -> tuple[int, int]:
    """The (height, width) of the crop taken from an HWC image of per-step ``shape``."""
    return round(shape[0] * fraction), round(shape[1] * fraction)


def crop_images(images: torch.Tensor, size: tuple[int, int], random: bool) -> torch.Tensor:
    """Crop (N, C, H, W) to ``size``: a random window per image when ``random``, else the center."""
    n, _, height, width = images.shape
    ch, cw = size
    if (ch, cw) == (height, width):
        return images
    if not random:
        top, left = (height - ch) // 2, (width - cw) // 2
        return images[:, :, top : top + ch, left : left + cw]
    tops = torch.randint(0, height - ch + 1, (n,), device=images.device)
    lefts = torch.randint(0, width - cw + 1, (n,), device=images.device)
    rows = (tops[:, None] + torch.arange(ch, device=images.device))[:, :, None]  # (N, ch, 1)
    cols = (lefts[:, None] + torch.arange(cw, device=images.device))[:, None, :]  # (N, 1, cw)
    batch = torch.arange(n, device=images.device)[:, None, None]
    return images.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def make_trunk(config: ImageEncoderConfig, in_channels: int = 3) -> nn.Module:
    """The convolutional trunk ``config`` asks for (pretrained from a local path, or ResNet-GN from scratch).

    The result maps (N, in_channels, H, W) to a feature map and has an ``out_channels`` attribute.
    """
    if config.pretrained_path:
        if in_channels != 3:
            raise ManipError(f"pretrained vision backbone needs 3-channel images, got {in_channels} channels")
        return PretrainedTrunk(config.pretrained_path)
    return ResNetGN(config.width, tuple(config.blocks), config.group_size, in_channels)


class CameraEncoder(nn.Module):
    """Trunk + spatial softmax + linear: one camera frame (N, 3, h, w) → (N, feature_dim)."""

    def __init__(self, config: ImageEncoderConfig, in_channels: int = 3):
        super().__init__()
        self.trunk = make_trunk(config, in_channels)
        self.keypoints = SpatialSoftmax(self.trunk.out_channels, config.keypoints)
        self.project = nn.Sequential(nn.Linear(2 * config.keypoints, config.feature_dim), nn.ReLU())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.project(self.keypoints(self.trunk(images)))


@ENCODERS.register("image", ImageEncoderConfig)
class ImageObsEncoder(ObsEncoder):
    """Camera observations → ``(B, cond_dim)``; registered as the ``"image"`` encoder.

    ``features`` are the camera features (per-step shape HWC as stored: ``rgb`` or ``depth``);
    ``n_obs_steps`` frames of each are flattened into the output.
    """

    def __init__(self, features: list[FeatureSpec], n_obs_steps: int, config: ImageEncoderConfig):
        super().__init__()
        self.config = config
        if not features:
            raise ManipError("image encoder: no camera feature in the observation spec")
        self.cameras = [f.name for f in features]
        self.channels, self.crop_sizes = {}, {}
        for feature in features:
            if len(feature.shape) != 3:
                raise ManipError(
                    f"image encoder: '{feature.name}' has per-step shape {feature.shape}, expected HWC"
                )
            self.channels[feature.name] = feature.shape[2]
            self.crop_sizes[feature.name] = crop_size(feature.shape, config.crop_fraction)
        if config.shared:
            if len(set(self.channels.values())) > 1:
                raise ManipError("image encoder: shared=true needs cameras with the same channel count")
            self.camera_encoders = nn.ModuleDict(
                {"shared": CameraEncoder(config, self.channels[self.cameras[0]])}
            )
        else:
            self.camera_encoders = nn.ModuleDict(
                {name: CameraEncoder(config, self.channels[name]) for name in self.cameras}
            )
        self.n_obs_steps = n_obs_steps
        self.cond_dim = n_obs_steps * len(self.cameras) * config.feature_dim

    def encoder_for(self, camera: str) -> CameraEncoder:
        """The trunk that encodes ``camera`` (the shared one when ``shared``)."""
        return self.camera_encoders["shared" if self.config.shared else camera]

    def camera_features(self, name: str, images: torch.Tensor) -> torch.Tensor:
        """(B, To, C, H, W) in [-1, 1] → (B, To, feature_dim), cropping (random in training, center in eval)."""
        if images.ndim != 5 or images.shape[2] != self.channels[name]:
            raise ManipError(
                f"image encoder: '{name}' has shape {tuple(images.shape)}, "
                f"expected (B, To, {self.channels[name]}, H, W)"
            )
        b, t = images.shape[:2]
        frames = crop_images(images.flatten(0, 1), self.crop_sizes[name], random=self.training)
        return self.encoder_for(name)(frames).reshape(b, t, -1)

    def per_step_features(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, To, cameras · feature_dim): every camera's features, per observation step."""
        missing = [k for k in self.cameras if k not in obs]
        if missing:
            raise ManipError(f"image encoder: observation lacks camera(s) {', '.join(missing)}")
        return torch.cat([self.camera_features(name, obs[name]) for name in self.cameras], dim=-1)

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.per_step_features(obs).flatten(1)
