"""Flow-matching head: rectified flow from noise (t=0) to data (t=1); Euler or Heun sampling with N steps."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from data.config import StrictConfig
from policies.heads.base import HEADS, GenerativeHead, check_prefix, check_steps, hold_prefix, initial_noise


class FlowHeadConfig(StrictConfig):
    """Training-time distribution (uniform or Beta), solver, default steps, scale of time fed to the backbone."""

    time_sampling: Literal["uniform", "beta"] = "uniform"
    beta_alpha: float = 1.5
    beta_beta: float = 1.0
    solver: Literal["euler", "heun"] = "euler"
    default_steps: int = 10
    time_scale: float = 100.0


@HEADS.register("flow", FlowHeadConfig)
class FlowHead(GenerativeHead):
    """The backbone predicts the velocity ``data - noise`` at ``x_t = (1 - t) noise + t data``."""

    def __init__(self, config: FlowHeadConfig):
        self.config = config
        self.default_steps = config.default_steps

    def _sample_time(self, batch: int, device) -> torch.Tensor:
        if self.config.time_sampling == "beta":
            beta = torch.distributions.Beta(self.config.beta_alpha, self.config.beta_beta)
            return beta.sample((batch,)).to(device)
        return torch.rand(batch, device=device)

    def velocity(
        self, backbone, x: torch.Tensor, t: float | torch.Tensor, cond: torch.Tensor
    ) -> torch.Tensor:
        time = torch.as_tensor(t, device=x.device, dtype=torch.float32).expand(x.shape[0])
        return backbone(x, time * self.config.time_scale, cond)

    def loss(self, backbone, actions, cond):
        noise = torch.randn_like(actions)
        t = self._sample_time(actions.shape[0], actions.device)
        x_t = (1 - t[:, None, None]) * noise + t[:, None, None] * actions
        loss = F.mse_loss(self.velocity(backbone, x_t, t, cond), actions - noise)
        return loss, {"loss": float(loss.detach())}

    @torch.no_grad()
    def sample(self, backbone, cond, horizon, action_dim, steps=None, prefix=None, generator=None):
        steps = check_steps(steps, self.default_steps)
        check_prefix(prefix, cond.shape[0], horizon, action_dim)
        noise = initial_noise(cond, horizon, action_dim, generator)

        def on_path(t: float) -> torch.Tensor | None:  # the prefix where the flow path puts it at time t
            return None if prefix is None else (1 - t) * noise[:, : prefix.shape[1]] + t * prefix

        x, dt = noise, 1.0 / steps
        for i in range(steps):
            t = i * dt
            x = hold_prefix(x, on_path(t))
            v = self.velocity(backbone, x, t, cond)
            if self.config.solver == "heun":
                x_euler = hold_prefix(x + dt * v, on_path(t + dt))
                v = 0.5 * (v + self.velocity(backbone, x_euler, t + dt, cond))
            x = x + dt * v
        return hold_prefix(x, prefix)
