"""`manip data convert`: robomimic HDF5 and Diffusion Policy zarr v2 → zarr v3, lossless (every array compared)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr

from manip.core.errors import ManipError
from manip.data.converters import convert, converters, find_converter
from manip.data.store import EpisodeStore
from manip.data.validate import validate_store
from tests.data.conftest import make_episode, write_dp_v2_store, zip_store

ROOT = Path(__file__).resolve().parents[2]
ENV_ARGS = {"env_name": "Lift", "type": 1, "env_kwargs": {"control_freq": 20}}


def write_robomimic(path: Path, lengths, seed: int = 0) -> dict:
    """A robomimic-style file: data/demo_i/{actions, obs/*, next_obs/*, rewards, dones, states} + attributes."""
    rng = np.random.default_rng(seed)
    demos = {}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps(ENV_ARGS)
        data.attrs["total"] = int(sum(lengths))
        for i, n in enumerate(lengths):
            obs = {
                "robot0_eef_pos": rng.normal(size=(n + 1, 3)),
                "object": rng.normal(size=(n + 1, 10)).astype(np.float32),
                "agentview_image": rng.integers(0, 256, (n + 1, 16, 16, 3), dtype=np.uint8),
            }
            demo = {
                "actions": rng.uniform(-1, 1, (n, 7)),
                "rewards": rng.uniform(size=n),
                "dones": (np.arange(n) == n - 1).astype(np.int64),
                "states": rng.normal(size=(n, 32)),
                "obs": {k: v[:n] for k, v in obs.items()},
                "next_obs": {k: v[1:] for k, v in obs.items()},
            }
            group = data.create_group(f"demo_{i}")
            group.attrs["num_samples"] = n
            group.attrs["model_file"] = f"<mujoco model='demo{i}'/>"
            group.attrs["ep_meta"] = json.dumps({"lang": "lift the cube", "index": i})
            for name in ("actions", "rewards", "dones", "states"):
                group.create_dataset(name, data=demo[name])
            for sub in ("obs", "next_obs"):
                for key, value in demo[sub].items():
                    group.create_dataset(f"{sub}/{key}", data=value)
            demos[f"demo_{i}"] = demo
        mask = f.create_group("mask")
        mask.create_dataset(
            "train", data=np.array([b"demo_0", b"demo_2"] if len(lengths) > 2 else [b"demo_0"])
        )
    return demos


def test_robomimic_to_zarr_v3_is_lossless(tmp_path):
    src = tmp_path / "low_dim.hdf5"
    # demo_10 sorts after demo_2 numerically: episode order must follow demo numbers
    demos = write_robomimic(src, [5, 3, 4, 2, 2, 2, 2, 2, 2, 2, 6])
    dst = tmp_path / "out.zarr"
    assert convert(src, dst).name == "robomimic"
    store = EpisodeStore.open(dst)
    assert store.zarr_format == 3 and store.num_episodes == 11
    assert store.keys == ["action", "agentview_image", "done", "object", "reward", "robot0_eef_pos", "state"]
    for i in range(11):
        demo = demos[f"demo_{i}"]
        got = store.get_episode(i)
        expected = {
            "action": demo["actions"],
            "reward": demo["rewards"],
            "done": demo["dones"],
            "state": demo["states"],
        }
        expected.update(demo["obs"])
        assert set(got) == set(expected)
        for key, value in expected.items():
            assert got[key].dtype == value.dtype, key
            np.testing.assert_array_equal(got[key], value)
        # next_obs is not copied: it is obs shifted by one step
        for key, value in demo["next_obs"].items():
            np.testing.assert_array_equal(value[:-1], got[key][1:])
        meta = store.episode_meta(i)
        assert (
            meta["demo"] == f"demo_{i}"
            and meta["task"] == "Lift"
            and meta["num_samples"] == len(demo["actions"])
        )
        assert meta["ep_meta"] == {"lang": "lift the cube", "index": i}
        assert meta["model_file"] == f"<mujoco model='demo{i}'/>"
    assert store.attrs["source_attrs"]["env_args"] == ENV_ARGS
    assert store.attrs["masks"] == {"train": ["demo_0", "demo_2"]}
    assert validate_store(dst).ok


def test_dp_v2_to_v3_is_lossless_from_dir_and_zip(tmp_path, rng):
    episodes = [make_episode(rng, n, image=True) for n in (4, 7, 2)]
    write_dp_v2_store(tmp_path / "dp.zarr", episodes)
    zip_store(tmp_path / "dp.zarr", tmp_path / "dp.zarr.zip")
    for src in (tmp_path / "dp.zarr", tmp_path / "dp.zarr.zip"):
        dst = tmp_path / f"{src.name}.v3.zarr"
        assert convert(src, dst).name == "zarr"
        store = EpisodeStore.open(dst)
        assert store.zarr_format == 3 and store.episode_lengths.tolist() == [4, 7, 2]
        assert store.array("agentview_image").chunks == (1, 84, 84, 3)
        for i, episode in enumerate(episodes):
            got = store.get_episode(i)
            assert set(got) == set(episode)
            for key, value in episode.items():
                assert got[key].dtype == value.dtype
                np.testing.assert_array_equal(got[key], value)


def test_cli_convert_and_failed_conversion_leaves_nothing(tmp_path):
    src = tmp_path / "demo.hdf5"
    write_robomimic(src, [3, 4])
    dst = tmp_path / "out.zarr"
    result = subprocess.run(
        [sys.executable, "-P", "-m", "manip.cli.main", "data", "convert", str(src), str(dst)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "2 episodes, 7 steps from robomimic" in result.stdout
    with h5py.File(src, "a") as f:
        del f["data/demo_1/actions"]
    with pytest.raises(ManipError, match="demo_1: no 'actions'"):
        convert(src, tmp_path / "broken.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.hdf5", "out.zarr"]


def test_registry_picks_by_suffix_and_content(tmp_path):
    h5 = tmp_path / "renamed.bin"
    with h5py.File(h5, "w") as f:
        f.create_group("data")
    assert find_converter(h5).name == "robomimic"
    (tmp_path / "bag").mkdir()
    (tmp_path / "bag" / "metadata.yaml").write_text("rosbag2_bagfile_information: {}\n")
    assert find_converter(tmp_path / "bag").name == "rosbag2"
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ManipError, match="not a format manip can convert"):
        find_converter(tmp_path / "x.txt")
    (tmp_path / "lerobot" / "meta").mkdir(parents=True)
    (tmp_path / "lerobot" / "meta" / "info.json").write_text('{"codebase_version": "v3.0"}')
    assert find_converter(tmp_path / "lerobot").name == "lerobot"
    (tmp_path / "lerobot" / "meta" / "info.json").write_text('{"codebase_version": "v2.1"}')
    with pytest.raises(ManipError, match=r"LeRobot v3\.x dataset directory"):
        find_converter(tmp_path / "lerobot")
    assert {c.name for c in converters()} >= {"robomimic", "zarr", "rosbag2", "lerobot"}


def test_robomimic_bad_files(tmp_path):
    (tmp_path / "fake.hdf5").write_text("not hdf5")
    with pytest.raises(ManipError, match="not a readable HDF5"):
        convert(tmp_path / "fake.hdf5", tmp_path / "a.zarr")
    with h5py.File(tmp_path / "empty.hdf5", "w") as f:
        f.create_group("other")
    with pytest.raises(ManipError, match="no 'data' group"):
        convert(tmp_path / "empty.hdf5", tmp_path / "b.zarr")
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path / "b.zarr").exists()


def test_convert_to_zarr_v2_for_diffusion_policy_tools(tmp_path):
    demos = write_robomimic(tmp_path / "d.hdf5", [4, 3])
    convert(tmp_path / "d.hdf5", tmp_path / "v2.zarr", zarr_format=2)
    store = EpisodeStore.open(tmp_path / "v2.zarr")
    assert store.zarr_format == 2 and (tmp_path / "v2.zarr" / "meta" / "episode_ends" / ".zarray").is_file()
    for i in range(2):
        np.testing.assert_array_equal(store.get_episode(i)["action"], demos[f"demo_{i}"]["actions"])
        np.testing.assert_array_equal(
            store.get_episode(i)["agentview_image"], demos[f"demo_{i}"]["obs"]["agentview_image"]
        )
    assert validate_store(tmp_path / "v2.zarr").ok


def test_damaged_zarr_source_is_refused_naming_the_source(tmp_path):
    from tests.data.conftest import fill_store
    from tests.data.test_validate import first_chunk_file

    src = tmp_path / "src.zarr"
    fill_store(src, [4, 3], image=True)
    first_chunk_file(src, "agentview_image").unlink()
    with pytest.raises(ManipError, match=r"src\.zarr/data/agentview_image: 1 chunk\(s\) missing"):
        convert(src, tmp_path / "a.zarr")
    fill_store(tmp_path / "nan.zarr", [4, 3])
    zarr.open_array(tmp_path / "nan.zarr" / "data" / "action", mode="r+")[5, 0] = np.nan
    with pytest.raises(ManipError) as info:
        convert(tmp_path / "nan.zarr", tmp_path / "b.zarr")
    assert str(info.value) == f"{tmp_path / 'nan.zarr'}: episode 1: 'action' contains NaN or inf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.zarr", "src.zarr"]


def test_cli_convert_shows_progress_on_a_tty(tmp_path):
    from tests.data.conftest import run_on_a_tty

    write_robomimic(tmp_path / "demo.hdf5", [3, 4])
    code, stderr = run_on_a_tty("data", "convert", str(tmp_path / "demo.hdf5"), str(tmp_path / "out.zarr"))
    assert code == 0 and "convert:" in stderr and "/2 [" in stderr, stderr  # a bar over the 2 demos


def test_robomimic_with_a_damaged_chunk_is_a_one_line_error_naming_the_dataset(tmp_path):
    src = tmp_path / "damaged.hdf5"
    with h5py.File(src, "w") as f:
        demo = f.create_group("data/demo_0")
        demo.create_dataset("actions", data=np.zeros((4, 7)))
        frames = demo.create_dataset(
            "obs/agentview_image",
            data=np.ones((4, 8, 8, 3), np.uint8),
            chunks=(1, 8, 8, 3),
            compression="gzip",
        )
        offset, size = frames.id.get_chunk_info(1).byte_offset, frames.id.get_chunk_info(1).size
    with src.open("r+b") as f:  # overwrite one compressed chunk with garbage
        f.seek(offset)
        f.write(b"\xff" * size)
    with pytest.raises(ManipError) as info:
        convert(src, tmp_path / "out.zarr")
    assert str(info.value).startswith(f"{src}: data/demo_0/obs/agentview_image: unreadable")
    assert "\n" not in str(info.value) and not (tmp_path / "out.zarr").exists()
