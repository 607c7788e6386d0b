"""MeanFlow head (Geng et al. 2025; MP1 for policies): one-step generation from an average-velocity model.

Path ``z_t = (1 - t) x + t e`` (t=0 data, t=1 noise), instantaneous velocity ``v = e - x``. The backbone models
the average velocity ``u(z, r, t)`` over ``[r, t]``; training regresses it onto the MeanFlow identity target
``u_tgt = v - (t - r) d/dt u(z_t, r, t)`` (stop-gradient), where the total derivative comes from one
``torch.func.jvp`` with tangents ``(v, 0, 1)``. Sampling from noise takes ``z_r = z_t - (t - r) u`` per step:
ONE network evaluation for the default single step.

Classifier-free guidance (``cfg_scale`` ω != 1; the paper's CFG section) is learned at training time, so sampling
stays at one network evaluation: the network models the *guided* average velocity directly. A ``cond_dropout``
share of training samples get the unconditional input (observation conditioning zeroed, plus a 1-feature
"conditioned" flag appended by the head, so the null input never collides with a real, e.g. all-zero normalized,
observation). For the conditioned samples the instantaneous velocity in the target (and the JVP tangent) becomes
``v_cfg = ω (e - x) + (1 - ω) u(z_t, t, t | ∅)``, the unconditional term from one extra no-grad forward (``r = t``,
where the average velocity is the instantaneous one); dropped samples keep ``v = e - x``. Sampling feeds the real
conditioning with the flag set: one evaluation, guidance included. ω = 1 is exactly the unguided head (same
backbone inputs, same random draws, no extra forward), so existing checkpoints load unchanged. The paper's
additional κ mixing term (conditional ``u`` in the target) is not implemented.

``prediction: sample`` reparametrizes the same model: the backbone outputs a clean chunk ``x̂(z, r, t)`` and
``u = (z - x̂) / max(t, sample_min_t)``, so one step from noise (``r = 0``, ``t = 1``) returns ``x̂`` itself. Every
``u`` is still reachable (``x̂ = z - max(t, ε) u``) and the loss is unchanged; like the diffusion head's sample
prediction, the network's output is the action scale rather than noise-like, which learns observation-dependent
detail faster (docs/RESULTS.md). ``velocity`` (default) is the paper's direct ``u`` output.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch.func import jvp

from manip.core.config import StrictConfig
from manip.policies.heads.base import (
    HEADS,
    GenerativeHead,
    check_prefix,
    check_steps,
    hold_prefix,
    initial_noise,
)


class MeanFlowHeadConfig(StrictConfig):
    """(r, t) sampling (logit-normal, fraction with r != t), adaptive loss weighting power, time scale, CFG."""

    FINETUNE_MAY_CHANGE: ClassVar[frozenset[str]] = frozenset(
        {
            "ratio_r_neq_t",
            "logit_normal_mean",
            "logit_normal_std",
            "adaptive_weight_power",
            "adaptive_weight_eps",
            "default_steps",
            "prediction",
            "sample_min_t",
        }
    )
    """Settings of the training target and sampler that an ``init_from`` fine-tune may switch."""

    ratio_r_neq_t: float = 0.25
    logit_normal_mean: float = -0.4
    logit_normal_std: float = 1.0
    adaptive_weight_power: float = 1.0
    adaptive_weight_eps: float = 1e-3
    default_steps: int = 1
    time_scale: float = 100.0
    cfg_scale: float = Field(1.0, ge=0)
    """Classifier-free guidance scale ω, trained in (1: off, exactly the unguided head; > 1 sharpens)."""
    cond_dropout: float = Field(0.1, ge=0, lt=1)
    """Share of training samples given the unconditional input; used only when ``cfg_scale != 1``."""
    prediction: Literal["velocity", "sample"] = "velocity"
    """What the backbone outputs: the average velocity ``u`` or a clean chunk ``x̂`` (``u = (z - x̂) / t``)."""
    sample_min_t: float = Field(0.05, gt=0, le=1)
    """Floor on ``t`` in ``u = (z - x̂) / t`` with ``prediction: sample`` (keeps the division bounded)."""

    @model_validator(mode="after")
    def _guidance_needs_dropout(self):
        if self.cfg_scale != 1.0 and self.cond_dropout <= 0:
            raise ValueError(
                "cfg_scale != 1 needs cond_dropout > 0 (the unconditional model is never trained)"
            )
        return self


@HEADS.register("meanflow", MeanFlowHeadConfig)
class MeanFlowHead(GenerativeHead):
    """Average-velocity model trained with the MeanFlow identity; backbone gets ``time=t``, ``time2=r``."""

    uses_time2 = True

    def __init__(self, config: MeanFlowHeadConfig):
        self.config = config
        self.default_steps = config.default_steps

    @property
    def guided(self) -> bool:
        return self.config.cfg_scale != 1.0

    def extra_cond_dim(self, horizon: int) -> int:
        return 1 if self.guided else 0

    @staticmethod
    def _flagged(cond: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``cond`` where ``keep`` (B,) else zeros, with ``keep`` appended as the "conditioned" feature."""
        flag = keep.to(cond.dtype)[:, None]
        return torch.cat([torch.where(keep[:, None], cond, torch.zeros_like(cond)), flag], dim=-1)

    def _sample_r_t(self, batch: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        normal = (
            torch.randn(batch, 2, device=device) * self.config.logit_normal_std
            + self.config.logit_normal_mean
        )
        times = torch.sigmoid(normal)
        t, r = times.max(dim=1).values, times.min(dim=1).values
        equal = torch.rand(batch, device=device) >= self.config.ratio_r_neq_t
        return torch.where(equal, t, r), t

    def average_velocity(self, backbone, z, r, t, cond):
        """``u(z, r, t)``: the backbone's output, or ``(z - x̂) / max(t, ε)`` with ``prediction: sample``."""
        scale = self.config.time_scale
        out = backbone(z, t * scale, cond, r * scale)
        if self.config.prediction == "velocity":
            return out
        return (z - out) / t.clamp(min=self.config.sample_min_t)[:, None, None]

    def loss(self, backbone, actions, cond):
        noise = torch.randn_like(actions)
        r, t = self._sample_r_t(actions.shape[0], actions.device)
        z = (1 - t[:, None, None]) * actions + t[:, None, None] * noise
        v = noise - actions
        if self.guided:
            batch = actions.shape[0]
            keep = torch.rand(batch, device=actions.device) >= self.config.cond_dropout
            null = self._flagged(cond, torch.zeros_like(keep))
            with torch.no_grad():  # unconditional instantaneous velocity: u(z_t, t, t | null)
                v_uncond = self.average_velocity(backbone, z, t, t, null)
            omega = self.config.cfg_scale
            v = torch.where(keep[:, None, None], omega * v + (1 - omega) * v_uncond, v)
            cond = self._flagged(cond, keep)
        u, dudt = jvp(
            lambda z_, r_, t_: self.average_velocity(backbone, z_, r_, t_, cond),
            (z, r, t),
            (v, torch.zeros_like(r), torch.ones_like(t)),
        )
        target = (v - (t - r)[:, None, None] * dudt).detach()
        err = ((u - target) ** 2).flatten(1).mean(dim=1)
        weight = (err.detach() + self.config.adaptive_weight_eps) ** -self.config.adaptive_weight_power
        loss = (weight * err).mean()
        return loss, {"loss": float(loss.detach()), "mse": float(err.detach().mean())}

    @torch.no_grad()
    def sample(
        self, backbone, cond, horizon, action_dim, steps=None, prefix=None, generator=None, noise=None
    ):
        steps = check_steps(steps, self.default_steps)
        check_prefix(prefix, cond.shape[0], horizon, action_dim)
        noise = initial_noise(cond, horizon, action_dim, generator, noise)
        z = noise
        batch = cond.shape[0]
        if self.guided:  # the guided field is what was learned: one evaluation with the real conditioning
            cond = self._flagged(cond, torch.ones(batch, dtype=torch.bool, device=cond.device))
        backbone = self.conditioned(backbone, cond)
        for i in range(steps):
            t_now, t_next = 1.0 - i / steps, 1.0 - (i + 1) / steps
            if prefix is not None:  # hold the prefix where the path puts it at t_now
                z = hold_prefix(z, (1 - t_now) * prefix + t_now * noise[:, : prefix.shape[1]])
            t = torch.full((batch,), t_now, device=cond.device)
            r = torch.full((batch,), t_next, device=cond.device)
            z = z - (t_now - t_next) * self.average_velocity(backbone, z, r, t, cond)
        return hold_prefix(z, prefix)
