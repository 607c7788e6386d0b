"""`manip data merge`: per-task stores → one store; shared keys kept, metadata kept, bad merges refused by name."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from manip.core.errors import ManipError
from manip.data.merge import merge
from manip.data.store import EpisodeStore
from tests.cli import manip
from tests.data.conftest import fill_store


def add_task_store(path, task: str, lengths, object_dim: int, seed: int) -> list[dict]:
    """A store like one task's demos: shared action/eef keys plus an ``object`` key of a task-specific size."""
    rng = np.random.default_rng(seed)
    store = EpisodeStore.create(path)
    episodes = []
    for i, n in enumerate(lengths):
        episode = {
            "action": rng.uniform(-1, 1, (n, 7)).astype(np.float32),
            "robot0_eef_pos": rng.normal(size=(n, 3)).astype(np.float32),
            "object": rng.normal(size=(n, object_dim)).astype(np.float32),
        }
        store.add_episode(episode, {"task": task, "instruction": f"do {task}", "seed": i, "success": True})
        episodes.append(episode)
    store.close()
    return episodes


def test_merge_copies_every_episode_with_its_metadata_and_drops_keys_that_differ(tmp_path):
    lift = add_task_store(tmp_path / "lift.zarr", "Lift", [5, 7], object_dim=10, seed=0)
    can = add_task_store(tmp_path / "can.zarr", "PickPlaceCan", [4], object_dim=14, seed=1)
    kept, dropped = merge([tmp_path / "lift.zarr", tmp_path / "can.zarr"], tmp_path / "all.zarr")
    assert kept == ["action", "robot0_eef_pos"] and dropped == ["object"]
    with EpisodeStore.open(tmp_path / "all.zarr") as out:
        assert out.keys == ["action", "robot0_eef_pos"]
        assert list(out.episode_lengths) == [5, 7, 4]
        for i, source_episode in enumerate([*lift, *can]):
            got = out.get_episode(i)
            for key in kept:
                np.testing.assert_array_equal(got[key], source_episode[key])
        metas = [out.episode_meta(i) for i in range(3)]
    assert [m["task"] for m in metas] == ["Lift", "Lift", "PickPlaceCan"]
    assert metas[2]["instruction"] == "do PickPlaceCan"
    assert metas[2]["merged_from"] == str(tmp_path / "can.zarr")


def test_demonstrations_merged_with_corrections_keep_the_corrections_phases(tmp_path):
    add_task_store(tmp_path / "demos.zarr", "Lift", [5, 3], object_dim=10, seed=0)
    store = EpisodeStore.create(tmp_path / "corr.zarr")
    phases = np.array([0, 0, 1, 1, 2, 2], np.int8)
    episode = {
        "action": np.zeros((6, 7), np.float32),
        "robot0_eef_pos": np.zeros((6, 3), np.float32),
        "object": np.zeros((6, 10), np.float32),
        "intervention": phases > 0,
        "phase": phases,
    }
    store.add_episode(episode, {"task": "Lift", "seed": 7, "success": False})
    store.set_attrs(control_rate=20.0, robot="panda")
    store.close()
    with EpisodeStore.open(tmp_path / "demos.zarr", mode="a") as demos:
        demos.set_attrs(control_rate=20.0, robot="ur5")
    for keys in (None, ["action", "phase", "intervention"]):
        out_path = tmp_path / f"all_{keys is None}.zarr"
        kept, dropped = merge([tmp_path / "demos.zarr", tmp_path / "corr.zarr"], out_path, keys=keys)
        assert "phase" in kept and "intervention" in kept and "phase" not in dropped
        with EpisodeStore.open(out_path) as out:
            np.testing.assert_array_equal(out.get_episode(2)["phase"], phases)
            np.testing.assert_array_equal(out.get_episode(2)["intervention"], phases > 0)
            demo = out.get_episode(0)
            assert demo["phase"].dtype == np.int8 and (demo["phase"] == -1).all() and len(demo["phase"]) == 5
            assert not out.get_episode(1)["intervention"].any()
            assert (
                out.attrs["control_rate"] == 20.0 and "robot" not in out.attrs
            )  # only what the sources share


def test_merging_merged_stores_and_only_flag_keys_and_other_phase_dtypes(tmp_path):
    add_task_store(tmp_path / "demos.zarr", "Lift", [4], object_dim=10, seed=0)
    for name, dtype in (("c16.zarr", np.int16), ("d16.zarr", np.int16)):
        store = EpisodeStore.create(tmp_path / name)
        episode = {
            "action": np.zeros((3, 7), np.float32),
            "robot0_eef_pos": np.zeros((3, 3), np.float32),
            "phase": np.array([0, 1, 2], dtype),
        }
        store.add_episode(episode, {"task": "Lift", "seed": 1, "success": False})
        store.close()
    kept, _ = merge([tmp_path / f for f in ("demos.zarr", "c16.zarr", "d16.zarr")], tmp_path / "a.zarr")
    assert "phase" in kept  # kept in the dtype the corrections use
    with EpisodeStore.open(tmp_path / "a.zarr") as out:
        assert out.get_episode(0)["phase"].dtype == np.int16 and (out.get_episode(0)["phase"] == -1).all()
    # merged stores with the same sources merged again: the merge records its own sources
    shutil.copytree(tmp_path / "a.zarr", tmp_path / "a2.zarr")
    merge([tmp_path / "a.zarr", tmp_path / "a2.zarr"], tmp_path / "c.zarr")
    with EpisodeStore.open(tmp_path / "c.zarr") as out:
        assert out.attrs["merged_from"] == [str(tmp_path / "a.zarr"), str(tmp_path / "a2.zarr")]
    # only flag keys requested: the demonstrations get them filled
    kept, _ = merge([tmp_path / "demos.zarr", tmp_path / "c16.zarr"], tmp_path / "p.zarr", keys=["phase"])
    with EpisodeStore.open(tmp_path / "p.zarr") as out:
        assert out.keys == ["phase"] and list(out.get_episode(0)["phase"]) == [-1] * 4


def test_merge_with_keys_refuses_a_key_that_differs_and_leaves_nothing_behind(tmp_path):
    add_task_store(tmp_path / "lift.zarr", "Lift", [3], object_dim=10, seed=0)
    add_task_store(tmp_path / "can.zarr", "PickPlaceCan", [3], object_dim=14, seed=1)
    with pytest.raises(ManipError, match=r"key 'object' differs between sources .*\(10,\).*\(14,\)"):
        merge(
            [tmp_path / "lift.zarr", tmp_path / "can.zarr"], tmp_path / "all.zarr", keys=["action", "object"]
        )
    with pytest.raises(ManipError, match=r"lift.zarr: has no key 'gripper'"):
        merge([tmp_path / "lift.zarr", tmp_path / "can.zarr"], tmp_path / "all.zarr", keys=["gripper"])
    assert not (tmp_path / "all.zarr").exists()
    with pytest.raises(ManipError, match="--keys names no key"):
        merge([tmp_path / "lift.zarr", tmp_path / "can.zarr"], tmp_path / "all.zarr", keys=[])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["can.zarr", "lift.zarr"]  # no staging left behind


def test_merge_cli_prints_a_summary_and_refuses_an_existing_output(tmp_path):
    fill_store(tmp_path / "a.zarr", [3, 4])
    fill_store(tmp_path / "b.zarr", [2], seed=1)
    ok = manip("data", "merge", tmp_path / "a.zarr", tmp_path / "b.zarr", "--out", tmp_path / "m.zarr")
    assert ok.returncode == 0, ok.stderr
    assert "3 episodes, 9 steps from 2 stores" in ok.stdout
    again = manip("data", "merge", tmp_path / "a.zarr", tmp_path / "b.zarr", "--out", tmp_path / "m.zarr")
    assert again.returncode != 0
    assert again.stderr.strip().count("\n") == 0 and "already exists" in again.stderr
    one = manip("data", "merge", tmp_path / "a.zarr", "--out", tmp_path / "n.zarr")
    assert one.returncode != 0 and "at least two source stores" in one.stderr
