"""Windows gathered from the store: straight from the shard files where the layout allows, else through zarr
reading each distinct step once, in runs of consecutive steps."""

from __future__ import annotations

import numpy as np
import pytest

from manip.core.errors import ManipError
from manip.data.sampler import MAX_RUN_STEPS, SequenceSampler
from manip.data.shard_reads import ShardFrameReader
from manip.data.store import EpisodeStore
from tests.data.conftest import fill_store


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    """Camera episodes of 1 to 150 steps (longer than one bounded read)."""
    path = tmp_path_factory.mktemp("runs") / "s.zarr"
    fill_store(path, [1, 7, 150, 9], image=True)
    return EpisodeStore.open(path)


class RecordingSampler(SequenceSampler):
    """A sampler that records the step ranges it reads from the store."""

    def __init__(self, *args, **kwargs):
        self.reads: list[tuple[str, int, int]] = []
        super().__init__(*args, **kwargs)

    def _read_frames(self, key, lo, hi):
        self.reads.append((key, lo, hi))
        return super()._read_frames(key, lo, hi)


def test_batch_from_store_reads_each_distinct_step_once_and_equals_memory(small_store):
    keys = ["action", "agentview_image"]
    args = (small_store, keys, 5, 2, 3)
    lazy = RecordingSampler(*args, first_k={"agentview_image": 2}, frame_memory_bytes=0, direct_reads=False)
    memory = SequenceSampler(*args, first_k={"agentview_image": 2})
    indices = np.random.default_rng(0).integers(0, len(lazy), 40)  # repeats and overlapping windows
    batch = lazy.sample_batch(indices)
    np.testing.assert_array_equal(batch["agentview_image"], memory.sample_batch(indices)["agentview_image"])
    read = [step for _, lo, hi in lazy.reads for step in range(lo, hi)]
    needed = np.unique(lazy.window_positions(indices, 2))
    assert sorted(read) == needed.tolist()  # every needed step exactly once
    runs = len(np.split(needed, np.flatnonzero(np.diff(needed) > 1) + 1))
    assert len(lazy.reads) == runs < 2 * len(indices)  # one read per run, not one per window


def test_long_runs_are_split_into_bounded_reads(small_store):
    lazy = RecordingSampler(
        small_store,
        ["agentview_image"],
        5,
        2,
        3,
        first_k={"agentview_image": 2},
        frame_memory_bytes=0,
        direct_reads=False,
    )
    memory = SequenceSampler(small_store, ["agentview_image"], 5, 2, 3, first_k={"agentview_image": 2})
    every = np.arange(len(lazy))
    expected = memory.sample_batch(every)["agentview_image"]
    np.testing.assert_array_equal(lazy.sample_batch(every)["agentview_image"], expected)
    assert all(hi - lo <= MAX_RUN_STEPS for _, lo, hi in lazy.reads)
    assert max(hi - lo for _, lo, hi in lazy.reads) == MAX_RUN_STEPS


def test_direct_shard_reads_equal_zarr_and_skip_zarr(small_store):
    keys = ["action", "agentview_image"]
    direct = RecordingSampler(
        small_store, keys, 5, 2, 3, first_k={"agentview_image": 2}, frame_memory_bytes=0
    )
    assert isinstance(direct._direct["agentview_image"], ShardFrameReader)
    memory = SequenceSampler(small_store, keys, 5, 2, 3, first_k={"agentview_image": 2})
    indices = np.random.default_rng(1).integers(0, len(direct), 64)
    np.testing.assert_array_equal(
        direct.sample_batch(indices)["agentview_image"], memory.sample_batch(indices)["agentview_image"]
    )
    assert direct.reads == []  # no zarr call for the frames


def test_zarr_v2_stores_are_read_through_zarr(tmp_path):
    path = tmp_path / "v2.zarr"
    fill_store(path, [6, 9], zarr_format=2, image=True)
    store = EpisodeStore.open(path)
    assert ShardFrameReader.for_array(store.array("agentview_image")) is None
    lazy = RecordingSampler(
        store, ["agentview_image"], 4, 2, 2, first_k={"agentview_image": 2}, frame_memory_bytes=0
    )
    memory = SequenceSampler(store, ["agentview_image"], 4, 2, 2, first_k={"agentview_image": 2})
    every = np.arange(len(lazy))
    np.testing.assert_array_equal(
        lazy.sample_batch(every)["agentview_image"], memory.sample_batch(every)["agentview_image"]
    )
    assert lazy.reads


def test_a_damaged_shard_falls_back_to_zarr_which_names_the_array(tmp_path):
    path = tmp_path / "damaged.zarr"
    fill_store(path, [20], image=True)
    shard = next(p for p in (path / "data" / "agentview_image" / "c").rglob("*") if p.is_file())
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    lazy = SequenceSampler(
        EpisodeStore.open(path),
        ["agentview_image"],
        4,
        2,
        2,
        first_k={"agentview_image": 2},
        frame_memory_bytes=0,
    )
    with pytest.raises(ManipError, match="agentview_image"):
        lazy.sample_batch(np.arange(len(lazy)))
