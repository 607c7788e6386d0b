"""Test-time chunk selection: reward-free selectors on known candidates, one batched sampling pass per request."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from manip.core.errors import ManipError
from manip.policies.selection import coherence_scores, consensus_scores, density_scores, medoid_scores, pick


def constant_chunks(values, horizon=4, action_dim=2) -> torch.Tensor:
    """One row of candidates, candidate i filled with ``values[i]``: ``(1, N, H, A)``."""
    return torch.tensor(values, dtype=torch.float32)[None, :, None, None].expand(
        1, len(values), horizon, action_dim
    )


def test_medoid_is_the_candidate_closest_to_the_others():
    chunks = constant_chunks([0.0, 1.0, 2.0, 10.0, -8.0])
    chosen, index = pick(chunks, medoid_scores(chunks))
    assert index.tolist() == [1]
    assert torch.equal(chosen[0], chunks[0, 1])


def test_density_picks_inside_the_largest_cluster():
    chunks = constant_chunks([5.0, 0.0, 0.05, 0.1, 0.15, 5.1, 2.6])
    scores = density_scores(chunks)
    assert pick(chunks, scores)[1].item() in (1, 2, 3, 4)
    assert scores[0, 6] < scores[0, 2]  # a lone candidate scores below a clustered one


def test_rows_are_selected_independently():
    chunks = torch.cat(
        [constant_chunks([0.0, 5.0, 6.0, 7.0, 20.0]), constant_chunks([9.0, 2.9, 3.1, 3.0, 0.0])]
    )
    assert pick(chunks, medoid_scores(chunks))[1].tolist() == [2, 3]


def test_coherence_prefers_the_candidate_that_continues_the_previous_chunk():
    horizon = 6
    # step i of the previous chunk holds i
    previous = torch.arange(horizon, dtype=torch.float32)[None, :, None].expand(1, horizon, 2)
    shift = 2
    continuing = previous[:, shift:].clone()
    continuing = torch.cat([continuing, continuing[:, -1:].expand(1, shift, 2)], dim=1)  # 2,3,4,5,5,5
    # the consensus favours the cluster around 0.5; only one candidate continues the previous plan
    cluster = [torch.full((1, horizon, 2), v) for v in (0.4, 0.5, 0.6)]
    chunks = torch.stack([*cluster, continuing], dim=1)  # (1, 4, H, 2)
    assert pick(chunks, consensus_scores(chunks))[1].item() == 1
    assert torch.equal(coherence_scores(chunks, None, shift), consensus_scores(chunks))  # no previous chunk
    assert pick(chunks, coherence_scores(chunks, previous, shift))[1].item() == 3
    # nothing overlaps when the previous chunk is used up: the consensus alone decides
    assert pick(chunks, coherence_scores(chunks, previous, horizon))[1].item() == 1


def lift_policy(tmp_path, **sampling):
    from manip.policies import load_policy
    from manip.policies.sampling import with_sampling
    from tests.sim.tiny_checkpoint import lift_checkpoint

    base = lift_checkpoint(tmp_path / "base")
    return (
        load_policy(with_sampling(base, tmp_path / "selected", **sampling)) if sampling else load_policy(base)
    )


def observation(policy, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(size=(batch, policy.n_obs_steps, *policy.obs_spec[name].shape)).astype(np.float32)
        for name in policy.obs_spec.names
    }


def test_candidates_are_drawn_in_one_batched_pass_and_the_medoid_is_executed(tmp_path):
    policy = lift_policy(tmp_path, candidates=6, selector="medoid")
    calls = []
    sample = policy.head.sample

    def recording(backbone, cond, *args, **kwargs):
        out = sample(backbone, cond, *args, **kwargs)
        calls.append(out.clone())
        return out

    policy.head.sample = recording
    chunk = policy.predict_chunk(observation(policy), generator=torch.Generator().manual_seed(0))
    assert len(calls) == 1 and calls[0].shape[0] == 2 * 6  # one pass for every candidate of every row
    candidates = calls[0].view(2, 6, *calls[0].shape[1:])
    expected = pick(candidates, medoid_scores(candidates))[0]
    unnormalized = policy.normalizer.unnormalize({"action": expected})["action"].numpy()
    np.testing.assert_allclose(chunk, unnormalized, rtol=1e-5, atol=1e-6)
    spread = candidates.flatten(2).std(dim=1).mean()
    assert spread > 0  # the candidates really differ, so the choice matters


def test_coherence_continues_the_previous_choice_until_the_episode_restarts(tmp_path):
    policy = lift_policy(tmp_path, candidates=8, selector="coherence", coherence_shift=2)
    calls = []
    sample = policy.head.sample

    def recording(backbone, cond, *args, **kwargs):
        out = sample(backbone, cond, *args, **kwargs)
        calls.append(out.view(2, 8, *out.shape[1:]).clone())
        return out

    policy.head.sample = recording
    obs = observation(policy)
    normalized = lambda chunk: policy.normalizer.normalize({"action": torch.as_tensor(chunk)})["action"]  # noqa: E731
    first = normalized(policy.predict_chunk(obs, generator=torch.Generator().manual_seed(0)))
    np.testing.assert_allclose(first, pick(calls[0], consensus_scores(calls[0]))[0], atol=1e-5)
    second = normalized(policy.predict_chunk(obs, generator=torch.Generator().manual_seed(1)))
    expected = pick(calls[1], coherence_scores(calls[1], first, 2))[0]
    np.testing.assert_allclose(second, expected, atol=1e-5)
    by_consensus = pick(calls[1], consensus_scores(calls[1]))[0]
    assert not torch.allclose(expected, by_consensus)  # the previous chunk mattered
    policy.reset_sampling()  # a new episode: nothing to continue
    third = normalized(policy.predict_chunk(obs, generator=torch.Generator().manual_seed(1)))
    np.testing.assert_allclose(third, pick(calls[2], consensus_scores(calls[2]))[0], atol=1e-5)


def test_one_candidate_is_plain_sampling(tmp_path):
    policy = lift_policy(tmp_path)
    selected = lift_policy(tmp_path, candidates=1, selector="density")
    obs = observation(policy)
    a = policy.predict_chunk(obs, generator=torch.Generator().manual_seed(3))
    b = selected.predict_chunk(obs, generator=torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(a, b)


def test_noise_scale_sets_the_initial_noise_spread(tmp_path):
    obs = observation(lift_policy(tmp_path))
    draw = lambda policy, seed: policy.predict_chunk(obs, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    plain, unit, still = (
        lift_policy(tmp_path / n, **s)
        for n, s in [("p", {}), ("u", {"noise_scale": 1.0}), ("s", {"noise_scale": 0.0})]
    )
    np.testing.assert_array_equal(draw(plain, 3), draw(unit, 3))  # 1 samples as trained
    np.testing.assert_array_equal(draw(still, 3), draw(still, 4))  # 0: the noise's centre, whatever the draw
    assert np.abs(draw(plain, 3) - draw(plain, 4)).max() > 1e-4
    wide = lift_policy(tmp_path / "w", noise_scale=3.0)
    spread = lambda policy: np.std([draw(policy, seed) for seed in range(8)], axis=0).mean()  # noqa: E731
    assert spread(wide) > spread(plain)


def test_bad_sampling_settings_are_one_line_errors(tmp_path):
    with pytest.raises(ManipError, match="selector"):
        lift_policy(tmp_path, candidates=2, selector="best")
    policy = lift_policy(tmp_path, candidates=2, selector="critic")
    with pytest.raises(ManipError, match="critic"):
        policy.predict_chunk(observation(policy))
