"""EpisodeStore and Recorder: round trips, commit-last semantics, metadata, chunking, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from manip.core.errors import ManipError
from manip.data.recorder import Recorder
from manip.data.store import EpisodeStore
from tests.data.conftest import fill_store, make_episode


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_round_trip_every_array_and_meta(tmp_path, zarr_format):
    path = tmp_path / "s.zarr"
    episodes = fill_store(path, [5, 9, 3], zarr_format=zarr_format, image=True)
    store = EpisodeStore.open(path)
    assert store.zarr_format == zarr_format
    assert store.num_episodes == 3 and store.num_steps == 17
    assert store.episode_ends.tolist() == [5, 14, 17]
    assert store.episode_lengths.tolist() == [5, 9, 3]
    assert store.keys == ["action", "agentview_image", "robot0_eef_pos"]
    for i, episode in enumerate(episodes):
        got = store.get_episode(i)
        for key, value in episode.items():
            np.testing.assert_array_equal(got[key], value)
            assert got[key].dtype == value.dtype
        assert store.episode_meta(i) == {"task": "Lift", "seed": i, "success": i % 2 == 0}
    assert store.episode_slice(1) == slice(5, 14)
    assert store.episode_success == [True, False, True]


def test_images_are_chunked_per_frame_and_lowdim_along_time(tmp_path):
    path = tmp_path / "s.zarr"
    fill_store(path, [40], image=True)
    store = EpisodeStore.open(path)
    assert store.array("agentview_image").chunks == (1, 84, 84, 3)
    assert store.array("action").chunks[0] > 40


def test_recorder_commits_only_on_commit_and_records_interventions(tmp_path, rng):
    store = EpisodeStore.create(tmp_path / "s.zarr")
    recorder = Recorder(store, flush_every=3)
    episode = make_episode(rng, 8)
    recorder.start_episode(
        task="Lift", instruction="lift the cube", source="scripted", seed=7, operator="ann"
    )
    for t in range(8):
        recorder.add_step({k: v[t] for k, v in episode.items()}, intervention=t in (2, 3))
        assert EpisodeStore.open(store.path).num_episodes == 0  # nothing visible before commit
    index = recorder.commit(success=None, note="late field")
    reread = EpisodeStore.open(store.path)
    assert index == 0 and reread.num_episodes == 1
    np.testing.assert_array_equal(reread.get_episode(0)["action"], episode["action"])
    assert reread.get_episode(0)["intervention"].tolist() == [t in (2, 3) for t in range(8)]
    assert reread.episode_meta(0) == {
        "task": "Lift",
        "instruction": "lift the cube",
        "source": "scripted",
        "seed": 7,
        "operator": "ann",
        "note": "late field",
        "success": None,
    }


def test_discard_leaves_store_as_after_last_commit(tmp_path, rng):
    store = EpisodeStore.create(tmp_path / "s.zarr")
    recorder = Recorder(store, flush_every=2)
    recorder.start_episode()
    first = make_episode(rng, 4)
    for t in range(4):
        recorder.add_step({k: v[t] for k, v in first.items()})
    recorder.commit(success=True)
    recorder.start_episode()
    second = make_episode(rng, 5)
    for t in range(5):
        recorder.add_step({k: v[t] for k, v in second.items()})
    recorder.discard()
    reread = EpisodeStore.open(store.path)
    assert reread.num_episodes == 1 and reread.uncommitted_steps() == 0
    assert all(reread.array(k).shape[0] == 4 for k in reread.keys)


def test_failed_append_leaves_store_unchanged(tmp_path, rng):
    path = tmp_path / "s.zarr"
    episodes = fill_store(path, [6, 4])
    store = EpisodeStore.open(path, mode="a")
    before = {k: store.array(k)[:].copy() for k in store.keys}
    bad = make_episode(rng, 5)
    bad["robot0_eef_pos"] = bad["robot0_eef_pos"][:, :2]
    with pytest.raises(ManipError, match="robot0_eef_pos"):
        store.add_episode(bad)
    nan = make_episode(rng, 5)
    nan["action"][2, 1] = np.nan
    with pytest.raises(ManipError, match="NaN"):
        store.add_episode(nan)
    with pytest.raises(ManipError, match="missing key"):
        store.add_episode({"action": episodes[0]["action"]})
    reread = EpisodeStore.open(path)
    assert reread.num_episodes == 2
    for key, value in before.items():
        np.testing.assert_array_equal(reread.array(key)[:], value)


def test_append_after_reopen_keeps_committed_data(tmp_path, rng):
    path = tmp_path / "s.zarr"
    episodes = fill_store(path, [3, 4])
    extra = make_episode(rng, 6)
    EpisodeStore.open(path, mode="a").add_episode(extra, {"success": False})
    reread = EpisodeStore.open(path)
    assert reread.episode_ends.tolist() == [3, 7, 13]
    for i, episode in enumerate([*episodes, extra]):
        np.testing.assert_array_equal(reread.get_episode(i)["action"], episode["action"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: EpisodeStore.open(p / "missing.zarr"), "no such store"),
        (lambda p: EpisodeStore.open(p / "s.zarr", mode="w"), "mode must be"),
        (lambda p: EpisodeStore.create(p / "s.zarr"), "already exists"),
        (lambda p: EpisodeStore.open(p / "s.zarr").add_episode({}), "read-only"),
        (lambda p: EpisodeStore.open(p / "s.zarr").get_episode(5), "out of range"),
        (lambda p: EpisodeStore.open(p / "s.zarr").array("nope"), "no key 'nope'"),
        (
            lambda p: EpisodeStore.open(p / "s.zarr", "a").add_episode({"action": np.zeros((0, 7))}),
            "missing key",
        ),
        (
            lambda p: EpisodeStore.open(p / "s.zarr", "a").add_episode(
                make_episode(np.random.default_rng(0), 2), {"success": "yes"}
            ),
            "success must be",
        ),
        (
            lambda p: EpisodeStore.open(p / "s.zarr", "a").add_episode(
                make_episode(np.random.default_rng(0), 2), {"obj": object()}
            ),
            "not JSON",
        ),
    ],
)
def test_bad_input_is_one_line_manip_error(tmp_path, call, message):
    fill_store(tmp_path / "s.zarr", [3])
    with pytest.raises(ManipError, match=message) as info:
        call(tmp_path)
    assert "\n" not in str(info.value)


def test_not_a_store_and_corrupt_metadata(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManipError, match="not a Zarr store"):
        EpisodeStore.open(tmp_path / "empty")
    path = tmp_path / "s.zarr"
    fill_store(path, [3])
    (path / "meta" / "episode_ends" / "zarr.json").write_text("{ truncated")
    with pytest.raises(ManipError, match="episode_ends") as info:
        EpisodeStore.open(path)
    assert "\n" not in str(info.value)


def test_interrupted_commit_before_episode_ends_leaves_episode_invisible(tmp_path, rng, monkeypatch):
    path = tmp_path / "s.zarr"
    episodes = fill_store(path, [4, 5])
    store = EpisodeStore.open(path, mode="a")

    def crash(_end):
        raise KeyboardInterrupt  # the process dies right before the commit record is written

    monkeypatch.setattr(store, "_append_end", crash)
    with pytest.raises(KeyboardInterrupt):
        store.stage_steps(0, make_episode(rng, 6))
        store.commit_staged(6, {"task": "Lift"})
    reread = EpisodeStore.open(path)
    assert reread.num_episodes == 2 and reread.uncommitted_steps() == 6
    assert len(reread.episode_meta_texts()) == 2
    for i, episode in enumerate(episodes):
        np.testing.assert_array_equal(reread.get_episode(i)["action"], episode["action"])
    fresh = make_episode(rng, 3)
    assert EpisodeStore.open(path, mode="a").add_episode(fresh, {"seed": 9}) == 2
    final = EpisodeStore.open(path)
    assert final.episode_ends.tolist() == [4, 9, 12] and final.uncommitted_steps() == 0
    assert final.episode_meta(2) == {"seed": 9, "success": None}
    np.testing.assert_array_equal(final.get_episode(2)["robot0_eef_pos"], fresh["robot0_eef_pos"])
