"""SequenceSampler and ChunkDataset: Diffusion Policy's padding, checked against a naive reference (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manip.core.errors import ManipError
from manip.data.sampler import SequenceSampler, build_indices
from manip.data.store import EpisodeStore
from tests.data.conftest import fill_store


def naive_indices(episode_ends, sequence_length, pad_before, pad_after, episode_mask):
    """Diffusion Policy's create_indices, loop for loop."""
    pad_before = min(max(pad_before, 0), sequence_length - 1)
    pad_after = min(max(pad_after, 0), sequence_length - 1)
    rows = []
    for i in range(len(episode_ends)):
        if not episode_mask[i]:
            continue
        start = 0 if i == 0 else episode_ends[i - 1]
        length = episode_ends[i] - start
        for idx in range(-pad_before, length - sequence_length + pad_after + 1):
            buffer_start = max(idx, 0) + start
            buffer_end = min(idx + sequence_length, length) + start
            start_offset = buffer_start - (idx + start)
            end_offset = (idx + sequence_length + start) - buffer_end
            rows.append([buffer_start, buffer_end, start_offset, sequence_length - end_offset])
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def naive_window(array, row, sequence_length):
    """Diffusion Policy's sample_sequence for one key: copy, then repeat the edge steps."""
    buffer_start, buffer_end, sample_start, sample_end = row
    sample = array[buffer_start:buffer_end]
    out = np.zeros((sequence_length, *array.shape[1:]), dtype=array.dtype)
    out[:sample_start] = sample[0]
    out[sample_end:] = sample[-1]
    out[sample_start:sample_end] = sample
    return out


lengths_strategy = st.lists(st.integers(1, 12), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(
    lengths=lengths_strategy,
    sequence_length=st.integers(1, 10),
    pad_before=st.integers(-1, 10),
    pad_after=st.integers(-1, 10),
    mask_bits=st.integers(0, 63),
)
def test_vectorized_indices_match_reference(lengths, sequence_length, pad_before, pad_after, mask_bits):
    ends = np.cumsum(lengths)
    mask = np.array([(mask_bits >> i) & 1 for i in range(len(lengths))], bool)
    got = build_indices(ends, sequence_length, pad_before, pad_after, mask)
    np.testing.assert_array_equal(got, naive_indices(ends, sequence_length, pad_before, pad_after, mask))


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("sampler") / "s.zarr"
    fill_store(path, [1, 4, 7, 2, 9], image=True)
    return EpisodeStore.open(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    horizon=st.integers(1, 8),
    n_obs_steps=st.integers(1, 3),
    n_action_steps=st.integers(1, 8),
    n_latency_steps=st.integers(0, 2),
    data=st.data(),
)
def test_windows_match_reference(small_store, horizon, n_obs_steps, n_action_steps, n_latency_steps, data):
    n_obs_steps = min(n_obs_steps, horizon)
    keys = ["action", "agentview_image", "robot0_eef_pos"]
    sampler = SequenceSampler(small_store, keys, horizon, n_obs_steps, n_action_steps, n_latency_steps)
    seq = horizon + n_latency_steps
    assert sampler.pad_before == n_obs_steps - 1 + n_latency_steps
    assert sampler.pad_after == n_action_steps - 1
    ref = naive_indices(small_store.episode_ends, seq, sampler.pad_before, sampler.pad_after, [True] * 5)
    np.testing.assert_array_equal(sampler.indices, ref)
    if len(sampler) == 0:
        return
    i = data.draw(st.integers(0, len(sampler) - 1))
    window = sampler.sample(i)
    for key in keys:
        expected = naive_window(small_store.array(key)[:], ref[i], seq)
        np.testing.assert_array_equal(window[key], expected)


def test_first_k_reads_only_the_observation_steps(small_store):
    sampler = SequenceSampler(
        small_store, ["action", "agentview_image"], 6, 2, 4, first_k={"agentview_image": 2}
    )
    full = SequenceSampler(small_store, ["agentview_image"], 6, 2, 4)
    for i in range(len(sampler)):
        window = sampler.sample(i)
        assert window["agentview_image"].shape == (2, 84, 84, 3) and window["action"].shape == (6, 7)
        np.testing.assert_array_equal(window["agentview_image"], full.sample(i)["agentview_image"][:2])


def test_padding_repeats_edges_and_never_crosses_episodes(small_store):
    sampler = SequenceSampler(small_store, ["action"], horizon=4, n_obs_steps=2, n_action_steps=3)
    episode = small_store.get_episode(1)["action"]  # 4 steps at buffer 1..4
    first = next(i for i, row in enumerate(sampler.indices) if row[0] == 1)
    window = sampler.sample(first)["action"]
    np.testing.assert_array_equal(window[0], episode[0])  # pad_before = 1: first step repeated
    np.testing.assert_array_equal(window[1:4], episode[:3])
    last = max(i for i, row in enumerate(sampler.indices) if row[1] == 5)
    np.testing.assert_array_equal(sampler.sample(last)["action"][-1], episode[-1])


def test_bad_sampler_arguments(small_store):
    with pytest.raises(ManipError, match="horizon"):
        SequenceSampler(small_store, ["action"], 0, 1, 1)
    with pytest.raises(ManipError, match="no key"):
        SequenceSampler(small_store, ["nope"], 4, 1, 1)
    with pytest.raises(ManipError, match="out of range"):
        SequenceSampler(small_store, ["action"], 4, 1, 1).sample(10_000)
    with pytest.raises(ManipError, match="episode_mask"):
        SequenceSampler(small_store, ["action"], 4, 1, 1, episode_mask=np.ones(2, bool))


def test_chunk_dataset_items_and_seeded_split(small_store):
    torch = pytest.importorskip("torch")
    from manip.data.dataset import ChunkDataset

    kwargs = dict(obs_keys=["robot0_eef_pos", "agentview_image"], horizon=8, n_obs_steps=2, n_action_steps=4)
    train = ChunkDataset(small_store, **kwargs, val_ratio=0.4, seed=3)
    val = train.get_validation_dataset()
    assert set(train.episodes).isdisjoint(val.episodes)
    assert sorted([*train.episodes, *val.episodes]) == list(range(5)) and len(val.episodes) == 2
    again = ChunkDataset(small_store, **kwargs, val_ratio=0.4, seed=3)
    assert list(again.episodes) == list(train.episodes)
    item = train[0]
    assert item["obs"]["agentview_image"].dtype == torch.uint8
    assert item["obs"]["agentview_image"].shape == (2, 84, 84, 3)
    assert item["obs"]["robot0_eef_pos"].shape == (2, 3) and item["action"].shape == (8, 7)
    loader = torch.utils.data.DataLoader(train, batch_size=4)
    batch = next(iter(loader))
    assert batch["action"].shape == (4, 8, 7) and batch["obs"]["robot0_eef_pos"].shape == (4, 2, 3)


def test_chunk_dataset_latency_shifts_actions(small_store):
    pytest.importorskip("torch")
    from manip.data.dataset import ChunkDataset

    ds = ChunkDataset(
        small_store, ["robot0_eef_pos"], horizon=3, n_obs_steps=1, n_action_steps=1, n_latency_steps=2
    )
    row = ds.sampler.indices[0]
    actions = small_store.array("action")[:]
    obs = small_store.array("robot0_eef_pos")[:]
    window_a = naive_window(actions, row, 5)
    window_o = naive_window(obs, row, 5)
    np.testing.assert_array_equal(ds[0]["action"].numpy(), window_a[2:5])
    np.testing.assert_array_equal(ds[0]["obs"]["robot0_eef_pos"].numpy(), window_o[:1])


@pytest.mark.parametrize("frame_memory_bytes", [0, 1 << 30])
def test_sample_batch_equals_single_windows_in_memory_and_lazy(small_store, frame_memory_bytes):
    keys = ["action", "agentview_image"]
    sampler = SequenceSampler(
        small_store, keys, 5, 2, 3, first_k={"agentview_image": 2}, frame_memory_bytes=frame_memory_bytes
    )
    assert sampler.frames_in_memory == bool(frame_memory_bytes)
    indices = np.arange(len(sampler))[::-1]
    batch = sampler.sample_batch(indices)
    ref = naive_indices(small_store.episode_ends, 5, 1, 2, [True] * 5)
    for j, i in enumerate(indices):
        np.testing.assert_array_equal(
            batch["action"][j], naive_window(small_store.array("action")[:], ref[i], 5)
        )
        image = naive_window(small_store.array("agentview_image")[:], ref[i], 5)[:2]
        np.testing.assert_array_equal(batch["agentview_image"][j], image)
        np.testing.assert_array_equal(sampler.sample(int(i))["agentview_image"], image)


def test_chunk_dataset_frame_memory_bytes_reaches_its_sampler_and_its_validation_split(small_store):
    from manip.data.dataset import ChunkDataset

    keys = ["agentview_image"]
    lazy = ChunkDataset(small_store, keys, 5, 2, 3, val_ratio=0.4, frame_memory_bytes=0)
    eager = ChunkDataset(small_store, keys, 5, 2, 3, val_ratio=0.4)
    assert not lazy.sampler.frames_in_memory and eager.sampler.frames_in_memory
    assert not lazy.get_validation_dataset().sampler.frames_in_memory
    for i in (0, len(lazy) - 1):
        np.testing.assert_array_equal(lazy[i]["obs"]["agentview_image"], eager[i]["obs"]["agentview_image"])
