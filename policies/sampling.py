"""How ``predict_chunk`` draws a chunk from a policy's head: ``policy.sampling`` in the config.

- ``candidates: N`` (default 1) draws N chunks per observation in ONE batched sampling pass (the conditioning
  repeated N times) and keeps the best under ``selector`` (:mod:`manip.policies.selection`): ``critic`` (the value a
  steered policy's critic gives each candidate's noise), ``medoid``, ``density`` or ``coherence`` (reward-free;
  ``coherence`` also compares each candidate with the chunk chosen at the previous call, ``coherence_shift`` ticks
  earlier, so it keeps that choice per episode); ``auto`` picks ``critic`` when the policy has a critic, else
  ``medoid``.
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
from manip.policies.heads.base import initial_noise
from manip.policies.selection import SELECTOR_NAMES, coherence_scores, pick, score


class SamplingConfig(StrictConfig):
    """``candidates``/``selector``: test-time chunk selection; ``mode``/``steps_per_tick``: streaming sampling."""

    candidates: int = Field(1, ge=1, le=1024)
    selector: str = "auto"
    mode: Literal["full", "streaming"] = "full"
    steps_per_tick: int = Field(1, ge=1)
    coherence_shift: int | None = Field(None, ge=1)
    """``coherence``: control ticks between two calls (None: the policy's ``n_action_steps``, as the receding
    executor runs; 1 for temporal ensembling with a request every tick)."""
    coherence_decay: float = Field(0.9, gt=0, le=1)
    """``coherence``: weight ``decay**t`` of the ``t``-th overlapping step in the backward term."""
    noise_scale: float = Field(1.0, ge=0, le=4)
    """Standard deviation of the initial noise (a sampling temperature): below 1 draws chunks nearer the mode the
    head maps the noise's centre to; 1 samples as trained. Ignored when the policy supplies the noise (steering)."""

    @model_validator(mode="after")
    def _known_selector(self) -> SamplingConfig:
        if self.selector not in SELECTOR_NAMES:
            raise ValueError(
                f"selector '{self.selector}' is unknown: pass one of {', '.join(SELECTOR_NAMES)}"
            )
        if self.mode == "streaming" and self.noise_scale != 1.0:
            raise ValueError(
                f"noise_scale {self.noise_scale} applies to full sampling (streaming keeps its own noise levels)"
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
    if noise is None and sampling.noise_scale != 1.0:
        noise = sampling.noise_scale * initial_noise(rows, policy.horizon, policy.action_dim, generator)
    if prefix is not None and n > 1:
        prefix = prefix.repeat_interleave(n, dim=0)
    # heads without a noise argument work at noise_scale 1 only
    extra = {"noise": noise} if noise is not None else {}
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
    elif selector == "coherence":
        chosen = pick(chunks, _coherence(policy, sampling, chunks))[0]
        policy._previous_chunk = chosen  # what the next call's candidates should continue
        return chosen
    else:
        scores = score(chunks, selector)
    return pick(chunks, scores)[0]


def _coherence(policy, sampling: SamplingConfig, chunks: torch.Tensor) -> torch.Tensor:
    """``coherence`` scores against the chunk this policy chose at its previous call (none: a new episode, or a
    call with another batch size, e.g. a server batching other clients)."""
    previous = getattr(policy, "_previous_chunk", None)
    if previous is not None and previous.shape != chunks[:, 0].shape:
        previous = None
    shift = sampling.coherence_shift or int(policy.n_action_steps)
    return coherence_scores(chunks, previous, shift, sampling.coherence_decay)


def reset_sampling(policy) -> None:
    """Forget per-episode sampling state (the streaming buffer, the previous chunk that ``coherence`` continues);
    called at the start of every episode."""
    for state in ("_stream", "_previous_chunk"):
        if hasattr(policy, state):
            setattr(policy, state, None)


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
