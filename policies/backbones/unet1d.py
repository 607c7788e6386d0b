"""Diffusion Policy's FiLM-conditioned 1-D temporal UNet (Chi et al., 2023); its convolutions run CPU inference on
packed weights (:mod:`~manip.policies.backbones.packed_conv`)."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from manip.core.config import StrictConfig
from manip.core.errors import ManipError
from manip.policies.backbones.base import BACKBONES, Backbone
from manip.policies.backbones.packed_conv import PackedConv1d, PackedConvTranspose1d

TIME_FILM_CACHE = 256
"""Most time values whose FiLM time projections :meth:`UNet1D.time_films` keeps (a sampler visits a handful)."""


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
            PackedConv1d(in_ch, out_ch, kernel_size, padding=kernel_size // 2),
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
        self.residual = PackedConv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(
        self, x: torch.Tensor, cond: torch.Tensor | None, film: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``cond``: the FiLM input ``(B, film_dim)``, projected here; or ``film``: the projection itself, computed
        by the caller (:meth:`UNet1D.bound_films`)."""
        out = self.blocks[0](x)
        film = (self.film(cond) if film is None else film).unsqueeze(-1)
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
                        PackedConv1d(d_out, d_out, 3, 2, 1) if not last else nn.Identity(),
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
                        PackedConvTranspose1d(d_out, d_out, 4, 2, 1),
                    ]
                )
            )
        first = config.down_dims[0]
        self.final = nn.Sequential(
            Conv1dBlock(first, first, config.kernel_size, config.n_groups), PackedConv1d(first, action_dim, 1)
        )

    def film_blocks(self) -> list[FiLMResBlock]:
        """The FiLM blocks in the order :meth:`forward` runs them."""
        levels = [*(level[:2] for level in self.down), self.mid, *(level[:2] for level in self.up)]
        return [block for level in levels for block in level]

    def precompute_condition(self, cond: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every block's FiLM projection of the observation conditioning (+ bias), once per chunk."""
        mish_obs = nn.functional.mish(cond)
        return {"cond_film": tuple(block.observation_film(mish_obs) for block in self.film_blocks())}

    def bound_films(
        self, time: torch.Tensor, time2: torch.Tensor | None, cond_film: tuple[torch.Tensor, ...]
    ) -> list[torch.Tensor]:
        """Every block's FiLM projection at this step: the observation part bound once per chunk (``cond_film``)
        plus the time part (:meth:`time_films`). The projection splits so, ``W·mish([time, obs]) + b =
        W_time·mish(time) + (W_obs·mish(obs) + b)``, since Mish acts elementwise."""
        time_part = self.time_films(time, time2)
        widths = [film.shape[1] for film in cond_film]
        return [obs + t for obs, t in zip(cond_film, time_part.split(widths, dim=1), strict=True)]

    def time_films(self, time: torch.Tensor, time2: torch.Tensor | None) -> torch.Tensor:
        """``W_time·mish(time features)`` for all FiLM blocks in one matrix product, ``(B, sum of FiLM widths)``.

        It depends on the time values and the weights alone, and a sampler visits the same times in every chunk:
        in CPU inference the result is kept per time value (up to :data:`TIME_FILM_CACHE` of them) until the
        weights change."""
        if (
            torch.compiler.is_compiling()
            or time.device.type != "cpu"
            or torch.is_grad_enabled()
            or self.time_embed[1].weight.is_inference()  # no version counter to tell a change of weights
        ):
            features = nn.functional.mish(self.time_features(time, time2))
            matrix = torch.cat([block.film[1].weight for block in self.film_blocks()])
            return torch.mm(features, matrix[:, : features.shape[1]].t())
        weights = self.time_film_weights()
        key = (time.numpy().tobytes(), None if time2 is None else time2.numpy().tobytes(), time.shape)
        films = weights["films"].get(key)
        if films is None:
            features = nn.functional.mish(self.time_features(time, time2))
            films = torch.mm(features, weights["matrix"][:, : features.shape[1]].t())
            if len(weights["films"]) >= TIME_FILM_CACHE:
                weights["films"].clear()
            weights["films"][key] = films
        return films

    def time_film_weights(self) -> dict:
        """``{"matrix": every FiLM block's weight stacked (sum of FiLM widths, FiLM input), "films": the per-time
        cache}``; the time columns lead each row, so the time part reads a contiguous run of every row. Rebuilt
        (and the cache emptied) when any weight it depends on changes."""
        linears = [block.film[1] for block in self.film_blocks()]
        depends = [linear.weight for linear in linears] + [
            p
            for embed in (self.time_embed, self.time2_embed)
            if embed is not None
            for p in embed.parameters()
        ]
        key = tuple((p.data_ptr(), p._version) for p in depends)
        cached = self.__dict__.get("_time_film_weights")
        if cached is None or cached["key"] != key:
            matrix = torch.cat([linear.weight.detach() for linear in linears]).contiguous()
            # ``keep`` holds the source tensors so their addresses cannot be reused by replacement weights
            cached = {"key": key, "matrix": matrix, "films": {}, "keep": [p.detach() for p in depends]}
            self.__dict__["_time_film_weights"] = cached
        return cached

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
            film_input = self.film_conditioning(time, cond, time2)
            films = itertools.repeat(None)
        else:
            film_input = None
            films = iter(self.bound_films(time, time2, cond_film))
        h = x.transpose(1, 2)
        skips = []
        for res1, res2, downsample in self.down:
            h = res2(res1(h, film_input, next(films)), film_input, next(films))
            skips.append(h)
            h = downsample(h)
        for res in self.mid:
            h = res(h, film_input, next(films))
        for res1, res2, upsample in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = upsample(res2(res1(h, film_input, next(films)), film_input, next(films)))
        return self.final(h).transpose(1, 2)
