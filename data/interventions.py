"""Sampling weights from intervention flags: train more (or only) on the windows where a person or expert corrected.

Stores recorded with corrections (``manip collect --corrections``, or teleop takeovers) flag every step
``data/intervention`` (bool). A training window *is an intervention window* when any step it covers is flagged. With
``data.intervention_weight: w`` such windows are ``w`` times as likely as the others in a batch; with
``data.only_interventions: true`` the others are never drawn. With ``data.drop_policy_steps: true`` the windows of a
corrected episode (one with any flagged step) that cover none of its flagged steps -- the policy driving before the
takeover, often already on its way to failing -- are never drawn, while episodes without interventions (plain
demonstrations) are drawn as usual. With ``data.drop_recovery_steps: true`` the windows that cover a recovery step
(``data/phase`` 1: the arm rewound along its own path) are never drawn, which also leaves out the windows that
straddle the takeover. All combine with ``data.task_weights`` (the products, renormalized).
"""

from __future__ import annotations

import numpy as np

from manip.core.errors import ManipError
from manip.data.recorder import INTERVENTION, PHASE, RECOVERY_PHASE
from manip.data.store import EpisodeStore

OPTIONS = "data.intervention_weight / only_interventions / drop_policy_steps / drop_recovery_steps"


def _flag_counts(store: EpisodeStore) -> np.ndarray:
    """Cumulative intervention-step counts ``(num_steps + 1,)``: steps ``[a, b)`` hold ``c[b] - c[a]`` flags."""
    if INTERVENTION not in store.keys:
        raise ManipError(
            f"{store.path}: has no '{INTERVENTION}' flags ({OPTIONS} need a store recorded with interventions)"
        )
    flags = np.asarray(store.read(INTERVENTION, 0, store.num_steps)).reshape(-1).astype(np.int64)
    return np.concatenate([[0], np.cumsum(flags)])


def _covering(counts: np.ndarray, window_steps: np.ndarray) -> np.ndarray:
    """Whether each window ``(buffer_start, buffer_end)`` covers a counted step (``counts``: cumulative counts)."""
    steps = np.asarray(window_steps, dtype=np.int64)
    return counts[steps[:, 1]] - counts[steps[:, 0]] > 0


def intervention_windows(store: EpisodeStore, window_steps: np.ndarray) -> np.ndarray:
    """Whether each window ``(buffer_start, buffer_end)`` covers an intervention step, ``(N,)`` bool."""
    return _covering(_flag_counts(store), window_steps)


def recovery_windows(store: EpisodeStore, window_steps: np.ndarray) -> np.ndarray:
    """Whether each window ``(buffer_start, buffer_end)`` covers a recovery step (``data/phase`` 1), ``(N,)`` bool."""
    if PHASE not in store.keys:
        raise ManipError(
            f"{store.path}: has no '{PHASE}' steps (data.drop_recovery_steps needs a store recorded with "
            "manip collect --corrections)"
        )
    phases = np.asarray(store.read(PHASE, 0, store.num_steps)).reshape(-1)
    return _covering(np.concatenate([[0], np.cumsum(phases == RECOVERY_PHASE)]), window_steps)


def policy_windows(store: EpisodeStore, flagged: np.ndarray, window_episodes: np.ndarray) -> np.ndarray:
    """Whether each window lies in a corrected episode but covers none of its flagged steps, ``(N,)`` bool
    (``flagged``: :func:`intervention_windows`; ``window_episodes``: each window's episode index)."""
    counts = _flag_counts(store)
    ends = np.asarray(store.episode_ends, dtype=np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    corrected = counts[ends] - counts[starts] > 0
    return corrected[np.asarray(window_episodes, dtype=np.int64)] & ~np.asarray(flagged, bool)


def intervention_weights(
    flagged: np.ndarray,
    weight: float | None,
    only: bool,
    base: np.ndarray | None = None,
    dropped: np.ndarray | None = None,
) -> np.ndarray:
    """Per-window sampling probabilities (sum 1): flagged windows ``weight`` times the others, or only them; windows
    where ``dropped`` is true never; ``base`` (e.g. task-mixture weights) multiplies in."""
    flagged = np.asarray(flagged, bool)
    if not flagged.any():
        raise ManipError(f"{OPTIONS}: no training window has an intervention step")
    if weight is not None and not (np.isfinite(weight) and weight > 0):
        raise ManipError(f"data.intervention_weight must be a positive number, got {weight}")
    per_window = np.where(flagged, 1.0 if weight is None else float(weight), 0.0 if only else 1.0)
    if dropped is not None:
        per_window = np.where(np.asarray(dropped, bool), 0.0, per_window)
    if base is not None:
        per_window = per_window * np.asarray(base, dtype=np.float64)
    if not per_window.sum() > 0:
        raise ManipError(f"{OPTIONS}: these settings leave no training window to draw")
    return per_window / per_window.sum()


def share_of(flagged: np.ndarray, weights: np.ndarray | None = None) -> float:
    """The expected share of intervention windows in a batch (uniform when ``weights`` is None)."""
    flagged = np.asarray(flagged, bool)
    if weights is None:
        return float(flagged.mean()) if flagged.size else 0.0
    return float(np.asarray(weights)[flagged].sum() / np.asarray(weights).sum())
