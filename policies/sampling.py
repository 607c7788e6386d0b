"""How ``predict_chunk`` draws a chunk from a policy's head: ``policy.sampling`` in the config.

- ``candidates: N`` (default 1) draws N chunks per observation in ONE batched sampling pass (the conditioning
  repeated N times) and keeps the best under ``selector`` (:mod:`manip.policies.selection`): ``critic`` (the value a
  steered policy's critic gives each candidate's noise), ``medoid`` or ``density`` (reward-free); ``auto`` picks
  ``critic`` when the policy has a critic, else ``medoid``.
- ``mode: streaming`` (a ``streaming`` head only, :mod:`manip.policies.heads.streaming`) keeps a buffer of actions at
  increasing noise levels between calls: each call is one control tick that denoises the buffer
  ``steps_per_tick`` steps and returns it with a clean action at "now" (needs ``n_action_steps: 1``).

A policy may supply the initial noise itself (``policy.initial_noise(cond, n, generator)``, e.g. a steering actor)
and value candidates (``policy.noise_values(cond, noise)``); plain policies draw standard normal noise.

A checkpoint's sampling settings can be changed without retraining: :func:`with_sampling` writes a copy of the
checkpoint with other settings (the weights are the same file content).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, model_validator

from manip.core.config import StrictConfig
from manip.core.errors import ManipError
from manip.policies.selection import SELECTOR_NAMES, pick, score


class SamplingConfig(StrictConfig):
    """``candidates``/``selector``: test-time chunk selection; ``mode``/``steps_per_tick``: streaming sampling."""

    candidates: int = Field(1, ge=1, le=1024)
    selector: str = "auto"
    mode: Literal["full", "streaming"] = "full"
    steps_per_tick: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _known_selector(self) -> SamplingConfig:
        if self.selector not in SELECTOR_NAMES:
            raise ValueError(
                f"selector '{self.selector}' is unknown: pass one of {', '.join(SELECTOR_NAMES)}"
            )
        return self


def sampling_of(policy) -> SamplingConfig:
    """The policy's sampling settings (defaults for a config without them)."""
    return getattr(policy.config, "sampling", None) or SamplingConfig()


def selector_of(policy, sampling: SamplingConfig) -> str:
    """The selector to use: ``auto`` resolves to ``critic`` when the policy values noise, else ``medoid``."""
    has_critic = callable(getattr(policy, "noise_values", None))
    if sampling.selector == "auto":
        return "critic" if has_critic else "medoid"
    if sampling.selector == "critic" and not has_critic:
        raise ManipError("policy.sampling.selector 'critic' needs a policy with a critic (a steered policy)")
    return sampling.selector


def draw_chunk(policy, cond, *, steps=None, prefix=None, generator=None) -> torch.Tensor:
    """A normalized chunk ``(B, horizon, A)`` per conditioning row, drawn as ``policy.sampling`` says."""
    sampling = sampling_of(policy)
    if sampling.mode == "streaming":
        from manip.policies.heads.streaming import stream_tick

        return stream_tick(policy, cond, sampling.steps_per_tick, steps=steps, generator=generator)
    n = sampling.candidates
    batch = cond.shape[0]
    rows = cond.repeat_interleave(n, dim=0) if n > 1 else cond
    noise_of = getattr(policy, "initial_noise", None)
    noise = noise_of(cond, n, generator) if callable(noise_of) else None
    if prefix is not None and n > 1:
        prefix = prefix.repeat_interleave(n, dim=0)
    extra = {"noise": noise} if noise is not None else {}  # heads that take no noise keep working
    sample = policy.head.sample(
        policy.backbone, rows, policy.horizon, policy.action_dim,
        steps=steps, prefix=prefix, generator=generator, **extra,
    )  # fmt: skip
    if n == 1:
        return sample
    chunks = sample.view(batch, n, *sample.shape[1:])
    selector = selector_of(policy, sampling)
    if selector == "critic":
        if noise is None:
            raise ManipError("the critic selector needs a policy that supplies the initial noise")
        scores = policy.noise_values(rows, noise).view(batch, n)
    else:
        scores = score(chunks, selector)
    return pick(chunks, scores)[0]


def reset_sampling(policy) -> None:
    """Forget per-episode sampling state (the streaming buffer); called at the start of every episode."""
    if hasattr(policy, "_stream"):
        policy._stream = None


def with_sampling(checkpoint: str | Path, out: str | Path, **settings) -> Path:
    """Copy ``checkpoint`` to ``out`` with ``policy.sampling`` updated by ``settings`` (e.g. ``candidates=4``)."""
    from manip.policies.checkpoint import CONFIG, WEIGHTS, read_metadata
    from manip.policies.config import parse_policy_config

    checkpoint, out = Path(checkpoint), Path(out)
    meta = read_metadata(checkpoint)
    policy = dict(meta["policy"])
    policy["sampling"] = {**dict(policy.get("sampling") or {}), **settings}
    meta["policy"] = parse_policy_config(policy, where=f"{checkpoint}: policy").model_dump(mode="json")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(checkpoint / WEIGHTS, out / WEIGHTS)
    (out / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    return out
