"""Test-time chunk selection: score N candidate chunks drawn for one observation and keep the best.

Candidates arrive as ``(B, N, H, A)`` (normalized actions, one batched sampling pass for all ``B * N``). A
selector scores them ``(B, N)``, higher is better, and :func:`pick` keeps each row's best. The reward-free
selectors need nothing but the candidates:

- ``medoid``: minus the mean distance to the other candidates; the winner is the chunk closest to all others (the
  sample most of the distribution agrees with, which discards outlying modes and poorly denoised draws);
- ``density``: a Gaussian kernel density estimate at each candidate (bandwidth: the median pairwise distance),
  which prefers the largest cluster of candidates rather than its centre;
- ``coherence``: bidirectional decoding (BID, Liu et al. 2024) without a second model: backward coherence (how
  closely a candidate continues the chunk chosen at the previous call, where their times overlap, nearer steps
  weighing more) plus forward consensus (closeness to the other candidates, like ``medoid`` but as mean
  per-step distances). It needs the previous choice, so it is stateful per episode
  (:func:`manip.policies.sampling.draw_chunk` keeps it); the first call of an episode scores by consensus alone.

``critic`` (a learned value of each candidate) is scored by the policy that owns the critic (the steered policy of
:mod:`manip.policies.steering`); see :func:`manip.policies.sampling.draw_chunk`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from manip.core.errors import ManipError


def pairwise_distances(chunks: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between the flattened candidates of each row: ``(B, N, H, A)`` → ``(B, N, N)``."""
    flat = chunks.flatten(2).float()
    return torch.cdist(flat, flat)


def medoid_scores(chunks: torch.Tensor) -> torch.Tensor:
    """Minus each candidate's mean distance to the others, ``(B, N)`` (the medoid scores highest)."""
    n = chunks.shape[1]
    return -pairwise_distances(chunks).sum(dim=-1) / max(n - 1, 1)


def density_scores(chunks: torch.Tensor) -> torch.Tensor:
    """Log kernel density of each candidate among the others, ``(B, N)``; Gaussian kernel whose bandwidth is the
    row's median pairwise distance (so the score does not depend on the action scale)."""
    dist = pairwise_distances(chunks)
    n = chunks.shape[1]
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=chunks.device)
    if n < 2:
        return torch.zeros(chunks.shape[:2], device=chunks.device)
    bandwidth = dist[:, off_diagonal].median(dim=-1).values.clamp_min(1e-6)[:, None, None]
    kernel = torch.exp(-0.5 * (dist / bandwidth) ** 2) * off_diagonal
    return torch.log(kernel.sum(dim=-1) + 1e-12)


def step_distances(chunks: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-step Euclidean distances ``(B, N, L)`` between candidates ``(B, N, L, A)`` and a reference ``(B, L, A)``."""
    return (chunks.float() - reference.float()[:, None]).norm(dim=-1)


def consensus_scores(chunks: torch.Tensor) -> torch.Tensor:
    """Minus each candidate's mean per-step distance to the other candidates, ``(B, N)``."""
    flat = chunks.float().transpose(1, 2)  # (B, H, N, A)
    per_step = torch.cdist(flat, flat).mean(dim=1)  # (B, N, N): mean over steps of the step distances
    n = chunks.shape[1]
    return -per_step.sum(dim=-1) / max(n - 1, 1)


def coherence_scores(
    chunks: torch.Tensor, previous: torch.Tensor | None, shift: int, decay: float = 0.9
) -> torch.Tensor:
    """BID-style scores ``(B, N)``: forward consensus minus the backward distance to ``previous (B, H, A)``.

    Candidate step ``t`` is the action for the time of the previous chunk's step ``t + shift`` (``shift``: control
    ticks between the two calls); the overlapping steps are compared with weights ``decay**t``. Without a
    previous chunk, or when nothing overlaps, the score is the consensus term alone.
    """
    scores = consensus_scores(chunks)
    overlap = chunks.shape[2] - shift
    if previous is None or overlap <= 0:
        return scores
    weights = decay ** torch.arange(overlap, device=chunks.device, dtype=torch.float32)
    distances = step_distances(chunks[:, :, :overlap], previous[:, shift:])
    return scores - (distances * weights).sum(dim=-1) / weights.sum()


SELECTORS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "medoid": medoid_scores,
    "density": density_scores,
}
"""Reward-free selectors by name: candidates ``(B, N, H, A)`` → scores ``(B, N)``."""

SELECTOR_NAMES = ("auto", "critic", "coherence", *SELECTORS)
"""What ``policy.sampling.selector`` accepts; ``auto`` is ``critic`` when the policy has one, else ``medoid``."""


def score(chunks: torch.Tensor, selector: str) -> torch.Tensor:
    """Scores ``(B, N)`` of candidates ``(B, N, H, A)`` under the reward-free ``selector``."""
    if selector not in SELECTORS:
        raise ManipError(f"unknown chunk selector '{selector}': pass one of {', '.join(SELECTORS)}")
    return SELECTORS[selector](chunks)


def pick(chunks: torch.Tensor, scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's best candidate: ``(B, N, H, A)``, ``(B, N)`` → chunks ``(B, H, A)`` and indices ``(B,)``."""
    best = scores.argmax(dim=1)
    return chunks[torch.arange(chunks.shape[0], device=chunks.device), best], best
