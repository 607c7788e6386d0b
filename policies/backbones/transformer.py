"""DiT-style transformer denoising backbone: action steps are tokens; time and observation condition via adaLN-Zero.

Design (documented in docs/ARCHITECTURE.md): every action step of the noisy chunk ``x`` (B, H, A) becomes one
token (linear projection + learned position embedding). The diffusion/flow time ``time`` (B,), the optional
second time ``time2`` (B,) that MeanFlow uses for the interval start, and the observation conditioning ``cond``
(B, C) are embedded and summed into one conditioning vector, which modulates every block through adaptive
LayerNorm (shift, scale and a zero-initialised gate, "adaLN-Zero" from DiT). Conditioning through adaLN rather
than as extra tokens keeps the sequence at H tokens, so attention cost does not grow with the observation size,
and the zero-initialised gates make the untrained network the identity on the residual stream (stable start for
every head). The output projection is zero-initialised too.
"""

from __future__ import annotations

import torch
from torch import nn

from manip.core.config import StrictConfig
from manip.core.errors import ManipError
from manip.policies.backbones.base import BACKBONES, Backbone, time_mlp


class TransformerBackboneConfig(StrictConfig):
    """Size of the transformer backbone (DiT-S-like defaults, scaled down for action chunks)."""

    d_model: int = 256
    n_layers: int = 8
    n_heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x * (1 + scale) + shift`` with (B, D) shift/scale broadcast over tokens."""
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class SelfAttention(nn.Module):
    """Multi-head self-attention written with matmul + softmax, so ``torch.func.jvp`` (MeanFlow) can go through it.

    (PyTorch's fused CPU attention kernels have no forward-mode derivative.)
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        weights = (q @ k.transpose(-2, -1) * (q.shape[-1] ** -0.5)).softmax(dim=-1)
        return self.out((self.dropout(weights) @ v).transpose(1, 2).reshape(b, n, d))


class AdaLNBlock(nn.Module):
    """One DiT block: self-attention and MLP, each wrapped in adaLN-Zero modulation from the conditioning."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(d_model, n_heads, dropout)
        self.norm2 = nn.LayerNorm(d_model, elementwise_affine=False, eps=1e-6)
        hidden = int(d_model * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, hidden),
            nn.GELU(approximate="tanh"),
            nn.Dropout(dropout),
            nn.Linear(hidden, d_model),
        )
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(d_model, 6 * d_model))
        nn.init.zeros_(self.modulation[-1].weight)
        nn.init.zeros_(self.modulation[-1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = self.modulation(c).chunk(6, dim=-1)
        h = modulate(self.norm1(x), shift_a, scale_a)
        x = x + gate_a[:, None, :] * self.attn(h)
        h = modulate(self.norm2(x), shift_m, scale_m)
        return x + gate_m[:, None, :] * self.mlp(h)


@BACKBONES.register("transformer", TransformerBackboneConfig)
class TransformerBackbone(Backbone):
    """DiT-style backbone implementing :class:`manip.policies.backbones.base.Backbone` (registered as ``"transformer"``).

    ``forward(x (B, H, A), time (B,), cond (B, C), time2 (B,) | None) -> (B, H, A)``. With ``uses_time2``
    (MeanFlow) the second time gets its own embedding (``time`` stands in when ``time2`` is None, as in the UNet).
    """

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        cond_dim: int,
        uses_time2: bool,
        config: TransformerBackboneConfig,
    ):
        super().__init__()
        cfg = config
        if cfg.d_model % cfg.n_heads:
            raise ManipError(f"transformer: d_model {cfg.d_model} is not divisible by n_heads {cfg.n_heads}")
        self.config = cfg
        self.action_dim = action_dim
        self.horizon = horizon
        self.uses_time2 = uses_time2
        d = cfg.d_model
        self.input_proj = nn.Linear(action_dim, d)
        self.position = nn.Parameter(torch.zeros(1, horizon, d))
        nn.init.normal_(self.position, std=0.02)
        self.time_embed = time_mlp(d)
        self.time2_embed = time_mlp(d) if uses_time2 else None
        self.cond_embed = nn.Sequential(nn.Linear(cond_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(
            AdaLNBlock(d, cfg.n_heads, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.n_layers)
        )
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.output_proj = nn.Linear(d, action_dim)
        for layer in (self.final_modulation[-1], self.output_proj):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def conditioning(
        self, time: torch.Tensor, cond: torch.Tensor, time2: torch.Tensor | None
    ) -> torch.Tensor:
        """The (B, d_model) vector that modulates every block."""
        c = self.time_embed(time) + self.cond_embed(cond)
        if self.time2_embed is not None:
            c = c + self.time2_embed(time if time2 is None else time2)
        return c

    def forward(
        self, x: torch.Tensor, time: torch.Tensor, cond: torch.Tensor, time2: torch.Tensor | None = None
    ) -> torch.Tensor:
        if x.shape[1] > self.horizon:
            raise ManipError(
                f"transformer: chunk of {x.shape[1]} steps exceeds the built horizon {self.horizon}"
            )
        time = time.expand(x.shape[0]) if time.ndim == 0 else time
        if time2 is not None and time2.ndim == 0:
            time2 = time2.expand(x.shape[0])
        c = self.conditioning(time, cond, time2)
        h = self.input_proj(x) + self.position[:, : x.shape[1]]
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.final_modulation(c).chunk(2, dim=-1)
        return self.output_proj(modulate(self.final_norm(h), shift, scale))
