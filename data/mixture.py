"""Per-task sampling weights for multi-task stores: how much of each training batch comes from each task.

Without weights every training window is equally likely, so a task's share of a batch is its share of the steps
(long PickPlaceCan demos crowd out short Lift ones). ``task_weights`` sets the shares instead: a task's windows
together get probability ``weight / sum(weights)``, spread evenly over them. The task of an episode is its
metadata's ``"task"`` (written by ``manip collect`` and kept by ``manip data merge``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from manip.core.errors import ManipError
from manip.data.store import EpisodeStore


def window_tasks(store: EpisodeStore, window_episodes: np.ndarray) -> np.ndarray:
    """The task of every window (its episode's metadata ``"task"``); an episode without one is an error."""
    tasks = {}
    for episode in np.unique(window_episodes).tolist():
        task = store.episode_meta(episode).get("task")
        if not isinstance(task, str) or not task:
            raise ManipError(
                f"{store.path}: episode {episode} has no 'task' in its metadata (data.task_weights)"
            )
        tasks[episode] = task
    return np.array([tasks[e] for e in np.asarray(window_episodes).tolist()], dtype=object)


def task_mixture_weights(window_task: np.ndarray, task_weights: Mapping[str, float]) -> np.ndarray:
    """Sampling probability of each window (sums to 1) so that task ``t`` fills ``w_t / sum(w)`` of a batch.

    Every task among the windows must be named, and every named task must have windows: a typo must not silently
    train on a different mixture.
    """
    window_task = np.asarray(window_task)
    if window_task.size == 0:
        raise ManipError("data.task_weights: the dataset has no training windows")
    bad = {task: w for task, w in task_weights.items() if not np.isfinite(w) or w <= 0}
    if bad:
        raise ManipError(f"data.task_weights: weights must be positive numbers, got {bad}")
    present, inverse, counts = np.unique(window_task, return_inverse=True, return_counts=True)
    present = present.tolist()
    unnamed = [t for t in present if t not in task_weights]
    if unnamed:
        raise ManipError(
            f"data.task_weights: no weight for task(s) {', '.join(unnamed)} (the store's tasks: {', '.join(present)})"
        )
    absent = sorted(t for t in task_weights if t not in present)
    if absent:
        raise ManipError(
            f"data.task_weights: task(s) {', '.join(absent)} have no training episodes "
            f"(the store's tasks: {', '.join(present)})"
        )
    share = np.array([task_weights[t] for t in present], dtype=np.float64)
    return (share / share.sum() / counts)[inverse]


def task_shares(window_task: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """Each task's expected share of a batch under ``weights`` (uniform when ``weights`` is None)."""
    present, inverse = np.unique(np.asarray(window_task), return_inverse=True)
    weights = np.full(len(inverse), 1.0 / max(len(inverse), 1)) if weights is None else np.asarray(weights)
    return dict(zip(present.tolist(), np.bincount(inverse, weights=weights).tolist(), strict=True))
