"""robomimic files converted faithfully: filter keys (training's data.filter_key, listed by info), dtype promotion,
0/1 success, demo names in errors, num_samples checked, extra groups reported; stores needing a missing codec or
zipped inside a folder get a one-line hint."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from manip.core.errors import ManipError
from manip.data.converters import convert
from manip.data.dataset import ChunkDataset
from manip.data.store import EpisodeStore
from tests.cli import manip
from tests.data.conftest import make_episode, write_dp_v2_store, zip_store
from tests.data.test_convert import write_robomimic

ROOT = Path(__file__).resolve().parents[2]


def with_masks(path: Path, lengths=(4, 5, 3, 6)) -> None:
    write_robomimic(path, list(lengths))
    with h5py.File(path, "a") as f:
        del f["mask"]
        f.create_dataset("mask/train", data=np.array([b"demo_0", b"demo_1", b"demo_3"]))
        f.create_dataset("mask/valid", data=np.array([b"demo_2"]))
        f.create_dataset("mask/20_percent", data=np.array([b"demo_3"]))


def test_filter_key_selects_the_demos_of_the_mask_for_training(tmp_path):
    with_masks(tmp_path / "d.hdf5")
    convert(tmp_path / "d.hdf5", tmp_path / "d.zarr")
    keys = ["robot0_eef_pos"]
    assert ChunkDataset(tmp_path / "d.zarr", keys, 4, 2, 2, filter_key="train").episodes.tolist() == [0, 1, 3]
    assert ChunkDataset(tmp_path / "d.zarr", keys, 4, 2, 2, filter_key="20_percent").episodes.tolist() == [3]
    assert ChunkDataset(tmp_path / "d.zarr", keys, 4, 2, 2).episodes.tolist() == [0, 1, 2, 3]
    with pytest.raises(ManipError, match=r"data\.filter_key 'nope': .*filter keys: 20_percent, train, valid"):
        ChunkDataset(tmp_path / "d.zarr", keys, 4, 2, 2, filter_key="nope")


def test_training_config_data_filter_key_reaches_the_dataset(tmp_path):
    from manip.policies.train_config import load_train_config
    from manip.policies.training import build_policy_and_dataset

    with_masks(tmp_path / "d.hdf5")
    convert(tmp_path / "d.hdf5", tmp_path / "d.zarr")
    overrides = [
        f"data.path={tmp_path / 'd.zarr'}",
        "data.filter_key=valid",
        "policy.obs_keys=[robot0_eef_pos,object]",
    ]
    config = load_train_config(ROOT / "configs/lift_lowdim_diffusion.yaml", overrides)
    assert config.data.filter_key == "valid"
    _policy, dataset = build_policy_and_dataset(config)
    inner = getattr(dataset, "dataset", dataset)
    assert inner.episodes.tolist() == [2]


def test_info_lists_filter_keys(tmp_path):
    with_masks(tmp_path / "d.hdf5")
    convert(tmp_path / "d.hdf5", tmp_path / "d.zarr")
    result = manip("data", "info", tmp_path / "d.zarr")
    assert result.returncode == 0, result.stderr
    assert (
        "filter keys (data.filter_key): 20_percent (1 demos), train (3 demos), valid (1 demos)"
        in result.stdout
    )
    info = json.loads(manip("data", "info", tmp_path / "d.zarr", "--json").stdout)
    assert info["filter_keys"] == {"train": 3, "valid": 1, "20_percent": 1} and info["num_episodes"] == 4


def test_mixed_float_dtypes_are_promoted_not_downcast(tmp_path):
    path = tmp_path / "mixed.hdf5"
    demos = write_robomimic(path, [3, 4, 2])
    with h5py.File(path, "a") as f:  # demo_0 stores actions as float32, the rest float64
        del f["data/demo_0/actions"]
        f["data/demo_0/actions"] = demos["demo_0"]["actions"].astype(np.float32)
        del f["data/demo_1/obs/object"]
        f["data/demo_1/obs/object"] = demos["demo_1"]["obs"]["object"].astype(np.float64) + 1e-12
    convert(path, tmp_path / "m.zarr")
    store = EpisodeStore.open(tmp_path / "m.zarr")
    assert store.step_spec("action")[1] == np.float64 and store.step_spec("object")[1] == np.float64
    np.testing.assert_array_equal(store.get_episode(2)["action"], demos["demo_2"]["actions"])
    np.testing.assert_array_equal(
        store.get_episode(1)["object"], demos["demo_1"]["obs"]["object"].astype(np.float64) + 1e-12
    )


def test_integer_success_is_accepted_and_other_values_name_the_demo(tmp_path):
    path = tmp_path / "s.hdf5"
    write_robomimic(path, [3, 4, 2])
    with h5py.File(path, "a") as f:
        f["data/demo_0"].attrs["success"] = np.int64(1)
        f["data/demo_1"].attrs["success"] = 0
    convert(path, tmp_path / "s.zarr")
    assert EpisodeStore.open(tmp_path / "s.zarr").episode_success == [True, False, None]
    with h5py.File(path, "a") as f:
        f["data/demo_2"].attrs["success"] = 3
    result = manip("data", "convert", path, tmp_path / "bad.zarr")
    assert result.returncode != 0 and result.stderr.count("\n") == 1
    assert "data/demo_2: success is 3" in result.stderr and not (tmp_path / "bad.zarr").exists()


def test_store_errors_name_the_demo_not_an_episode_number(tmp_path):
    path = tmp_path / "shape.hdf5"
    demos = write_robomimic(path, [3, 4, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    with h5py.File(path, "a") as f:
        del f["data/demo_12/obs/object"]
        f["data/demo_12/obs/object"] = demos["demo_12"]["obs"]["object"][:, :4]
    result = manip("data", "convert", path, tmp_path / "x.zarr")
    assert result.returncode != 0 and result.stderr.count("\n") == 1
    assert "data/demo_12: 'object' has per-step shape (4,), store has (10,)" in result.stderr, result.stderr
    assert "episode 12" not in result.stderr and not (tmp_path / "x.zarr").exists()


def test_num_samples_disagreeing_with_the_arrays_is_an_error(tmp_path):
    path = tmp_path / "n.hdf5"
    write_robomimic(path, [3, 4])
    with h5py.File(path, "a") as f:
        f["data/demo_1"].attrs["num_samples"] = 7
    with pytest.raises(ManipError, match=r"data/demo_1: num_samples is 7 but the arrays have 4 steps"):
        convert(path, tmp_path / "n.zarr")
    assert not (tmp_path / "n.zarr").exists()


def test_unknown_groups_such_as_datagen_info_are_reported_in_one_line(tmp_path):
    path = tmp_path / "mimicgen.hdf5"
    write_robomimic(path, [3, 4])
    with h5py.File(path, "a") as f:
        for i, n in ((0, 3), (1, 4)):
            f[f"data/demo_{i}/datagen_info/object_poses/cube"] = np.zeros((n, 4, 4))
            f[f"data/demo_{i}/datagen_info/subtask_term_signals/grasp"] = np.zeros(n, np.int64)
    result = manip("data", "convert", path, tmp_path / "m.zarr")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "note: not copied (not per-step observations): datagen_info/"
    store = EpisodeStore.open(tmp_path / "m.zarr")
    assert store.attrs["skipped_groups"] == ["datagen_info"] and "object_poses" not in store.keys


def _store_needing_zfpy(path: Path) -> None:
    write_dp_v2_store(path, [make_episode(np.random.default_rng(0), n, image=True) for n in (4, 6)])
    zarray = path / "data/agentview_image/.zarray"
    meta = json.loads(zarray.read_text())
    meta["compressor"] = {"id": "zfpy", "mode": 4, "tolerance": -1, "rate": -1, "precision": -1}
    zarray.write_text(json.dumps(meta))


def test_missing_codec_names_it_with_an_install_hint_and_info_shows_the_readable_keys(tmp_path):
    pytest.importorskip("numcodecs")
    try:
        import zfpy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.fail("this test needs an environment without zfpy")
    path = tmp_path / "dp.zarr"
    _store_needing_zfpy(path)
    result = manip("data", "validate", path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    result = manip("data", "convert", path, tmp_path / "out.zarr")
    assert result.returncode != 0 and result.stderr.count("\n") == 1
    assert (
        "agentview_image: needs the codec zfpy, which this environment lacks: pip install zfpy"
        in result.stderr
    )
    assert "'zfpy'" not in result.stderr and not (tmp_path / "out.zarr").exists()
    result = manip("data", "info", path)
    assert result.returncode == 0, result.stderr
    assert "action" in result.stdout and "robot0_eef_pos" in result.stdout
    assert "agentview_image  unreadable: needs the codec zfpy" in result.stdout
    info = json.loads(manip("data", "info", path, "--json").stdout)
    assert sorted(info["keys"]) == ["action", "robot0_eef_pos"] and list(info["unreadable_keys"]) == [
        "agentview_image"
    ]
    assert info["episode_lengths"] == [4, 6]


def test_zip_wrapping_the_store_in_a_folder_gets_a_hint(tmp_path):
    write_dp_v2_store(tmp_path / "inner" / "dp.zarr", [make_episode(np.random.default_rng(0), 3)])
    zip_store(tmp_path / "inner", tmp_path / "wrapped.zarr.zip")
    result = manip("data", "info", tmp_path / "wrapped.zarr.zip")
    assert result.returncode != 0 and result.stderr.count("\n") == 1
    assert "the zip holds the store in the folder 'dp.zarr/'" in result.stderr
    zip_store(tmp_path / "inner" / "dp.zarr", tmp_path / "flat.zarr.zip")
    assert manip("data", "info", tmp_path / "flat.zarr.zip").returncode == 0
