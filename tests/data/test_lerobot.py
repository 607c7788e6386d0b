"""LeRobot v3 datasets in and out: a dataset written by LeRobot's own writer converts exactly (video within the
codec's loss), manip exports in the layout LeRobot's reader loads, and bad input is a one-line error."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from manip.core.errors import ManipError
from manip.data.converters import convert, find_converter
from manip.data.exporters import export
from manip.data.store import EpisodeStore
from manip.data.video import psnr
from tests.cli import manip
from tests.data.fixtures import lerobot_fixture as fx

FIXTURE = Path(__file__).parent / "fixtures" / "lerobot_v3_small"
MIN_PSNR_DB = 30.0


def camera_store(path: Path, lengths=(5, 8, 4), seed: int = 0) -> list[dict]:
    """A store with a camera, low-dim keys of several dtypes/shapes and labelled, instructed episodes."""
    rng = np.random.default_rng(seed)
    store = EpisodeStore.create(path)
    store.set_attrs(control_rate=20.0, action_semantics={"kind": "delta"})
    episodes = []
    for i, n in enumerate(lengths):
        episode = {
            "action": rng.normal(size=(n, 7)).astype(np.float32),
            "robot0_eef_pos": rng.normal(size=(n, 3)),
            "reward": rng.normal(size=n).astype(np.float32),
            "intervention": np.arange(n) % 3 == 0,
            "agentview_image": np.stack([fx.frame(i, t)[:, :48] for t in range(n)]),
        }
        store.add_episode(
            episode, {"task": "Lift", "instruction": f"lift {i}", "success": i % 2 == 0, "seed": i}
        )
        episodes.append(episode)
    store.close()
    return episodes


def test_lerobot_fixture_written_by_lerobot_converts_exactly(tmp_path):
    assert find_converter(FIXTURE).name == "lerobot"
    dst = tmp_path / "from_lerobot.zarr"
    convert(FIXTURE, dst)
    store = EpisodeStore.open(dst)
    assert store.episode_lengths.tolist() == list(fx.LENGTHS)
    assert store.keys == ["action", "next.success", "observation.images.front", "observation.state"]
    assert store.attrs["control_rate"] == fx.FPS
    for i, length in enumerate(fx.LENGTHS):
        got = store.get_episode(i)
        np.testing.assert_array_equal(
            got["observation.state"], np.stack([fx.state(i, t) for t in range(length)])
        )
        np.testing.assert_array_equal(got["action"], np.stack([fx.action(i, t) for t in range(length)]))
        assert got["action"].dtype == np.float32 and got["next.success"].dtype == bool
        np.testing.assert_array_equal(got["next.success"][:, 0], fx.success_flags(i))
        frames = got["observation.images.front"]
        assert frames.shape == (length, fx.HEIGHT, fx.WIDTH, 3) and frames.dtype == np.uint8
        assert psnr(np.stack([fx.frame(i, t) for t in range(length)]), frames) > MIN_PSNR_DB
        meta = store.episode_meta(i)
        assert meta["instruction"] == meta["task"] == fx.TASKS[i]
        assert meta["success"] is fx.SUCCESS[i] and meta["episode_index"] == i


def test_export_then_import_is_lossless_for_low_dim_and_keeps_metadata(tmp_path):
    episodes = camera_store(tmp_path / "src.zarr")
    summary = export(tmp_path / "src.zarr", "lerobot", tmp_path / "lr")
    assert summary["episodes"] == 3 and summary["psnr_db"]["agentview_image"] > MIN_PSNR_DB
    convert(tmp_path / "lr", tmp_path / "back.zarr")
    source, back = EpisodeStore.open(tmp_path / "src.zarr"), EpisodeStore.open(tmp_path / "back.zarr")
    assert back.keys == source.keys and back.attrs["action_semantics"] == {"kind": "delta"}
    for i, episode in enumerate(episodes):
        got = back.get_episode(i)
        for key, value in episode.items():
            assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
            if key == "agentview_image":
                assert psnr(value, got[key]) > MIN_PSNR_DB
            else:
                np.testing.assert_array_equal(got[key], value)
        assert back.episode_meta(i) == source.episode_meta(i)


def test_export_uses_the_layout_lerobots_writer_produces(tmp_path):
    camera_store(tmp_path / "src.zarr")
    export(tmp_path / "src.zarr", "lerobot", tmp_path / "lr")
    ours = json.loads((tmp_path / "lr/meta/info.json").read_text())
    theirs = json.loads((FIXTURE / "meta/info.json").read_text())
    assert set(theirs) - {"manip"} <= set(ours)
    assert ours["codebase_version"] == theirs["codebase_version"] == "v3.0"
    assert ours["data_path"] == theirs["data_path"] and ours["video_path"] == theirs["video_path"]
    for name in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert ours["features"][name] == theirs["features"][name]
    video = ours["features"]["observation.images.agentview_image"]
    assert video["dtype"] == "video" and set(theirs["features"]["observation.images.front"]["info"]) <= set(
        video["info"]
    )
    assert ours["features"]["action"] == {"dtype": "float32", "shape": [7], "names": None}
    episodes_ours = pq.read_table(tmp_path / "lr/meta/episodes/chunk-000/file-000.parquet")
    episodes_theirs = pq.read_table(FIXTURE / "meta/episodes/chunk-000/file-000.parquet")
    structural = {
        n.replace("front", "agentview_image")
        for n in episodes_theirs.column_names
        if not n.startswith("stats/")
    }
    assert structural <= set(episodes_ours.column_names)
    assert episodes_ours.column("dataset_to_index").to_pylist() == [5, 13, 17]
    frames = pq.read_table(tmp_path / "lr/data/chunk-000/file-000.parquet")
    assert frames.column("index").to_pylist() == list(range(17))
    theirs_state = (
        pq.read_table(FIXTURE / "data/chunk-000/file-000.parquet").schema.field("observation.state").type
    )
    assert theirs_state == pa.list_(
        pa.float32(), 4
    )  # LeRobot's writer: fixed-size lists, as manip writes them
    assert frames.schema.field("observation.robot0_eef_pos").type == pa.list_(pa.float64(), 3)
    assert frames.schema.field("action").type == pa.list_(pa.float32(), 7)
    tasks = pq.read_table(tmp_path / "lr/meta/tasks.parquet")
    assert tasks.column("__index_level_0__").to_pylist() == ["lift 0", "lift 1", "lift 2"]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]
    assert (tmp_path / "lr/videos/observation.images.agentview_image/chunk-000/file-000.mp4").is_file()


def test_cli_export_reports_psnr_and_convert_reads_lerobot(tmp_path):
    camera_store(tmp_path / "src.zarr")
    result = manip("data", "export", tmp_path / "src.zarr", "--format", "lerobot", tmp_path / "lr")
    assert result.returncode == 0, result.stderr
    assert "3 episodes, 17 steps as lerobot; video PSNR agentview_image" in result.stdout
    result = manip("data", "convert", FIXTURE, tmp_path / "in.zarr")
    assert result.returncode == 0, result.stderr
    assert "3 episodes, 20 steps from lerobot" in result.stdout
    result = manip("data", "export", tmp_path / "src.zarr", "--format", "lerobot", tmp_path / "lr")
    assert result.returncode != 0 and "already exists" in result.stderr and result.stderr.count("\n") == 1


def test_export_without_a_control_rate_needs_fps(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr")
    store.add_episode({"action": np.zeros((3, 2), np.float32)})
    store.close()
    with pytest.raises(ManipError, match="pass --fps"):
        export(tmp_path / "s.zarr", "lerobot", tmp_path / "lr")
    export(tmp_path / "s.zarr", "lerobot", tmp_path / "lr", fps=15)
    assert json.loads((tmp_path / "lr/meta/info.json").read_text())["fps"] == 15


def _broken_copy(tmp_path: Path, name: str) -> Path:
    copy = tmp_path / name
    shutil.copytree(FIXTURE, copy)
    return copy


def _damage_video(root: Path) -> None:
    video = root / "videos/observation.images.front/chunk-000/file-000.mp4"
    video.write_bytes(video.read_bytes()[:600])


def _truncate_data(root: Path) -> None:
    data = root / "data/chunk-000/file-000.parquet"
    data.write_bytes(data.read_bytes()[:100])


def _episode_length(root: Path) -> None:
    path = root / "meta/episodes/chunk-000/file-000.parquet"
    table = pq.read_table(path)
    lengths = table.column("length").to_pylist()
    lengths[1] += 2
    pq.write_table(table.set_column(table.column_names.index("length"), "length", pa.array(lengths)), path)


def _bad_info(root: Path) -> None:
    (root / "meta/info.json").write_text('{"codebase_version": "v3.0", "fps": 10')


def _missing_video(root: Path) -> None:
    shutil.rmtree(root / "videos")


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_damage_video, r"episode \d '.*front'|file-000\.mp4"),
        (_truncate_data, r"data/chunk-000/file-000\.parquet: not a readable parquet file"),
        (_episode_length, r"file-000\.parquet: episode 1 has 9 frames, the episodes table says 11"),
        (_bad_info, r"meta/info\.json: "),
        (_missing_video, r"file-000\.mp4: missing \(episode 0 'observation\.images\.front'\)"),
    ],
)
def test_malformed_lerobot_input_is_one_line_and_leaves_nothing(tmp_path, damage, expected):
    src = _broken_copy(tmp_path, "broken")
    damage(src)
    result = manip("data", "convert", src, tmp_path / "out.zarr")
    assert result.returncode != 0 and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(expected, result.stderr), result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken"]


def test_robomimic_export_follows_robomimics_layout_and_converts_back(tmp_path):
    import h5py

    from tests.data.test_convert import ENV_ARGS, write_robomimic

    demos = write_robomimic(tmp_path / "src.hdf5", [4, 3, 5])
    convert(tmp_path / "src.hdf5", tmp_path / "src.zarr")
    result = manip("data", "export", tmp_path / "src.zarr", "--format", "robomimic", tmp_path / "out.hdf5")
    assert result.returncode == 0, result.stderr
    with h5py.File(tmp_path / "out.hdf5", "r") as f:
        assert json.loads(f["data"].attrs["env_args"]) == ENV_ARGS and f["data"].attrs["total"] == 12
        assert sorted(f["data"]) == ["demo_0", "demo_1", "demo_2"]
        assert [d.decode() for d in f["mask/train"][()]] == ["demo_0", "demo_2"]
        for name, demo in demos.items():
            group = f[f"data/{name}"]
            assert group.attrs["num_samples"] == len(demo["actions"])
            for key in ("actions", "rewards", "dones", "states"):
                np.testing.assert_array_equal(group[key][()], demo[key])
                assert group[key].dtype == demo[key].dtype
            for key, value in demo["obs"].items():
                np.testing.assert_array_equal(group[f"obs/{key}"][()], value)
                np.testing.assert_array_equal(group[f"next_obs/{key}"][:-1], demo["next_obs"][key][:-1])
    convert(tmp_path / "out.hdf5", tmp_path / "again.zarr")
    first, again = EpisodeStore.open(tmp_path / "src.zarr"), EpisodeStore.open(tmp_path / "again.zarr")
    for i in range(3):
        for key, value in first.get_episode(i).items():
            np.testing.assert_array_equal(again.get_episode(i)[key], value)
        assert {k: v for k, v in again.episode_meta(i).items() if k != "source"} == {
            k: v for k, v in first.episode_meta(i).items() if k != "source"
        }


@pytest.mark.parametrize("fmt", ["lerobot", "robomimic"])
def test_export_of_a_damaged_store_is_one_line_and_leaves_nothing(tmp_path, fmt):
    camera_store(tmp_path / "src.zarr")
    shard = next((tmp_path / "src.zarr/data/robot0_eef_pos/c").rglob("*"))
    shard.unlink() if shard.is_file() else shutil.rmtree(shard)
    out = tmp_path / ("out.hdf5" if fmt == "robomimic" else "out")
    result = manip("data", "export", tmp_path / "src.zarr", "--format", fmt, out)
    assert result.returncode != 0 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "data/robot0_eef_pos: 1 chunk(s) missing" in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.zarr"]
