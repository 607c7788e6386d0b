"""Diffusion Policy's FiLM-conditioned 1-D temporal UNet (Chi et al., 2023)."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from manip.core.config import StrictConfig
from manip.core.errors import ManipError
from manip.policies.backbones.base import BACKBONES, Backbone


class UNet1DConfig(StrictConfig):
    """Widths per resolution level (``down_dims``), time-embedding size, conv kernel and GroupNorm groups."""

    down_dims: tuple[int, ...] = (256, 512, 1024)
    time_embed_dim: int = 128
    kernel_size: int = 5
    n_groups: int = 8
    cond_predict_scale: bool = True


class Conv1dBlock(nn.Sequential):
    """Conv1d → GroupNorm → Mish."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, n_groups: int):
        super().__init__(
            nn.Conv1d(in_ch, out_ch, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_ch),
            nn.Mish(),
        )


class FiLMResBlock(nn.Module):
    """Two conv blocks with FiLM (per-channel scale and bias) from the conditioning vector, plus a residual."""

    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, kernel_size: int, n_groups: int, scale: bool):
        super().__init__()
        self.blocks = nn.ModuleList(
            [
                Conv1dBlock(in_ch, out_ch, kernel_size, n_groups),
                Conv1dBlock(out_ch, out_ch, kernel_size, n_groups),
            ]
        )
        self.scale = scale
        self.out_ch = out_ch
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, out_ch * 2 if scale else out_ch))
        self.residual = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor, cond_film: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``cond``: the FiLM input ``(B, film_dim)``; or, with ``cond_film`` (:meth:`observation_film`, computed
        once per chunk), ``Mish`` of its time part only: the projection splits as ``W·mish([time, obs]) + b =
        W_time·mish(time) + (W_obs·mish(obs) + b)`` since Mish acts elementwise."""
        out = self.blocks[0](x)
        if cond_film is None:
            film = self.film(cond)
        else:
            film = torch.addmm(cond_film, cond, self.film[1].weight[:, : cond.shape[1]].t())
        film = film.unsqueeze(-1)
        if self.scale:
            out = film[:, : self.out_ch] * out + film[:, self.out_ch :]
        else:
            out = out + film
        return self.blocks[1](out) + self.residual(x)

    def observation_film(self, mish_obs: torch.Tensor) -> torch.Tensor:
        """The observation part of the FiLM projection plus its bias, from ``Mish(obs conditioning)``."""
        linear = self.film[1]
        return torch.addmm(linear.bias, mish_obs, linear.weight[:, -mish_obs.shape[1] :].t())


@BACKBONES.register("unet1d", UNet1DConfig)
class UNet1D(Backbone):
    """Temporal UNet over the chunk (channels = action dims); time(s) + observation condition every block."""

    def __init__(self, action_dim: int, horizon: int, cond_dim: int, uses_time2: bool, config: UNet1DConfig):
        super().__init__()
        levels = len(config.down_dims)
        if horizon % (2 ** (levels - 1)):
            raise ManipError(
                f"unet1d: horizon {horizon} must be divisible by 2^(len(down_dims)-1) = {2 ** (levels - 1)}"
            )
        bad = [d for d in config.down_dims if d % config.n_groups]
        if bad:
            raise ManipError(f"unet1d: down_dims {bad} not divisible by n_groups={config.n_groups}")
        film_dim = self.add_film_time_embeddings(config.time_embed_dim, cond_dim, uses_time2)
        block = dict(
            cond_dim=film_dim,
            kernel_size=config.kernel_size,
            n_groups=config.n_groups,
            scale=config.cond_predict_scale,
        )
        dims = [action_dim, *config.down_dims]
        self.down = nn.ModuleList()
        for i, (d_in, d_out) in enumerate(itertools.pairwise(dims)):
            last = i == levels - 1
            self.down.append(
                nn.ModuleList(
                    [
                        FiLMResBlock(d_in, d_out, **block),
                        FiLMResBlock(d_out, d_out, **block),
                        nn.Conv1d(d_out, d_out, 3, 2, 1) if not last else nn.Identity(),
                    ]
                )
            )
        mid = config.down_dims[-1]
        self.mid = nn.ModuleList([FiLMResBlock(mid, mid, **block), FiLMResBlock(mid, mid, **block)])
        self.up = nn.ModuleList()
        for d_out, d_in in reversed(list(itertools.pairwise(dims[1:]))):
            self.up.append(
                nn.ModuleList(
                    [
                        FiLMResBlock(d_in * 2, d_out, **block),
                        FiLMResBlock(d_out, d_out, **block),
                        nn.ConvTranspose1d(d_out, d_out, 4, 2, 1),
                    ]
                )
            )
        first = config.down_dims[0]
        self.final = nn.Sequential(
            Conv1dBlock(first, first, config.kernel_size, config.n_groups), nn.Conv1d(first, action_dim, 1)
        )

    def film_blocks(self) -> list[FiLMResBlock]:
        """The FiLM blocks in the order :meth:`forward` runs them."""
        levels = [*(level[:2] for level in self.down), self.mid, *(level[:2] for level in self.up)]
        return [block for level in levels for block in level]

    def precompute_condition(self, cond: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every block's FiLM projection of the observation conditioning (+ bias), once per chunk."""
        mish_obs = nn.functional.mish(cond)
        return {"cond_film": tuple(block.observation_film(mish_obs) for block in self.film_blocks())}

    def forward(
        self,
        x: torch.Tensor,
        time: torch.Tensor,
        cond: torch.Tensor,
        time2: torch.Tensor | None = None,
        cond_film: tuple[torch.Tensor, ...] | None = None,
    ) -> torch.Tensor:
        """``cond_film``: :meth:`precompute_condition`'s projections for this ``cond`` (same result, less work
        per sampling step); without it every block projects the whole FiLM input."""
        if cond_film is None:
            film = self.film_conditioning(time, cond, time2)
            block_films = itertools.repeat(None)
        else:
            film = nn.functional.mish(self.time_features(time, time2))
            block_films = iter(cond_film)
        h = x.transpose(1, 2)
        skips = []
        for res1, res2, downsample in self.down:
            h = res2(res1(h, film, next(block_films)), film, next(block_films))
            skips.append(h)
            h = downsample(h)
        for res in self.mid:
            h = res(h, film, next(block_films))
        for res1, res2, upsample in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = upsample(res2(res1(h, film, next(block_films)), film, next(block_films)))
        return self.final(h).transpose(1, 2)
