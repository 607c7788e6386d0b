"""The steered policy: a frozen base + a noise actor, saved and loaded like any checkpoint; SAC updates."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from manip.core.errors import ManipError


@pytest.fixture
def base_checkpoint(tmp_path):
    from tests.sim.tiny_checkpoint import lift_checkpoint

    return lift_checkpoint(tmp_path / "base")


def steered(base_checkpoint, variant="sac", **settings):
    from manip.sim.steer.loop import SteerSettings, build_steered_policy

    return build_steered_policy(
        base_checkpoint, SteerSettings(env_steps=1, variant=variant, hidden=(32,), **settings)
    )


def observation(policy, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(size=(batch, policy.n_obs_steps, *policy.obs_spec[name].shape)).astype(np.float32)
        for name in policy.obs_spec.names
    }


def push_actor_away_from_zero(policy):
    with torch.no_grad():
        policy.actor.net[-1].bias[: policy.actor.dim] = 1.0


def test_noise_argument_drives_sampling(base_checkpoint):
    from manip.policies import load_policy

    policy = load_policy(base_checkpoint)
    cond = torch.randn(2, policy.encoder.cond_dim)
    noise = torch.randn(2, policy.horizon, policy.action_dim)
    a = policy.head.sample(policy.backbone, cond, policy.horizon, policy.action_dim, noise=noise)
    b = policy.head.sample(policy.backbone, cond, policy.horizon, policy.action_dim, noise=noise.clone())
    c = policy.head.sample(policy.backbone, cond, policy.horizon, policy.action_dim, noise=-noise)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    with pytest.raises(ManipError, match="noise has shape"):
        policy.head.sample(policy.backbone, cond, policy.horizon, policy.action_dim, noise=noise[:, :3])


def test_steered_checkpoint_round_trips_and_steers_the_base(base_checkpoint, tmp_path):
    from manip.policies import load_policy
    from manip.policies.steering.policy import SteeredPolicy

    policy = steered(base_checkpoint).eval()
    push_actor_away_from_zero(policy)
    obs = observation(policy)
    expected = policy.predict_chunk(obs, generator=torch.Generator().manual_seed(7))
    policy.save_pretrained(tmp_path / "steered")
    loaded = load_policy(tmp_path / "steered")
    assert isinstance(loaded, SteeredPolicy) and loaded.config.base_checkpoint.startswith("base@")
    again = loaded.predict_chunk(obs, generator=torch.Generator().manual_seed(7))
    np.testing.assert_array_equal(again, expected)  # the same actor draws for the same generator
    base = load_policy(base_checkpoint)
    assert np.abs(base.predict_chunk(obs, generator=torch.Generator().manual_seed(7)) - expected).max() > 1e-3
    # exactly the base head run on the actor's noise
    with torch.no_grad():
        cond = base.encode(base.prepare_obs({k: torch.from_numpy(v) for k, v in obs.items()}))
        noise = loaded.actor.sample(cond, torch.Generator().manual_seed(7))[0]
        manual = base.head.sample(base.backbone, cond, base.horizon, base.action_dim, noise=noise)
    manual = base.normalizer.unnormalize({"action": manual})["action"].numpy()
    np.testing.assert_allclose(expected, manual, rtol=1e-5, atol=1e-6)


def test_mode_deployment_is_deterministic(base_checkpoint):
    policy = steered(base_checkpoint, deploy="mode").eval()
    push_actor_away_from_zero(policy)
    obs = observation(policy)
    np.testing.assert_array_equal(policy.predict_chunk(obs), policy.predict_chunk(obs))
    with torch.no_grad():
        cond = policy.encode(policy.prepare_obs({k: torch.from_numpy(v) for k, v in obs.items()}))
        assert torch.allclose(policy.initial_noise(cond), policy.actor.mode(cond))


def test_critic_selects_among_actor_candidates(base_checkpoint, tmp_path):
    from manip.policies import load_policy
    from manip.policies.sampling import with_sampling

    steered(base_checkpoint).save_pretrained(tmp_path / "steered")
    policy = load_policy(with_sampling(tmp_path / "steered", tmp_path / "picked", candidates=5))
    calls = []
    values = policy.noise_values

    def recording(cond, noise):
        out = values(cond, noise)
        calls.append((noise.clone(), out.clone()))
        return out

    policy.noise_values = recording
    obs = observation(policy)
    chunk = policy.predict_chunk(obs, generator=torch.Generator().manual_seed(0))
    ((noise, scores),) = calls
    assert noise.shape[0] == 2 * 5 and torch.unique(noise.flatten(1), dim=0).shape[0] == 10
    best = noise.view(2, 5, *noise.shape[1:])[torch.arange(2), scores.view(2, 5).argmax(dim=1)]
    with torch.no_grad():
        cond = policy.encode(policy.prepare_obs({k: torch.from_numpy(v) for k, v in obs.items()}))
        expected = policy.chunks_from_noise(cond, best)
    expected = policy.normalizer.unnormalize({"action": expected})["action"].numpy()
    np.testing.assert_allclose(chunk, expected, rtol=1e-5, atol=1e-6)  # the highest-valued candidate ran


@pytest.mark.parametrize("variant", ["sac", "na"])
def test_sac_updates_the_actor_and_critics(base_checkpoint, variant):
    from manip.policies.steering.sac import NoiseSAC, ReplayBuffer, SACConfig

    torch.manual_seed(0)
    policy = steered(base_checkpoint, variant)
    sac = NoiseSAC(policy, SACConfig(batch_size=8))
    replay = ReplayBuffer(32, policy.state_dim, policy.actor.dim)
    rng = np.random.default_rng(0)
    for i in range(16):
        replay.add(
            rng.normal(size=policy.state_dim), rng.normal(size=policy.actor.dim), rng.normal(size=policy.actor.dim),
            float(i % 4 == 0), rng.normal(size=policy.state_dim), i % 4 == 0,
        )  # fmt: skip
    before = {name: p.detach().clone() for name, p in policy.named_parameters()}
    metrics = sac.update(replay)
    assert all(np.isfinite(v) for v in metrics.values())
    changed = {
        name.split(".")[0] for name, p in policy.named_parameters() if not torch.equal(p, before[name])
    }
    assert {"actor", "critic"} <= changed and "base" not in changed
    assert ("action_critic" in changed) == (variant == "na")


@pytest.mark.parametrize("variant", ["sac", "na"])
@pytest.mark.parametrize("entropy_backup", [False, True])
def test_td_target_backs_up_the_entropy_bonus_only_when_asked(base_checkpoint, entropy_backup, variant):
    from manip.policies.steering.sac import NoiseSAC, SACConfig

    torch.manual_seed(0)
    policy = steered(base_checkpoint, variant)
    sac = NoiseSAC(policy, SACConfig(entropy_backup=entropy_backup, gamma=0.5))
    state = torch.randn(4, policy.state_dim)
    batch = {"reward": torch.tensor([0.0, 1.0, 0.0, 1.0]), "done": torch.tensor([0.0, 0.0, 1.0, 1.0]),
             "next_state": state}  # fmt: skip
    torch.manual_seed(1)
    targets = sac.td_targets(batch)
    torch.manual_seed(1)
    next_noise, next_logp = policy.actor.sample(state)
    with torch.no_grad():
        next_input = policy.chunks_from_noise(state, next_noise).flatten(1) if variant == "na" else next_noise
        next_q = sac.td_target(state, next_input).min(dim=-1).values
    bonus = -sac.alpha.detach() * next_logp if entropy_backup else torch.zeros(4)
    expected = batch["reward"] + 0.5 * (1 - batch["done"]) * (next_q + bonus)
    torch.testing.assert_close(targets, expected)
    assert torch.equal(targets[2:], batch["reward"][2:])  # a success ends the episode: nothing is backed up
    assert bool((bonus.abs() > 1e-3).all()) == entropy_backup


def test_the_chunk_critic_is_left_out_for_running_and_kept_for_training(base_checkpoint, tmp_path):
    import json

    from manip.policies import load_policy
    from manip.policies.steering.sac import NoiseSAC, SACConfig

    sac_policy = steered(base_checkpoint, "sac")
    sac_policy.drop_chunk_critic()  # no chunk critic to drop: the config says nothing new
    assert sac_policy.config.chunk_critic and sac_policy.action_critic is None
    na_policy = steered(base_checkpoint, "na")
    na_policy.save_pretrained(tmp_path / "part_way")
    na_policy.drop_chunk_critic()
    na_policy.save_pretrained(tmp_path / "final")
    final = load_policy(tmp_path / "final")
    assert final.action_critic is None and not final.config.chunk_critic
    obs = observation(final)
    torch.manual_seed(3)
    expected = na_policy.predict_chunk(obs)
    torch.manual_seed(3)
    np.testing.assert_allclose(final.predict_chunk(obs), expected, rtol=1e-6, atol=1e-7)  # runs the same
    with pytest.raises(ManipError, match="without its chunk critic"):
        NoiseSAC(final, SACConfig())
    # a checkpoint written before the field existed loads as one that has its chunk critic
    config_path = tmp_path / "part_way" / "config.json"
    meta = json.loads(config_path.read_text())
    del meta["policy"]["chunk_critic"]
    config_path.write_text(json.dumps(meta))
    assert load_policy(tmp_path / "part_way").action_critic is not None


def test_steering_refuses_a_head_without_a_noise_map(tmp_path, tiny_store, tiny_train_raw):
    from manip.policies.train_config import TrainConfig
    from manip.policies.training import build_policy_and_dataset

    raw = tiny_train_raw(tiny_store, head="streaming")
    policy, _ = build_policy_and_dataset(TrainConfig(**raw), quiet=True)
    policy.save_pretrained(tmp_path / "streaming")
    with pytest.raises(ManipError, match="deterministic map from noise"):
        steered(tmp_path / "streaming")
