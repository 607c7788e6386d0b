"""Training on corrections: intervention flags turn into sampling weights that change what batches hold."""

from __future__ import annotations

import numpy as np
import pytest

from manip.core.errors import ManipError
from manip.data.dataset import ChunkDataset
from manip.data.store import EpisodeStore
from tests.policies.conftest import OBS_KEYS, write_store


def store_with_corrections(path, corrected_steps=(10, 24), recovery_steps=0, phases=True):
    """The tiny store's 6 episodes (no step flagged) plus a copy of the first with ``corrected_steps`` flagged; every
    step has a ``phase`` (-1 in the demonstrations; policy 0, recovery 1, correction 2; none with ``phases=False``),
    the first ``recovery_steps`` flagged ones recovery."""
    plain = EpisodeStore.open(write_store(path.with_name("plain.zarr")))
    store = EpisodeStore.create(path)
    keys = [*OBS_KEYS, "action"]
    for i in range(plain.num_episodes):
        episode = plain.get_episode(i, keys)
        steps = len(episode["action"])
        phase = {"phase": np.full(steps, -1, np.int8)} if phases else {}  # as merged demonstrations have
        store.add_episode({**episode, "intervention": np.zeros(steps, bool), **phase}, plain.episode_meta(i))
    episode = plain.get_episode(0, keys)
    flags = np.zeros(len(episode["action"]), bool)
    flags[corrected_steps[0] : corrected_steps[1]] = True
    steps_phase = np.where(flags, 2, 0).astype(np.int8)
    steps_phase[corrected_steps[0] : corrected_steps[0] + recovery_steps] = 1
    phase = {"phase": steps_phase} if phases else {}
    store.add_episode(
        {**episode, "intervention": flags, **phase}, {"success": True, "seed": 99, "task": "Lift"}
    )
    return path


def raw_config(store, **data):
    from tests.policies.conftest import _tiny_train_raw

    raw = _tiny_train_raw(store)
    raw["data"].update(data)
    return raw


def flagged_share(dataset, weights, draws=4000):
    from manip.data.interventions import intervention_windows
    from manip.policies.trainer import StepBatchSampler

    flagged = intervention_windows(dataset.store, dataset.window_steps())
    sampler = StepBatchSampler(len(dataset), draws, seed=0, start=0, weights=weights)
    return flagged[sampler.batch(0)].mean(), flagged.mean()


def test_intervention_weight_raises_the_share_of_corrected_windows(tmp_path):
    from manip.policies.train_config import TrainConfig
    from manip.policies.training import intervention_sampling

    path = store_with_corrections(tmp_path / "c.zarr")
    config = TrainConfig(**raw_config(path, intervention_weight=5.0))
    dataset = ChunkDataset(path, OBS_KEYS, 8, 2, 4)
    weights = intervention_sampling(dataset, config, quiet=True)
    drawn, uniform = flagged_share(dataset, weights)
    assert 0.02 < uniform < 0.2
    expected = 5 * uniform / (5 * uniform + (1 - uniform))
    assert drawn == pytest.approx(expected, abs=0.03)  # the sampled batches follow the weights
    only = intervention_sampling(
        dataset, TrainConfig(**raw_config(path, only_interventions=True)), quiet=True
    )
    assert flagged_share(dataset, only)[0] == 1.0


def test_windows_are_flagged_by_the_steps_they_cover(tmp_path):
    from manip.data.interventions import intervention_windows

    path = store_with_corrections(tmp_path / "c.zarr", corrected_steps=(20, 21))
    dataset = ChunkDataset(path, OBS_KEYS, 8, 2, 4)
    steps = dataset.window_steps()
    flagged = intervention_windows(dataset.store, steps)
    start = int(dataset.store.episode_ends[-2])
    covering = (steps[:, 0] <= start + 20) & (steps[:, 1] > start + 20)
    np.testing.assert_array_equal(flagged, covering)


def test_training_runs_with_intervention_weights(tmp_path):
    from manip.policies.train_config import TrainConfig
    from manip.policies.training import run_training

    path = store_with_corrections(tmp_path / "c.zarr")
    checkpoint = run_training(
        TrainConfig(**raw_config(path, intervention_weight=3.0)), tmp_path / "run", quiet=True
    )
    assert (checkpoint / "model.safetensors").is_file()


def test_weights_need_flags(tmp_path, tiny_store):
    from manip.policies.train_config import TrainConfig
    from manip.policies.training import intervention_sampling

    dataset = ChunkDataset(tiny_store, OBS_KEYS, 8, 2, 4)
    config = TrainConfig(**raw_config(tiny_store, intervention_weight=2.0))
    with pytest.raises(ManipError, match="intervention"):
        intervention_sampling(dataset, config, quiet=True)


def test_drop_policy_steps_skips_the_policy_driving_in_corrected_episodes_only(tmp_path):
    from manip.policies.train_config import TrainConfig
    from manip.policies.training import intervention_sampling

    path = store_with_corrections(tmp_path / "c.zarr", corrected_steps=(14, 20))
    dataset = ChunkDataset(path, OBS_KEYS, 8, 2, 4)
    config = TrainConfig(**raw_config(path, drop_policy_steps=True))
    weights = intervention_sampling(dataset, config, quiet=True)
    episodes = dataset.window_episodes()
    corrected = episodes == dataset.store.num_episodes - 1
    steps = dataset.window_steps() - int(dataset.store.episode_ends[-2])
    before_takeover = corrected & (steps[:, 1] <= 14)  # windows that end before the first flagged step
    assert before_takeover.any() and (weights[before_takeover] == 0).all()
    assert (weights[corrected & ~before_takeover] > 0).all()  # the windows covering the correction stay
    plain = weights[~corrected]
    assert (plain > 0).all() and np.allclose(plain, plain[0])  # demonstrations are drawn as usual


def test_drop_recovery_steps_skips_the_windows_covering_the_rewind(tmp_path):
    from manip.policies.train_config import TrainConfig
    from manip.policies.training import intervention_sampling

    path = store_with_corrections(tmp_path / "c.zarr", corrected_steps=(14, 30), recovery_steps=5)
    dataset = ChunkDataset(path, OBS_KEYS, 8, 2, 4)
    steps = dataset.window_steps() - int(dataset.store.episode_ends[-2])
    corrected = dataset.window_episodes() == dataset.store.num_episodes - 1
    covers_recovery = corrected & (steps[:, 0] < 19) & (steps[:, 1] > 14)
    after_recovery = corrected & (steps[:, 0] >= 19) & (steps[:, 0] < 30)
    config = TrainConfig(**raw_config(path, drop_recovery_steps=True, intervention_weight=3.0))
    weights = intervention_sampling(dataset, config, quiet=True)
    assert covers_recovery.any() and (weights[covers_recovery] == 0).all()
    assert after_recovery.any() and (weights[after_recovery] > 0).all()  # the correction itself stays
    assert (weights[~corrected] > 0).all()
    both = TrainConfig(**raw_config(path, drop_recovery_steps=True, drop_policy_steps=True))
    kept = intervention_sampling(dataset, both, quiet=True)[corrected] > 0
    np.testing.assert_array_equal(
        kept, after_recovery[corrected]
    )  # only windows within the correction remain


def test_drop_recovery_steps_needs_phases_and_a_window_left(tmp_path):
    from manip.policies.train_config import TrainConfig
    from manip.policies.training import intervention_sampling

    path = store_with_corrections(tmp_path / "c.zarr", corrected_steps=(14, 30), recovery_steps=16)
    dataset = ChunkDataset(path, OBS_KEYS, 8, 2, 4)
    config = TrainConfig(**raw_config(path, drop_recovery_steps=True, only_interventions=True))
    with pytest.raises(ManipError, match="no training window"):
        intervention_sampling(dataset, config, quiet=True)
    (tmp_path / "older").mkdir()
    without_phases = store_with_corrections(tmp_path / "older" / "c.zarr", phases=False)
    dataset = ChunkDataset(without_phases, OBS_KEYS, 8, 2, 4)
    config = TrainConfig(**raw_config(without_phases, drop_recovery_steps=True))
    with pytest.raises(ManipError, match="no 'phase' steps"):
        intervention_sampling(dataset, config, quiet=True)
