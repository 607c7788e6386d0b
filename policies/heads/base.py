"""The generative-head interface and registry.

A head owns no network: it says how a :class:`~manip.policies.backbones.base.Backbone` is trained on normalized action
chunks (``loss``) and how chunks are drawn from it (``sample``). The number of sampling steps is a runtime
argument. ``prefix (B, P, A)`` (normalized) is real-time-chunking inpainting: the first ``P`` actions of every
sample are held to the prefix during sampling and equal it exactly in the result.

Heads are built as ``cls(config)``; ``uses_time2`` tells the backbone whether a second time input is needed and
``extra_cond_dim(horizon)`` how many features the head appends to the observation conditioning (a prefix mask for
heads trained with action-prefix conditioning).
"""

from __future__ import annotations

import torch

from manip.core.errors import ManipError
from manip.core.registry import Registry

HEADS = Registry(
    "head",
    modules={
        "diffusion": "manip.policies.heads.diffusion",
        "flow": "manip.policies.heads.flow",
        "meanflow": "manip.policies.heads.meanflow",
        "streaming": "manip.policies.heads.streaming",
    },
)


class GenerativeHead:
    """Base class for diffusion, flow and MeanFlow heads."""

    uses_time2: bool = False
    default_steps: int = 1
    bind_condition: bool = True
    """Sampling binds the observation conditioning to the backbone once per chunk (:meth:`Backbone.bind`), so
    what depends on it alone is computed once, not at every step; False runs the plain per-step forward pass
    (the reference path ``manip bench inference`` times against)."""

    def conditioned(self, backbone, cond: torch.Tensor):
        """``backbone`` with ``cond`` bound for one sampling loop where it supports it, else ``backbone``."""
        bind = getattr(backbone, "bind", None)
        return bind(cond) if self.bind_condition and bind is not None else backbone

    def extra_cond_dim(self, horizon: int) -> int:
        """Features this head appends to the conditioning vector (0 unless it is prefix-conditioned)."""
        return 0

    def loss(
        self, backbone, actions: torch.Tensor, cond: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:  # pragma: no cover - interface
        raise NotImplementedError

    def sample(
        self,
        backbone,
        cond: torch.Tensor,
        horizon: int,
        action_dim: int,
        steps: int | None = None,
        prefix: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


def initial_noise(
    cond: torch.Tensor,
    horizon: int,
    action_dim: int,
    generator: torch.Generator | None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Standard normal ``(B, horizon, action_dim)`` on ``cond``'s device, drawn from ``generator`` if given;
    ``noise`` (same shape), when given, is used as it is (noise-space steering picks it)."""
    if noise is not None:
        if tuple(noise.shape) != (cond.shape[0], horizon, action_dim):
            raise ManipError(
                f"noise has shape {tuple(noise.shape)}, expected ({cond.shape[0]}, {horizon}, {action_dim})"
            )
        return noise.to(device=cond.device, dtype=cond.dtype)
    return torch.randn(
        (cond.shape[0], horizon, action_dim),
        generator=generator,
        device=generator.device if generator is not None else cond.device,
    ).to(device=cond.device, dtype=cond.dtype)


def check_prefix(prefix: torch.Tensor | None, batch: int, horizon: int, action_dim: int) -> int:
    """Validate an inpainting prefix and return its length ``P`` (0 without one)."""
    if prefix is None:
        return 0
    if (
        prefix.ndim != 3
        or prefix.shape[0] != batch
        or prefix.shape[2] != action_dim
        or prefix.shape[1] > horizon
    ):
        raise ManipError(
            f"prefix has shape {tuple(prefix.shape)}, expected ({batch}, P <= {horizon}, {action_dim})"
        )
    return int(prefix.shape[1])


def check_steps(steps: int | None, default: int) -> int:
    """Resolve the runtime number of sampling steps (``None`` → the head's default)."""
    steps = default if steps is None else int(steps)
    if steps < 1:
        raise ManipError(f"steps must be >= 1, got {steps}")
    return steps


def hold_prefix(x: torch.Tensor, value: torch.Tensor | None) -> torch.Tensor:
    """Return ``x`` with its first ``P`` timesteps replaced by ``value (B, P, A)`` (no-op without one)."""
    if value is None or value.shape[1] == 0:
        return x
    return torch.cat([value.to(x.dtype), x[:, value.shape[1] :]], dim=1)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, learned: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the timesteps a loss learns: ``learned (B, H)`` is True where it counts (held
    prefix actions or clean streaming positions are left out); 0 when nothing is learned."""
    weight = learned[..., None].to(pred.dtype).expand_as(pred)
    return ((pred - target) ** 2 * weight).sum() / weight.sum().clamp_min(1.0)
