"""Flow-matching head: rectified flow from noise (t=0) to data (t=1); Euler or Heun sampling with N steps.

Real-time chunking (a ``prefix`` at sampling) works two ways. By default the prefix is inpainted: held where the
flow path puts it at each step, so the rest of the chunk is drawn around it. With ``prefix_training > 0`` the head
is also *trained* for it (training-time action conditioning): that share of training chunks get a clean prefix of
1..``max_prefix`` ground-truth actions, the backbone is told which steps are given (a mask appended to the
conditioning) and learns only the rest; at sampling the prefix is given clean, exactly as in training. This is
what lets a chunk requested from an old observation continue the actions that actually ran meanwhile.

``prediction: sample`` lets the backbone output a clean chunk ``x̂`` instead of the velocity; the head turns it into
``v = (x̂ - x_t) / max(1 - t, sample_min_gap)`` and trains on the same velocity loss (so every velocity is still
reachable; one Euler step from noise returns ``x̂``). Same idea as the diffusion head's ``prediction_type: sample``
and MeanFlow's ``prediction: sample``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from manip.core.config import StrictConfig
from manip.policies.heads.base import (
    HEADS,
    GenerativeHead,
    check_prefix,
    check_steps,
    hold_prefix,
    initial_noise,
    masked_mse,
)


class FlowHeadConfig(StrictConfig):
    """Training-time distribution (uniform or Beta), solver, default steps, scale of time fed to the backbone."""

    FINETUNE_MAY_CHANGE: ClassVar[frozenset[str]] = frozenset(
        {
            "time_sampling",
            "beta_alpha",
            "beta_beta",
            "solver",
            "default_steps",
            "prediction",
            "sample_min_gap",
        }
    )
    """Settings of the training target and sampler that an ``init_from`` fine-tune may switch."""

    time_sampling: Literal["uniform", "beta"] = "uniform"
    beta_alpha: float = 1.5
    beta_beta: float = 1.0
    solver: Literal["euler", "heun"] = "euler"
    default_steps: int = 10
    time_scale: float = 100.0
    prefix_training: float = Field(0.0, ge=0, le=1)
    """Share of training chunks given a clean action prefix (0: no prefix conditioning, plain inpainting)."""
    max_prefix: int = Field(10, ge=1)
    """Longest training prefix (clipped to horizon - 1); cover the delay in ticks you expect at deployment."""
    prediction: Literal["velocity", "sample"] = "velocity"
    """What the backbone outputs: the velocity, or a clean chunk ``x̂`` (``v = (x̂ - x_t) / (1 - t)``)."""
    sample_min_gap: float = Field(0.05, gt=0, le=1)
    """Floor on ``1 - t`` in ``v = (x̂ - x_t) / (1 - t)`` with ``prediction: sample``."""


@HEADS.register("flow", FlowHeadConfig)
class FlowHead(GenerativeHead):
    """The backbone predicts the velocity ``data - noise`` at ``x_t = (1 - t) noise + t data``."""

    def __init__(self, config: FlowHeadConfig):
        self.config = config
        self.default_steps = config.default_steps

    @property
    def prefix_conditioned(self) -> bool:
        return self.config.prefix_training > 0

    def extra_cond_dim(self, horizon: int) -> int:
        return horizon if self.prefix_conditioned else 0

    def _training_prefix_mask(self, batch: int, horizon: int, device) -> torch.Tensor:
        """(B, H) bool: True on the clean prefix steps of each training chunk."""
        longest = max(1, min(self.config.max_prefix, horizon - 1))
        lengths = torch.randint(1, longest + 1, (batch,), device=device)
        lengths = torch.where(torch.rand(batch, device=device) < self.config.prefix_training, lengths, 0)
        return torch.arange(horizon, device=device)[None, :] < lengths[:, None]

    def _sample_time(self, batch: int, device) -> torch.Tensor:
        if self.config.time_sampling == "beta":
            beta = torch.distributions.Beta(self.config.beta_alpha, self.config.beta_beta)
            return beta.sample((batch,)).to(device)
        return torch.rand(batch, device=device)

    def velocity(
        self, backbone, x: torch.Tensor, t: float | torch.Tensor, cond: torch.Tensor
    ) -> torch.Tensor:
        """The velocity at ``(x, t)``: the backbone's output, or ``(x̂ - x) / max(1 - t, ε)`` with ``prediction: sample``."""
        time = torch.as_tensor(t, device=x.device, dtype=torch.float32).expand(x.shape[0])
        out = backbone(x, time * self.config.time_scale, cond)
        if self.config.prediction == "velocity":
            return out
        gap = (1 - time).clamp(min=self.config.sample_min_gap).to(out.dtype)
        return (out - x) / gap[:, None, None]

    def loss(self, backbone, actions, cond):
        noise = torch.randn_like(actions)
        t = self._sample_time(actions.shape[0], actions.device)
        x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * actions
        if not self.prefix_conditioned:
            loss = F.mse_loss(self.velocity(backbone, x_t, t, cond), actions - noise)
            return loss, {"loss": float(loss.detach())}
        given = self._training_prefix_mask(actions.shape[0], actions.shape[1], actions.device)
        x_t = torch.where(given[..., None], actions, x_t)
        velocity = self.velocity(backbone, x_t, t, torch.cat([cond, given.to(cond.dtype)], dim=-1))
        loss = masked_mse(velocity, actions - noise, ~given)
        return loss, {"loss": float(loss.detach())}

    @torch.no_grad()
    def sample(
        self, backbone, cond, horizon, action_dim, steps=None, prefix=None, generator=None, noise=None
    ):
        steps = check_steps(steps, self.default_steps)
        given = check_prefix(prefix, cond.shape[0], horizon, action_dim)
        noise = initial_noise(cond, horizon, action_dim, generator, noise)
        if self.prefix_conditioned:
            # the prefix is given clean, and the backbone is told which steps it covers
            mask = (torch.arange(horizon, device=cond.device) < given).to(cond.dtype)
            cond = torch.cat([cond, mask.expand(cond.shape[0], horizon)], dim=-1)
        backbone = self.conditioned(backbone, cond)

        def on_path(t: float) -> torch.Tensor | None:  # where the prefix is held at time t
            if prefix is None or self.prefix_conditioned:
                return prefix
            return (1 - t) * noise[:, : prefix.shape[1]] + t * prefix

        def times(t: float) -> torch.Tensor:  # filled on the device: no host copy (CUDA-graph capturable)
            return torch.full((cond.shape[0],), t, device=cond.device, dtype=torch.float32)

        x, dt = noise, 1.0 / steps
        for i in range(steps):
            t = i * dt
            x = hold_prefix(x, on_path(t))
            v = self.velocity(backbone, x, times(t), cond)
            if self.config.solver == "heun":
                x_euler = hold_prefix(x + dt * v, on_path(t + dt))
                v = 0.5 * (v + self.velocity(backbone, x_euler, times(t + dt), cond))
            x = x + dt * v
        return hold_prefix(x, prefix)
