"""CUDA-graph replay of a chunk policy's sampling: one graph launch per chunk instead of hundreds of kernels.

:class:`CudaGraphPolicy` wraps a policy on a CUDA device and captures, per batch size and step count, everything
between the normalized observations and the normalized chunk: the observation encoder and the head's whole
sampling loop (every backbone call, the scheduler arithmetic and the noise draws, which come from the device's
default generator inside the graph). The normalization in front and the unnormalization behind stay eager (they
copy statistics from the host). A call copies the new observations into the graph's static inputs and replays it.

Anything the captured graph cannot serve runs the policy's own ``predict_chunk`` instead (same result, eager
speed): no CUDA, a policy off CUDA, a prefix (real-time chunking), a language instruction, an explicit
``generator``, or a head without ``sample``. :attr:`fallback_reason` says why the last call fell back (``None``
when it replayed). Sampling noise in replays follows ``torch.cuda.manual_seed``; :meth:`seed` sets it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from manip.policies.base import ACTION_KEY


class CudaGraphPolicy:
    """``predict_chunk`` of ``policy`` through captured CUDA graphs (see the module docstring).

    ``bf16``: run the captured region under bfloat16 autocast. ``warmup``: eager runs on a side stream before a
    capture (lets lazy initialisation and the allocator settle, as CUDA graphs require).
    """

    def __init__(self, policy: torch.nn.Module, *, bf16: bool = False, warmup: int = 2):
        self.policy = policy.eval()
        self.bf16 = bool(bf16)
        self.warmup = int(warmup)
        self.graphs: dict[tuple[int, int | None], tuple[Any, dict, torch.Tensor]] = {}
        self.fallback_reason: str | None = None
        self.unavailable = self._unavailable_reason()

    # -------------------------------------------------------------------------------------------- checks
    def _unavailable_reason(self) -> str | None:
        if not torch.cuda.is_available():
            return "CUDA is not available"
        if self.policy.device.type != "cuda":
            return f"the policy is on {self.policy.device}, not on a CUDA device"
        if not hasattr(getattr(self.policy, "head", None), "sample"):
            return "the policy has no generative head to capture"
        return None

    @property
    def enabled(self) -> bool:
        """True when calls can replay captured graphs (CUDA present and the policy on it)."""
        return self.unavailable is None

    def seed(self, seed: int) -> None:
        """Seed the noise of replays (the device's default generator); without CUDA, torch's CPU generator."""
        if self.enabled:
            torch.cuda.manual_seed(int(seed))
        else:
            torch.manual_seed(int(seed))

    # ------------------------------------------------------------------------------------------ serving
    def predict_chunk(
        self,
        obs: dict[str, Any],
        *,
        steps: int | None = None,
        prefix: np.ndarray | None = None,
        instruction: list[str] | None = None,
        generator: torch.Generator | None = None,
    ) -> np.ndarray:
        """Same contract as ``Policy.predict_chunk``; replays a captured graph where it can."""
        reason = self.unavailable or (
            "a prefix was given"
            if prefix is not None
            else "an instruction was given"
            if instruction is not None
            else "an explicit generator was given"
            if generator is not None
            else None
        )
        self.fallback_reason = reason
        if reason is not None:
            return self.policy.predict_chunk(
                obs, steps=steps, prefix=prefix, instruction=instruction, generator=generator
            )
        policy = self.policy
        arrays = {
            k: (v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v)) for k, v in obs.items()
        }
        policy.check_obs(arrays)
        with torch.inference_mode():
            tensors = {
                k: torch.from_numpy(np.ascontiguousarray(arrays[k])).to(policy.device, non_blocking=True)
                for k in policy.obs_spec.names
            }
            prepared = policy.prepare_obs(tensors)
        batch = int(next(iter(prepared.values())).shape[0])
        key = (batch, steps)
        if key not in self.graphs:
            self.graphs[key] = self._capture(prepared, steps)
        graph, static_in, static_out = self.graphs[key]
        with torch.inference_mode():
            for name, value in prepared.items():
                static_in[name].copy_(value)
            graph.replay()
            actions = policy.normalizer.unnormalize({ACTION_KEY: static_out.float()})[ACTION_KEY]
        return actions.cpu().numpy()

    # ------------------------------------------------------------------------------------------ capture
    def _sample(self, prepared: dict[str, torch.Tensor], steps: int | None) -> torch.Tensor:
        policy = self.policy
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16, cache_enabled=False):
            cond = policy.encode(prepared)
            return policy.head.sample(policy.backbone, cond, policy.horizon, policy.action_dim, steps=steps)

    def _capture(self, prepared: dict[str, torch.Tensor], steps: int | None):
        """Warm up on a side stream, then capture encoder + sampling loop for this batch size and step count."""
        static_in = {name: value.clone() for name, value in prepared.items()}
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.inference_mode(), torch.cuda.stream(stream):
            for _ in range(self.warmup):
                self._sample(static_in, steps)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph):
            static_out = self._sample(static_in, steps)
        return graph, static_in, static_out
