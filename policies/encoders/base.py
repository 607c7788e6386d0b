"""The observation-encoder interface, the encoder registry and the composite encoder.

Encoders see NORMALIZED observations: low-dim features as float tensors ``(B, To, *shape)`` after the policy's
normalizer, images as float ``(B, To, C, H, W)`` in ``[-1, 1]`` and text as a list of strings. Each one returns
``(B, cond_dim)`` and exposes ``cond_dim``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from manip.core.errors import ManipError
from manip.core.registry import Registry
from manip.core.specs import FeatureSpec

#: Encoders by kind of observation; the image and language modules register "image" and "language" when imported.
ENCODERS = Registry(
    "encoder",
    modules={
        "lowdim": "manip.policies.encoders.lowdim",
        "image": "manip.policies.encoders.image",
        "language": "manip.policies.encoders.language",
        "points": "manip.policies.encoders.points",
    },
)

#: Which encoder consumes which feature kind (``manip.core.specs.KINDS``).
ENCODER_FOR_KIND = {
    "lowdim": "lowdim",
    "rgb": "image",
    "depth": "image",
    "text": "language",
    "points": "points",
}


class ObsEncoder(nn.Module):
    """Base class: ``forward(obs) -> (B, cond_dim)``.

    Subclasses are built as ``cls(features, n_obs_steps, config)`` where ``features`` are the
    :class:`~manip.core.specs.FeatureSpec` s of the kind they handle and ``config`` their registered config model.
    """

    cond_dim: int

    def forward(self, obs: dict[str, Any]) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class CompositeEncoder(ObsEncoder):
    """Runs one encoder per observation kind present in the spec and concatenates their outputs."""

    def __init__(self, features: list[FeatureSpec], n_obs_steps: int, configs: dict[str, Any]):
        super().__init__()
        by_encoder: dict[str, list[FeatureSpec]] = {}
        for feature in features:
            by_encoder.setdefault(ENCODER_FOR_KIND[feature.kind], []).append(feature)
        if not by_encoder:
            raise ManipError("the observation spec is empty: a policy needs at least one observation key")
        self.parts = nn.ModuleDict()
        for name, group in by_encoder.items():
            entry = ENCODERS.get(name)
            config = configs.get(name) or entry.config_cls()
            self.parts[name] = entry.cls(group, n_obs_steps, config)
        self.cond_dim = sum(part.cond_dim for part in self.parts.values())

    def forward(self, obs: dict[str, Any]) -> torch.Tensor:
        return torch.cat([part(obs) for part in self.parts.values()], dim=-1)
