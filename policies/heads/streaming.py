"""Streaming flow head: a buffer of actions at increasing noise levels, one clean action out per control tick.

Rectified flow as in :mod:`manip.policies.heads.flow` (``t = 0`` noise, ``t = 1`` data), but every chunk position
``i`` has its own level ``t_i``, given to the backbone as ``horizon`` extra conditioning features (the backbone's
time input is their mean over the denoised positions), so no backbone changes are needed.

Training draws per-position levels: with probability ``uniform_share`` one level for the whole chunk (so a chunk can
also be drawn from pure noise, :meth:`StreamingHead.sample`), otherwise the *staircase* the stream runs on.
With ``front = f`` (the index executed at a tick: ``n_obs_steps - 1``) and ``L = horizon - f``, position
``i = f + j`` sits at ``t = 1 - (j + 1 - u) / L`` for ``u ~ U[0, 1)``, positions before ``f`` are clean (the
actions already executed). The loss covers the positions that are not clean.

Streaming (``policy.sampling.mode: streaming``, :func:`stream_tick`): the first tick of an episode draws a full
chunk (``steps`` Euler steps) and noises it onto the staircase (post-tick levels ``t_j = 1 - j / L``). Every later
tick shifts the buffer one step (the executed action moves into the clean past, fresh noise enters at the tail),
then ``steps_per_tick`` Euler steps raise every position by ``1 / L``: position ``f`` becomes clean and is executed.
So each tick costs ``steps_per_tick`` network evaluations instead of a full sampling loop, and every action is
denoised over ``L`` ticks while seeing the newest observation each time (Streaming Diffusion Policy, Høeg et al.
2024; diffusion forcing's per-token noise levels). The tick returns the clean estimate of the whole buffer
(``x + (1 - t) v``), exact at ``f``.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from manip.core.config import StrictConfig
from manip.core.errors import ManipError
from manip.policies.heads.base import (
    HEADS,
    GenerativeHead,
    check_prefix,
    check_steps,
    hold_prefix,
    initial_noise,
    masked_mse,
)


class StreamingHeadConfig(StrictConfig):
    """Full-sampling steps, time scale, share of uniform-level training chunks and the executed index."""

    FINETUNE_MAY_CHANGE: ClassVar[frozenset[str]] = frozenset({"default_steps", "uniform_share"})
    """Settings of the training target and sampler that an ``init_from`` fine-tune may switch."""

    default_steps: int = 10
    time_scale: float = 100.0
    uniform_share: float = Field(0.25, ge=0, le=1)
    """Share of training chunks with one noise level for every position (what full sampling runs on)."""
    front: int = Field(1, ge=0)
    """The chunk index executed at each tick (``n_obs_steps - 1``); earlier positions hold executed actions."""


@HEADS.register("streaming", StreamingHeadConfig)
class StreamingHead(GenerativeHead):
    """Per-position noise levels in training; full sampling or a streaming buffer at inference."""

    def __init__(self, config: StreamingHeadConfig):
        self.config = config
        self.default_steps = config.default_steps

    def extra_cond_dim(self, horizon: int) -> int:
        return horizon

    def _check_horizon(self, horizon: int) -> int:
        """``L``: the positions from ``front`` to the end of the chunk."""
        if self.config.front >= horizon:
            raise ManipError(f"policy.head.front={self.config.front} must be < horizon {horizon}")
        return horizon - self.config.front

    def staircase(self, horizon: int, u: torch.Tensor) -> torch.Tensor:
        """Levels ``(B, horizon)`` of the stream part-way ``u (B,)`` through a tick (module docstring)."""
        length = self._check_horizon(horizon)
        j = torch.arange(horizon, device=u.device, dtype=u.dtype) - self.config.front
        levels = 1.0 - (j[None, :] + 1.0 - u[:, None]) / length
        return torch.where(j[None, :] < 0, torch.ones_like(levels), levels)

    def velocity(self, backbone, x: torch.Tensor, levels: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The backbone's velocity at per-position levels ``(B, H)``."""
        time = levels[:, self.config.front :].mean(dim=1) * self.config.time_scale
        return backbone(x, time, torch.cat([cond, levels.to(cond.dtype)], dim=-1))

    def loss(self, backbone, actions, cond):
        batch, horizon, _ = actions.shape
        noise = torch.randn_like(actions)
        u = torch.rand(batch, device=actions.device)
        uniform = (torch.rand(batch, device=actions.device) < self.config.uniform_share)[:, None]
        levels = torch.where(uniform, u[:, None].expand(batch, horizon), self.staircase(horizon, u))
        x_t = (1 - levels[..., None]) * noise + levels[..., None] * actions
        pred = self.velocity(backbone, x_t, levels, cond)
        loss = masked_mse(pred, actions - noise, levels < 1.0)
        return loss, {"loss": float(loss.detach())}

    @torch.no_grad()
    def sample(
        self, backbone, cond, horizon, action_dim, steps=None, prefix=None, generator=None, noise=None
    ):
        """Full sampling from noise: ``steps`` Euler steps with one level for every position."""
        steps = check_steps(steps, self.default_steps)
        check_prefix(prefix, cond.shape[0], horizon, action_dim)
        self._check_horizon(horizon)
        noise = initial_noise(cond, horizon, action_dim, generator, noise)
        x, dt = noise, 1.0 / steps
        ones = torch.ones(cond.shape[0], horizon, device=cond.device)
        for i in range(steps):
            t = i * dt
            if prefix is not None:  # held where the path puts it at t
                x = hold_prefix(x, (1 - t) * noise[:, : prefix.shape[1]] + t * prefix)
            x = x + dt * self.velocity(backbone, x, ones * t, cond)
        return hold_prefix(x, prefix)

    @torch.no_grad()
    def start_stream(self, backbone, cond, horizon, action_dim, steps=None, generator=None):
        """A fresh stream: a full sample, noised onto the post-tick staircase; returns ``(buffer, estimate)``."""
        clean = self.sample(backbone, cond, horizon, action_dim, steps=steps, generator=generator)
        levels = self.staircase(horizon, torch.ones(cond.shape[0], device=cond.device))[..., None]
        noise = initial_noise(cond, horizon, action_dim, generator)
        return levels * clean + (1 - levels) * noise, clean

    @torch.no_grad()
    def advance_stream(self, backbone, buffer, cond, steps_per_tick: int, generator=None):
        """One tick: shift by one step, fresh noise at the tail, ``steps_per_tick`` Euler steps raising every
        position by ``1 / L``; returns ``(buffer, estimate)`` (the estimate's ``front`` action is exact)."""
        batch, horizon, action_dim = buffer.shape
        length = self._check_horizon(horizon)
        fresh = initial_noise(cond, 1, action_dim, generator)
        x = torch.cat([buffer[:, 1:], fresh], dim=1)
        front, dt = self.config.front, 1.0 / (length * steps_per_tick)
        estimate = x
        for k in range(steps_per_tick):
            levels = self.staircase(horizon, torch.full((batch,), k / steps_per_tick, device=cond.device))
            v = self.velocity(backbone, x, levels, cond)
            estimate = x + (1 - levels[..., None]) * v
            x = torch.cat([x[:, :front], x[:, front:] + dt * v[:, front:]], dim=1)
        estimate = torch.cat([x[:, : front + 1], estimate[:, front + 1 :]], dim=1)
        return x, estimate


def streaming_problem(head_name, n_action_steps, front, n_obs_steps) -> str | None:
    """Why a policy with these settings cannot sample in streaming mode, or None when it can (checked by
    :func:`stream_tick` and, before anything runs, by ``manip eval --sampling-mode``)."""
    if head_name != "streaming":
        return "policy.sampling.mode 'streaming' needs policy.head.name 'streaming'"
    if n_action_steps != 1:
        return (
            "policy.sampling.mode 'streaming' executes one action per tick: set policy.n_action_steps 1 "
            f"(it is {n_action_steps})"
        )
    if front != n_obs_steps - 1:
        return f"policy.head.front={front} must be n_obs_steps - 1 = {n_obs_steps - 1}"
    return None


def stream_tick(policy, cond: torch.Tensor, steps_per_tick: int, steps=None, generator=None) -> torch.Tensor:
    """One control tick of ``policy``'s stream (kept on the policy between calls; a new batch size or
    ``policy.reset_sampling()`` starts a new one); returns the normalized chunk estimate ``(B, horizon, A)``."""
    head = policy.head
    streaming = isinstance(head, StreamingHead)
    problem = streaming_problem(
        "streaming" if streaming else None,
        policy.n_action_steps,
        head.config.front if streaming else None,
        policy.n_obs_steps,
    )
    if problem:
        raise ManipError(problem)
    buffer = getattr(policy, "_stream", None)
    backbone = policy.backbone  # not bound: the conditioning carries the levels, which change every step
    if buffer is None or buffer.shape[0] != cond.shape[0]:
        buffer, estimate = head.start_stream(
            backbone, cond, policy.horizon, policy.action_dim, steps=steps, generator=generator
        )
    else:
        buffer, estimate = head.advance_stream(backbone, buffer, cond, steps_per_tick, generator)
    policy._stream = buffer
    return estimate
