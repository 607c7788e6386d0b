"""The networks of noise-space SAC: a tanh-Gaussian actor over the base policy's initial noise and twin critics."""

from __future__ import annotations

import math

import torch
from torch import nn


def mlp(inputs: int, hidden: tuple[int, ...], outputs: int) -> nn.Sequential:
    """Linear → LayerNorm → ReLU per hidden layer, then a linear output."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), nn.LayerNorm(width), nn.ReLU()]
        inputs = width
    layers.append(nn.Linear(inputs, outputs))
    return nn.Sequential(*layers)


class NoiseActor(nn.Module):
    """State features ``(B, C)`` → a noise chunk ``(B, H, A)`` in ``[-bound, bound]`` (tanh-squashed Gaussian).

    ``mode`` is the deterministic noise a deployed steered policy feeds its base; ``sample`` draws a noise with its
    log-probability (reparameterized) for SAC. The last layer starts near zero, so a fresh actor steers toward the
    noise ``0``: the base policy's most likely chunk.
    """

    LOG_STD_RANGE = (-5.0, 1.0)

    def __init__(self, state_dim: int, noise_shape: tuple[int, int], hidden: tuple[int, ...], bound: float):
        super().__init__()
        self.noise_shape = tuple(noise_shape)
        self.dim = math.prod(self.noise_shape)
        self.bound = float(bound)
        self.net = mlp(state_dim, hidden, 2 * self.dim)
        nn.init.uniform_(self.net[-1].weight, -1e-3, 1e-3)
        nn.init.zeros_(self.net[-1].bias)

    def _gaussian(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(state).chunk(2, dim=-1)
        low, high = self.LOG_STD_RANGE
        return mean, low + 0.5 * (high - low) * (torch.tanh(log_std) + 1)

    def mode(self, state: torch.Tensor) -> torch.Tensor:
        """The deterministic noise ``(B, H, A)``."""
        mean, _ = self._gaussian(state)
        return (self.bound * torch.tanh(mean)).view(-1, *self.noise_shape)

    def sample(
        self, state: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A noise ``(B, H, A)`` drawn from the policy and its log-probability ``(B,)``."""
        mean, log_std = self._gaussian(state)
        eps = torch.randn(
            mean.shape, generator=generator, device=generator.device if generator is not None else mean.device
        ).to(mean)
        pre = mean + log_std.exp() * eps
        squashed = torch.tanh(pre)
        log_prob = (
            -0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)
            - torch.log(self.bound * (1 - squashed.pow(2)) + 1e-6)
        ).sum(dim=-1)  # fmt: skip
        return (self.bound * squashed).view(-1, *self.noise_shape), log_prob


class TwinCritic(nn.Module):
    """Two Q networks ``(state (B, C), input (B, ...)) → (B, 2)``; the input is flattened (a noise or a chunk)."""

    def __init__(self, state_dim: int, input_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.q1 = mlp(state_dim + input_dim, hidden, 1)
        self.q2 = mlp(state_dim + input_dim, hidden, 1)

    def forward(self, state: torch.Tensor, value_input: torch.Tensor) -> torch.Tensor:
        x = torch.cat([state, value_input.flatten(1)], dim=-1)
        return torch.cat([self.q1(x), self.q2(x)], dim=-1)
