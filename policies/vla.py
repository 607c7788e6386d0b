"""VLA-style multi-task policy: language instruction + image tokens + proprio → transformer → flow action expert.

Tokens (all of width ``context.d_model``):
- one language token: the frozen sentence embedding of the instruction (``manip.policies.encoders.language``; the text
  model is referenced by path with a fingerprint in the checkpoint, see that module) through a trainable linear;
- image tokens: every camera frame goes through a ResNet-GN (or pretrained, ``manip.policies.encoders.image``) trunk,
  and each cell of its last feature map becomes a token (linear + learned camera/time/position embedding);
- proprio tokens: the normalized low-dim features of each observation step, one token per step;
- ``context.readouts`` learned readout tokens.
A pre-LayerNorm transformer encoder mixes them; the readout tokens, flattened, are the conditioning ``(B, C)`` of
the action expert: a backbone (default the DiT-style ``transformer``) trained and sampled by a generative head
(default ``flow``, the flow-matching head). Save/load is the common checkpoint code.

Batches carry ``"instruction"``: a list of B strings; ``predict_chunk(..., instruction=[...])`` likewise.
Training data gets them from each episode's ``meta`` (``instruction``, recorded by ``manip collect``) through
:class:`InstructionDataset`, which :meth:`VLAPolicy.training_dataset` applies to a ``manip.data.dataset.ChunkDataset``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from manip.core.config import StrictConfig
from manip.core.errors import ManipError
from manip.core.specs import Spec
from manip.policies.backbones.base import BACKBONES
from manip.policies.base import Policy
from manip.policies.config import POLICY_TYPES, Component, PolicyConfig
from manip.policies.encoders.base import ENCODERS
from manip.policies.encoders.image import ImageEncoderConfig, crop_images, crop_size, make_trunk
from manip.policies.encoders.language import LanguageEncoderConfig, SentenceEmbedder, check_instructions


class ContextConfig(StrictConfig):
    """The token-mixing transformer: width, depth, heads and number of readout tokens."""

    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    readouts: int = 4
    dropout: float = 0.0


class VLAConfig(PolicyConfig):
    """A :class:`PolicyConfig` with ``type: vla``, a ``context`` transformer, and transformer + flow defaults.

    ``encoders.image`` and ``encoders.language`` take the image / language encoder parameters.
    """

    type: str = "vla"
    context: ContextConfig = ContextConfig()
    backbone: Component = Component(name="transformer")
    head: Component = Component(name="flow")


class ImageTokenizer(nn.Module):
    """Camera frames (B, To, C, H, W) → tokens (B, To · cells, d_model), one trunk per camera (or shared)."""

    def __init__(
        self, obs_spec: Spec, cameras: list[str], n_obs_steps: int, config: ImageEncoderConfig, d_model: int
    ):
        super().__init__()
        self.cameras = cameras
        self.config = config
        self.crop_sizes = {}
        trunks = {}
        for name in cameras:
            if len(obs_spec[name].shape) != 3:
                raise ManipError(
                    f"vla: camera '{name}' has per-step shape {obs_spec[name].shape}, expected HWC"
                )
            channels = obs_spec[name].shape[2]
            self.crop_sizes[name] = crop_size(obs_spec[name].shape, config.crop_fraction)
            if not config.shared or not trunks:
                trunks["shared" if config.shared else name] = make_trunk(config, channels)
        self.trunks = nn.ModuleDict(trunks)
        out_channels = next(iter(trunks.values())).out_channels
        self.project = nn.Linear(out_channels, d_model)
        with torch.no_grad():
            cells = [
                self._feature_map(name, torch.zeros(1, obs_spec[name].shape[2], *self.crop_sizes[name]))
                for name in cameras
            ]
        self.cells = {name: fm.shape[2] * fm.shape[3] for name, fm in zip(cameras, cells, strict=True)}
        self.position = nn.ParameterDict(
            {
                name: nn.Parameter(0.02 * torch.randn(n_obs_steps, self.cells[name], d_model))
                for name in cameras
            }
        )

    def _feature_map(self, name: str, frames: torch.Tensor) -> torch.Tensor:
        return self.trunks["shared" if self.config.shared else name](frames)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        tokens = []
        for name in self.cameras:
            images = obs[name]
            b, t = images.shape[:2]
            frames = crop_images(images.flatten(0, 1), self.crop_sizes[name], random=self.training)
            cells = self._feature_map(name, frames).flatten(2).transpose(1, 2)  # (B·To, cells, C)
            tokens.append(
                (
                    self.project(cells).reshape(b, t, -1, self.project.out_features) + self.position[name]
                ).flatten(1, 2)
            )
        return torch.cat(tokens, dim=1)


class InstructionDataset(torch.utils.data.Dataset):
    """A ``ChunkDataset`` whose items also carry ``"instruction"``: their episode's instruction (from ``meta``)."""

    def __init__(self, dataset):
        self.dataset = dataset
        store = dataset.store
        self.instructions = []
        for episode in range(store.num_episodes):
            text = store.episode_meta(episode).get("instruction")
            if dataset.episode_mask[episode] and not (isinstance(text, str) and text.strip()):
                raise ManipError(
                    f"{store.path}: episode {episode} has no instruction in its metadata (vla policy)"
                )
            self.instructions.append(text)
        self.window_episode = dataset.sampler.window_episodes()

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def store(self):
        """The wrapped dataset's store."""
        return self.dataset.store

    def window_episodes(self) -> np.ndarray:
        """The episode index of every item (as the wrapped dataset's)."""
        return self.window_episode

    def __getitem__(self, i: int) -> dict:
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: list[int]) -> list[dict]:
        """Many items at once (torch's DataLoader uses this), each with its episode's instruction."""
        fetch = getattr(self.dataset, "__getitems__", None)
        items = fetch(list(indices)) if fetch else [self.dataset[i] for i in indices]
        for i, item in zip(indices, items, strict=True):
            item["instruction"] = self.instructions[int(self.window_episode[i])]
        return items

    def get_validation_dataset(self) -> InstructionDataset:
        return InstructionDataset(self.dataset.get_validation_dataset())

    def __getattr__(self, name: str):  # store, episodes, iter_episodes, ... of the wrapped dataset
        if name == "dataset" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


@POLICY_TYPES.register("vla", VLAConfig)
class VLAPolicy(Policy):
    """Multi-task policy conditioned on a language instruction (see the module docstring)."""

    takes_instruction = True

    def __init__(self, config: VLAConfig, obs_spec: Spec, action_spec: Spec, normalizer):
        super().__init__(config, obs_spec, action_spec, normalizer)
        ctx = config.context
        params = {
            name: ENCODERS.parse_params(name, config.encoders.get(name, {}), f"policy.encoders.{name}")
            for name in ("image", "language")
        }
        unknown = sorted(set(config.encoders) - set(params))
        if unknown:
            raise ManipError(
                f"policy.encoders: the vla policy takes only image and language, not {', '.join(unknown)}"
            )
        language: LanguageEncoderConfig = params["language"]
        self.embedder = SentenceEmbedder(language.path, language.max_length)
        self.language_proj = nn.Linear(self.embedder.dim, ctx.d_model)
        cameras = [k for k in config.obs_keys if obs_spec[k].kind in ("rgb", "depth")]
        self.proprio_keys = [k for k in config.obs_keys if obs_spec[k].kind == "lowdim"]
        self.images = (
            ImageTokenizer(obs_spec, cameras, config.n_obs_steps, params["image"], ctx.d_model)
            if cameras
            else None
        )
        proprio_dim = sum(int(torch.Size(obs_spec[k].shape).numel()) for k in self.proprio_keys)
        self.proprio_proj = nn.Linear(proprio_dim, ctx.d_model) if self.proprio_keys else None
        self.proprio_position = nn.Parameter(0.02 * torch.randn(config.n_obs_steps, ctx.d_model))
        self.type_embedding = nn.Parameter(
            0.02 * torch.randn(4, ctx.d_model)
        )  # language, image, proprio, readout
        self.readouts = nn.Parameter(0.02 * torch.randn(ctx.readouts, ctx.d_model))
        layer = nn.TransformerEncoderLayer(
            ctx.d_model,
            ctx.n_heads,
            4 * ctx.d_model,
            ctx.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.context = nn.TransformerEncoder(layer, ctx.n_layers, enable_nested_tensor=False)
        self.context_norm = nn.LayerNorm(ctx.d_model)
        self.cond_dim = ctx.readouts * ctx.d_model
        entry = BACKBONES.get(config.backbone.name)
        self.backbone = entry.cls(
            self.action_dim,
            config.horizon,
            self.cond_dim + self.head.extra_cond_dim(config.horizon),
            self.head.uses_time2,
            BACKBONES.parse_params(config.backbone.name, config.backbone.params, "policy.backbone"),
        )

    @staticmethod
    def training_dataset(dataset) -> InstructionDataset:
        """Wrap a ``ChunkDataset`` so each item carries its episode's instruction (what ``compute_loss`` needs)."""
        return InstructionDataset(dataset)

    def tokens(self, obs: dict[str, Any], instruction: list[str]) -> torch.Tensor:
        """The (B, N, d_model) token sequence fed to the context transformer."""
        batch = obs[self.config.obs_keys[0]].shape[0]
        texts = check_instructions(instruction, batch=batch, where="instruction")
        device = self.readouts.device
        parts = [self.language_proj(self.embedder(texts).to(device))[:, None] + self.type_embedding[0]]
        if self.images is not None:
            parts.append(self.images(obs) + self.type_embedding[1])
        if self.proprio_proj is not None:
            flat = torch.cat([obs[k].flatten(2) for k in self.proprio_keys], dim=-1)
            parts.append(self.proprio_proj(flat) + self.proprio_position + self.type_embedding[2])
        parts.append((self.readouts + self.type_embedding[3]).expand(batch, -1, -1))
        return torch.cat(parts, dim=1)

    def encode(self, obs: dict[str, Any], instruction: list[str] | None = None) -> torch.Tensor:
        """Normalized observations + instructions → (B, readouts · d_model)."""
        if instruction is None:
            raise ManipError(
                "the vla policy needs an instruction per sample (instruction=[...], batch['instruction'])"
            )
        mixed = self.context_norm(self.context(self.tokens(obs, instruction)))
        return mixed[:, -self.config.context.readouts :].flatten(1)
