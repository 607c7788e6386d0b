"""Per-task sampling weights for multi-task stores: how much of each training batch comes from each task.

Without weights every training window is equally likely, so a task's share of a batch is its share of the steps
(long PickPlaceCan demos crowd out short Lift ones). ``task_weights`` sets the shares instead: a task's windows
together get probability ``weight / sum(weights)``, spread evenly over them. The task of an episode is its
metadata's ``"task"`` (written by ``manip collect`` and kept by ``manip data merge``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from data.errors import ManipError
from data.store import EpisodeStore


def episode_tasks(store: EpisodeStore, episodes: np.ndarray) -> dict[int, str]:
    """``{episode: task}`` for the given episodes; an episode without a ``"task"`` in its metadata is an error."""
    tasks = {}
    for episode in np.unique(episodes).tolist():
        task = store.episode_meta(episode).get("task")
        if not isinstance(task, str) or not task:
            raise ManipError(
                f"{store.path}: episode {episode} has no 'task' in its metadata (data.task_weights)"
            )
        tasks[episode] = task
    return tasks


def task_mixture_weights(
    store: EpisodeStore, window_episodes: np.ndarray, task_weights: Mapping[str, float]
) -> np.ndarray:
    """Sampling probability of each window (sums to 1) so that task ``t`` fills ``w_t / sum(w)`` of a batch.

    Every task among the windows' episodes must be named, and every named task must have windows: a typo must not
    silently train on a different mixture.
    """
    window_episodes = np.asarray(window_episodes)
    if window_episodes.size == 0:
        raise ManipError("data.task_weights: the dataset has no training windows")
    bad = {task: w for task, w in task_weights.items() if not np.isfinite(w) or w <= 0}
    if bad:
        raise ManipError(f"data.task_weights: weights must be positive numbers, got {bad}")
    tasks = episode_tasks(store, window_episodes)
    window_task = np.array([tasks[e] for e in window_episodes.tolist()])
    present = sorted(set(tasks.values()))
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
    total = sum(task_weights[t] for t in present)
    weights = np.zeros(len(window_episodes), dtype=np.float64)
    for task in present:
        members = window_task == task
        weights[members] = task_weights[task] / total / members.sum()
    return weights


def task_shares(
    window_episodes: np.ndarray, weights: np.ndarray, tasks: Mapping[int, str]
) -> dict[str, float]:
    """Each task's expected share of a batch under ``weights`` (uniform when ``weights`` is None)."""
    window_episodes = np.asarray(window_episodes)
    if weights is None:
        weights = np.full(len(window_episodes), 1.0 / max(len(window_episodes), 1))
    shares: dict[str, float] = {}
    for episode, weight in zip(window_episodes.tolist(), np.asarray(weights).tolist(), strict=True):
        task = tasks[episode]
        shares[task] = shares.get(task, 0.0) + weight
    return dict(sorted(shares.items()))
