"""Diffusion head: DDPM training; DDPM or DDIM sampling through ``diffusers`` schedulers."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler

from manip.core.config import StrictConfig
from manip.policies.heads.base import (
    HEADS,
    GenerativeHead,
    check_prefix,
    check_steps,
    hold_prefix,
    initial_noise,
)


class DiffusionHeadConfig(StrictConfig):
    """DDPM noise schedule, what the backbone predicts and the default sampler and step count."""

    FINETUNE_MAY_CHANGE: ClassVar[frozenset[str]] = frozenset(
        {"prediction_type", "clip_sample", "sampler", "default_steps"}
    )
    """Settings of the training target and sampler that an ``init_from`` fine-tune may switch."""

    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: Literal["epsilon", "sample"] = "epsilon"
    clip_sample: bool = True
    sampler: Literal["ddim", "ddpm"] = "ddim"
    default_steps: int = 10


@HEADS.register("diffusion", DiffusionHeadConfig)
class DiffusionHead(GenerativeHead):
    """Learn to denoise chunks; sample with DDIM (few steps) or DDPM (``num_train_timesteps`` steps)."""

    def __init__(self, config: DiffusionHeadConfig):
        self.config = config
        self.default_steps = config.default_steps if config.sampler == "ddim" else config.num_train_timesteps
        common = dict(
            num_train_timesteps=config.num_train_timesteps,
            beta_schedule=config.beta_schedule,
            prediction_type=config.prediction_type,
            clip_sample=config.clip_sample,
        )
        self.train_scheduler = DDPMScheduler(**common)
        sampler_cls = DDIMScheduler if config.sampler == "ddim" else DDPMScheduler
        self.sample_scheduler = sampler_cls(**common)

    def loss(self, backbone, actions: torch.Tensor, cond: torch.Tensor):
        noise = torch.randn_like(actions)
        t = torch.randint(0, self.config.num_train_timesteps, (actions.shape[0],), device=actions.device)
        noisy = self.train_scheduler.add_noise(actions, noise, t)
        pred = backbone(noisy, t.float(), cond)
        target = noise if self.config.prediction_type == "epsilon" else actions
        loss = F.mse_loss(pred, target)
        return loss, {"loss": float(loss.detach())}

    @torch.no_grad()
    def sample(
        self, backbone, cond, horizon, action_dim, steps=None, prefix=None, generator=None, noise=None
    ):
        steps = check_steps(steps, self.default_steps)
        check_prefix(prefix, cond.shape[0], horizon, action_dim)
        scheduler = self.sample_scheduler
        scheduler.set_timesteps(min(steps, self.config.num_train_timesteps))
        backbone = self.conditioned(backbone, cond)
        x = initial_noise(cond, horizon, action_dim, generator, noise)
        prefix_noise = None if prefix is None else initial_noise(cond, prefix.shape[1], action_dim, generator)
        for t in scheduler.timesteps:
            if prefix is not None:
                t_batch = torch.full((prefix.shape[0],), int(t), device=cond.device, dtype=torch.long)
                x = hold_prefix(x, self.train_scheduler.add_noise(prefix, prefix_noise, t_batch))
            time = torch.full((cond.shape[0],), float(t), device=cond.device)
            out = backbone(x, time, cond)
            x = scheduler.step(out, t, x, generator=generator).prev_sample
        return hold_prefix(x, prefix)
