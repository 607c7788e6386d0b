"""Diffusion Policy zarr v2 stores (directory and .zarr.zip) open unchanged, read-only or appendable."""

from __future__ import annotations

import json

import numpy as np
import pytest

from manip.core.errors import ManipError
from manip.data.recorder import Recorder
from manip.data.store import EpisodeStore
from manip.data.validate import validate_store
from tests.data.conftest import make_episode, write_dp_v2_store, zip_store


@pytest.fixture
def dp_episodes(rng):
    return [make_episode(rng, n, image=True) for n in (4, 6, 3)]


def test_dp_v2_directory_opens_as_is(tmp_path, dp_episodes):
    path = tmp_path / "dp.zarr"
    write_dp_v2_store(path, dp_episodes)
    store = EpisodeStore.open(path)
    assert store.zarr_format == 2 and store.num_episodes == 3
    assert store.episode_lengths.tolist() == [4, 6, 3]
    for i, episode in enumerate(dp_episodes):
        for key, value in store.get_episode(i).items():
            np.testing.assert_array_equal(value, episode[key])
        assert store.episode_meta(i) == {"success": None}
    assert validate_store(path).ok


def test_dp_v2_with_jpeg2k_images_reads(tmp_path, dp_episodes):
    from imagecodecs.numcodecs import Jpeg2k

    path = tmp_path / "dp.zarr"
    write_dp_v2_store(path, dp_episodes, image_compressor=Jpeg2k(level=0, reversible=True))
    assert (
        json.loads((path / "data/agentview_image/.zarray").read_text())["compressor"]["id"]
        == "imagecodecs_jpeg2k"
    )
    store = EpisodeStore.open(path)
    np.testing.assert_array_equal(store.get_episode(1)["agentview_image"], dp_episodes[1]["agentview_image"])


def test_dp_v2_zip_opens_read_only(tmp_path, dp_episodes):
    write_dp_v2_store(tmp_path / "dp.zarr", dp_episodes)
    zip_store(tmp_path / "dp.zarr", tmp_path / "dp.zarr.zip")
    with EpisodeStore.open(tmp_path / "dp.zarr.zip") as store:
        assert store.num_episodes == 3
        np.testing.assert_array_equal(store.get_episode(2)["action"], dp_episodes[2]["action"])
    assert validate_store(tmp_path / "dp.zarr.zip").ok
    with pytest.raises(ManipError, match="read-only"):
        EpisodeStore.open(tmp_path / "dp.zarr.zip").add_episode(dp_episodes[0])


def test_dp_v2_zip_is_appendable_and_republished_atomically(tmp_path, dp_episodes, rng):
    write_dp_v2_store(tmp_path / "dp.zarr", dp_episodes)
    path = tmp_path / "dp.zarr.zip"
    zip_store(tmp_path / "dp.zarr", path)
    new = make_episode(rng, 5, image=True)
    with EpisodeStore.open(path, mode="a") as store:
        assert store.add_episode(new, {"task": "Lift", "success": True}) == 3
        with EpisodeStore.open(path) as reader:  # already published after the commit
            assert reader.num_episodes == 4
        bad = make_episode(rng, 2, image=True)
        bad["action"] = bad["action"][:, :3]
        with pytest.raises(ManipError, match="per-step shape"):
            store.add_episode(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dp.zarr", "dp.zarr.zip"]  # staging cleaned up
    with EpisodeStore.open(path) as store:
        assert store.zarr_format == 2 and store.episode_ends.tolist() == [4, 10, 13, 18]
        np.testing.assert_array_equal(store.get_episode(3)["agentview_image"], new["agentview_image"])
        np.testing.assert_array_equal(store.get_episode(1)["action"], dp_episodes[1]["action"])
        assert store.episode_meta(3) == {"task": "Lift", "success": True}
    assert validate_store(path).ok


def test_append_to_dp_v2_store_keeps_it_v2_and_dp_compatible(tmp_path, dp_episodes, rng):
    path = tmp_path / "dp.zarr"
    write_dp_v2_store(path, dp_episodes)
    store = EpisodeStore.open(path, mode="a")
    new = make_episode(rng, 5, image=True)
    recorder = Recorder(store)
    assert not recorder.records_intervention  # the DP store has no intervention array; none is added
    recorder.start_episode(task="Lift")
    for t in range(5):
        recorder.add_step({k: v[t] for k, v in new.items()})
    assert recorder.commit(success=True) == 3
    reread = EpisodeStore.open(path)
    assert reread.zarr_format == 2 and reread.episode_ends.tolist() == [4, 10, 13, 18]
    np.testing.assert_array_equal(reread.get_episode(3)["agentview_image"], new["agentview_image"])
    np.testing.assert_array_equal(reread.get_episode(0)["action"], dp_episodes[0]["action"])
    assert reread.episode_meta(0) == {"success": None}
    assert reread.episode_meta(3) == {"task": "Lift", "success": True}
    assert (path / "meta/episode_ends/.zarray").is_file()  # still a v2 store a DP ReplayBuffer can read
    with pytest.raises(ManipError, match="no 'intervention' array"):
        recorder.start_episode()
        recorder.add_step({k: v[0] for k, v in new.items()}, intervention=True)


def test_unknown_codec_is_one_line_error_naming_the_file(tmp_path, dp_episodes):
    path = tmp_path / "dp.zarr"
    write_dp_v2_store(path, dp_episodes)
    zarray = path / "data/agentview_image/.zarray"
    meta = json.loads(zarray.read_text())
    meta["compressor"] = {"id": "no_such_codec_xyz", "level": 3}
    zarray.write_text(json.dumps(meta))
    with pytest.raises(ManipError) as info:
        EpisodeStore.open(path)
    message = str(info.value)
    assert "\n" not in message and "agentview_image" in message and "no_such_codec_xyz" in message
    assert not validate_store(path).ok


def test_truncated_zip_and_corrupt_v2_metadata_are_one_line_errors(tmp_path, dp_episodes):
    write_dp_v2_store(tmp_path / "dp.zarr", dp_episodes)
    zip_store(tmp_path / "dp.zarr", tmp_path / "dp.zarr.zip")
    blob = (tmp_path / "dp.zarr.zip").read_bytes()
    (tmp_path / "cut.zarr.zip").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ManipError, match=r"cut\.zarr\.zip: not a readable zip file") as info:
        EpisodeStore.open(tmp_path / "cut.zarr.zip")
    assert "\n" not in str(info.value)
    (tmp_path / "dp.zarr" / "data" / "action" / ".zarray").write_text('{"shape": [13, 7], "chu')
    with pytest.raises(ManipError, match="data/action: cannot open") as info:
        EpisodeStore.open(tmp_path / "dp.zarr")
    assert "\n" not in str(info.value)


class _CreatesFileWhenUnpickled:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_v2_object_array_with_a_pickle_codec_is_refused_not_unpickled(tmp_path, dp_episodes):
    import numcodecs

    from tests.cli import manip

    path = tmp_path / "dp.zarr"
    write_dp_v2_store(path, dp_episodes)
    marker = tmp_path / "unpickled"
    array = path / "meta" / "episode_meta"
    array.mkdir()
    (array / ".zarray").write_text(
        json.dumps(
            {
                "zarr_format": 2,
                "shape": [3],
                "chunks": [3],
                "dtype": "|O",
                "fill_value": None,
                "order": "C",
                "compressor": None,
                "filters": [{"id": "pickle", "protocol": 5}],
                "dimension_separator": ".",
            }
        )
    )
    payload = np.empty(3, dtype=object)
    payload[:] = [_CreatesFileWhenUnpickled(marker), "{}", "{}"]
    (array / "0").write_bytes(numcodecs.Pickle().encode(payload))
    for command in ("info", "validate", "convert"):
        args = [path, tmp_path / "out.zarr"] if command == "convert" else [path]
        result = manip("data", command, *args)
        assert result.returncode != 0 and result.stderr.count("\n") == 1, result.stderr
        assert "meta/episode_meta: cannot open" in result.stderr and "internal error" not in result.stderr
    assert not marker.exists()
