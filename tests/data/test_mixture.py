"""Per-task sampling weights over a real multi-task store: the shares asked for, evenly within a task, and
one-line errors for weights that do not match the store's tasks."""

from __future__ import annotations

import numpy as np
import pytest

from manip.core.errors import ManipError
from manip.data.dataset import ChunkDataset
from manip.data.mixture import task_mixture_weights, task_shares, window_tasks
from manip.data.store import EpisodeStore
from tests.data.conftest import make_episode


@pytest.fixture
def two_task_store(tmp_path, rng):
    """Lift: 4 short episodes (10 steps); Stack: 2 long ones (40 steps) — Stack holds most windows."""
    store = EpisodeStore.create(tmp_path / "multi.zarr")
    for task, length, count in (("Lift", 10, 4), ("Stack", 40, 2)):
        for _ in range(count):
            store.add_episode(make_episode(rng, length), {"task": task})
    return store


def tasks_of(store):
    windows = ChunkDataset(
        store, ["robot0_eef_pos"], horizon=8, n_obs_steps=2, n_action_steps=4
    ).window_episodes()
    return window_tasks(store, windows)


def test_each_task_gets_its_weighted_share_spread_evenly(two_task_store):
    tasks = tasks_of(two_task_store)
    assert task_shares(tasks)["Stack"] > 0.6  # long episodes dominate uniform window sampling
    weights = task_mixture_weights(tasks, {"Lift": 3.0, "Stack": 1.0})
    assert weights.sum() == pytest.approx(1.0)
    assert task_shares(tasks, weights) == pytest.approx({"Lift": 0.75, "Stack": 0.25})
    lift = tasks == "Lift"
    assert np.allclose(weights[lift], weights[lift][0]) and np.allclose(weights[~lift], weights[~lift][0])


@pytest.mark.parametrize(
    ("task_weights", "message"),
    [
        ({"Lift": 1.0}, "no weight for task(s) Stack"),
        ({"Lift": 1.0, "Stack": 1.0, "Stak": 1.0}, "task(s) Stak have no training episodes"),
        ({"Lift": 1.0, "Stack": 0.0}, "must be positive"),
    ],
)
def test_weights_that_do_not_match_the_stores_tasks_are_refused(two_task_store, task_weights, message):
    with pytest.raises(ManipError, match=message.replace("(", r"\(").replace(")", r"\)")):
        task_mixture_weights(tasks_of(two_task_store), task_weights)


def test_an_episode_without_a_task_is_named(tmp_path, rng):
    store = EpisodeStore.create(tmp_path / "untagged.zarr")
    store.add_episode(make_episode(rng, 12), {"task": "Lift"})
    store.add_episode(make_episode(rng, 12), {"seed": 1})
    with pytest.raises(ManipError, match="episode 1 has no 'task'"):
        task_mixture_weights(tasks_of(store), {"Lift": 1.0})
