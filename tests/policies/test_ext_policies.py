"""Image-observation chunk policies and the VLA policy: loss, predict_chunk, checkpoint round trips, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from manip.core.errors import ManipError
from manip.core.specs import FeatureSpec, Spec
from manip.data.normalizer import Normalizer
from manip.policies.checkpoint import load_policy
from manip.policies.config import POLICY_TYPES, parse_policy_config

IMAGE_SIZE = 24
OBS_SPEC = Spec(
    (
        FeatureSpec("robot0_eef_pos", (3,)),
        FeatureSpec("robot0_gripper_qpos", (2,)),
        FeatureSpec("agentview_image", (IMAGE_SIZE, IMAGE_SIZE, 3), "uint8", "rgb"),
        FeatureSpec("robot0_eye_in_hand_image", (IMAGE_SIZE, IMAGE_SIZE, 3), "uint8", "rgb"),
    )
)
ACTION_SPEC = Spec((FeatureSpec("action", (7,)),))
LOWDIM = ["robot0_eef_pos", "robot0_gripper_qpos"]
TINY = {
    "obs_keys": [f.name for f in OBS_SPEC.features],
    "n_obs_steps": 2,
    "horizon": 8,
    "n_action_steps": 4,
    "encoders": {"image": {"width": 8, "blocks": [1, 1], "keypoints": 4, "feature_dim": 8}},
    "backbone": {"name": "transformer", "d_model": 32, "n_layers": 2, "n_heads": 4},
}
TINY_VLA = {
    **TINY,
    "type": "vla",
    "encoders": {**TINY["encoders"], "language": {"max_length": 16}},
    "context": {"d_model": 32, "n_layers": 1, "n_heads": 4, "readouts": 2},
}
INSTRUCTIONS = ["lift the red cube", "pick up the can and place it in its bin"]


def raw_batch(batch: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    obs = {k: rng.normal(size=(batch, 2, *OBS_SPEC[k].shape)).astype(np.float32) for k in LOWDIM}
    for f in OBS_SPEC.of_kind("rgb"):
        obs[f.name] = rng.integers(0, 256, size=(batch, 2, *f.shape), dtype=np.uint8)
    return {"obs": obs, "action": rng.uniform(-1, 1, size=(batch, 8, 7)).astype(np.float32)}


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    batch = raw_batch(32)
    return Normalizer.fit(
        [{**batch["obs"], "action": batch["action"]}], {**dict.fromkeys(LOWDIM, "minmax"), "action": "minmax"}
    )


def make_policy(raw: dict, normalizer: Normalizer):
    config = parse_policy_config(raw)
    return POLICY_TYPES.get(config.type).cls(config, OBS_SPEC, ACTION_SPEC, normalizer)


def torch_batch(batch: dict) -> dict:
    return {
        "obs": {k: torch.from_numpy(v) for k, v in batch["obs"].items()},
        "action": torch.from_numpy(batch["action"]),
    }


def trained_a_little(policy, instructions=None, steps: int = 3):
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-3)
    batch = torch_batch(raw_batch(4, seed=1))
    if instructions is not None:
        batch["instruction"] = instructions
    policy.train()
    for _ in range(steps):
        loss, metrics = policy.compute_loss(batch)
        assert torch.isfinite(loss) and "loss" in metrics
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return policy.eval()


@pytest.mark.parametrize("head", ["diffusion", "meanflow"])
def test_image_policy_round_trip_predicts_identically(head, normalizer, tmp_path):
    policy = trained_a_little(make_policy({**TINY, "head": {"name": head}}, normalizer))
    obs = raw_batch(2, seed=5)["obs"]
    steps = 2 if head == "diffusion" else 1
    before = policy.predict_chunk(obs, steps=steps, generator=torch.Generator().manual_seed(3))
    assert before.shape == (2, 8, 7) and np.isfinite(before).all()
    policy.save_pretrained(tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["policy"]["backbone"]["name"] == "transformer"
    loaded = load_policy(tmp_path / "ckpt")
    after = loaded.predict_chunk(obs, steps=steps, generator=torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(before, after)


def test_image_policy_names_a_missing_camera(normalizer):
    policy = make_policy({**TINY, "head": {"name": "flow"}}, normalizer).eval()
    obs = raw_batch(1)["obs"]
    del obs["robot0_eye_in_hand_image"]
    with pytest.raises(ManipError, match="robot0_eye_in_hand_image"):
        policy.predict_chunk(obs)
    obs = raw_batch(1)["obs"]
    obs["agentview_image"] = obs["agentview_image"][:, :, :20]
    with pytest.raises(ManipError, match="agentview_image"):
        policy.predict_chunk(obs)


@pytest.fixture(scope="module")
def vla(normalizer):
    """A tiny VLA policy on the real (packaged) MiniLM text encoder, trained for a few steps."""
    policy = make_policy(TINY_VLA, normalizer)
    return trained_a_little(policy, instructions=[INSTRUCTIONS[0], INSTRUCTIONS[1]] * 2)


def test_vla_predicts_chunks_conditioned_on_the_instruction(vla):
    obs = raw_batch(2, seed=7)["obs"]
    same = {k: np.repeat(v[:1], 2, axis=0) for k, v in obs.items()}
    gen = torch.Generator().manual_seed(0)
    chunk = vla.predict_chunk(same, instruction=INSTRUCTIONS, generator=gen)
    assert chunk.shape == (2, 8, 7) and np.isfinite(chunk).all()
    cond = vla.encode(vla.prepare_obs({k: torch.from_numpy(v) for k, v in same.items()}), INSTRUCTIONS)
    assert not torch.allclose(cond[0], cond[1])  # same observation, different instruction → different context


def test_vla_requires_one_instruction_per_sample(vla):
    obs = raw_batch(2)["obs"]
    with pytest.raises(ManipError, match="instruction"):
        vla.predict_chunk(obs)
    with pytest.raises(ManipError, match="2 instruction"):
        vla.predict_chunk({k: v[:1] for k, v in obs.items()}, instruction=INSTRUCTIONS)
    with pytest.raises(ManipError, match="non-empty string"):
        vla.predict_chunk(obs, instruction=["lift", ""])


def test_vla_round_trip_keeps_the_text_encoder_out_of_the_weights(vla, tmp_path):
    obs = raw_batch(2, seed=9)["obs"]
    before = vla.predict_chunk(
        obs, instruction=INSTRUCTIONS, steps=4, generator=torch.Generator().manual_seed(1)
    )
    vla.save_pretrained(tmp_path / "vla")
    from safetensors.torch import load_file

    weights = load_file(str(tmp_path / "vla" / "model.safetensors"))
    assert not any("word_embeddings" in k or "encoder.layer" in k for k in weights)  # text model by path only
    assert "embedder.fingerprint" in weights
    loaded = load_policy(tmp_path / "vla")
    assert type(loaded).__name__ == "VLAPolicy"
    after = loaded.predict_chunk(
        obs, instruction=INSTRUCTIONS, steps=4, generator=torch.Generator().manual_seed(1)
    )
    np.testing.assert_array_equal(before, after)


def test_vla_config_rejects_unknown_keys():
    with pytest.raises(ManipError, match="unknown key"):
        parse_policy_config({**TINY_VLA, "context": {"d_model": 32, "layers": 3}})


def test_vla_trains_from_a_zarr_store_with_per_episode_instructions(vla, tmp_path):
    from torch.utils.data import DataLoader

    from manip.data.dataset import ChunkDataset

    store = write_instruction_store(tmp_path / "multi.zarr", ((12, INSTRUCTIONS[0]), (9, INSTRUCTIONS[1])))
    dataset = ChunkDataset(store, vla.config.obs_keys, horizon=8, n_obs_steps=2, n_action_steps=4)
    wrapped = vla.training_dataset(dataset)
    first_windows = int((wrapped.window_episode == 0).sum())
    assert wrapped[0]["instruction"] == INSTRUCTIONS[0]
    assert wrapped[first_windows]["instruction"] == INSTRUCTIONS[1]
    assert wrapped[len(wrapped) - 1]["instruction"] == INSTRUCTIONS[1]
    batch = next(iter(DataLoader(wrapped, batch_size=len(wrapped), shuffle=False)))
    assert batch["instruction"].count(INSTRUCTIONS[0]) == first_windows
    loss, _ = vla.train().compute_loss(batch)
    vla.eval()
    assert torch.isfinite(loss)


def write_instruction_store(path, lengths_and_instructions, seed: int = 0):
    """A small image + proprio store whose episodes carry language instructions in their metadata."""
    from manip.data.store import EpisodeStore

    store = EpisodeStore.create(path)
    rng = np.random.default_rng(seed)
    for length, instruction in lengths_and_instructions:
        steps = {k: rng.normal(size=(length, *OBS_SPEC[k].shape)).astype(np.float32) for k in LOWDIM}
        for f in OBS_SPEC.of_kind("rgb"):
            steps[f.name] = rng.integers(0, 256, size=(length, *f.shape), dtype=np.uint8)
        steps["action"] = rng.uniform(-1, 1, size=(length, 7)).astype(np.float32)
        store.add_episode(steps, {"task": "t", "instruction": instruction, "success": True})
    return store


def test_manip_train_feeds_instructions_to_a_vla(tmp_path):
    """The training entry point (what ``manip train`` runs) hands the VLA instruction-carrying items."""
    import yaml

    from manip.policies.train_config import load_train_config
    from manip.policies.training import build_policy_and_dataset

    write_instruction_store(tmp_path / "multi.zarr", ((12, INSTRUCTIONS[0]), (9, INSTRUCTIONS[1])))
    config_path = tmp_path / "vla.yaml"
    config_path.write_text(
        yaml.safe_dump({"task": "Lift", "data": {"path": str(tmp_path / "multi.zarr")}, "policy": TINY_VLA})
    )
    policy, dataset = build_policy_and_dataset(load_train_config(config_path))
    assert policy.config.type == "vla"
    assert {dataset[0]["instruction"], dataset[len(dataset) - 1]["instruction"]} == set(INSTRUCTIONS)


def test_data_frame_memory_gb_is_validated_and_reaches_the_dataset(tmp_path):
    import yaml

    from manip.policies.train_config import load_train_config
    from manip.policies.training import build_policy_and_dataset

    write_instruction_store(tmp_path / "multi.zarr", ((12, INSTRUCTIONS[0]), (9, INSTRUCTIONS[1])))
    config_path = tmp_path / "vla.yaml"
    data = {"path": str(tmp_path / "multi.zarr"), "frame_memory_gb": -1}
    config_path.write_text(yaml.safe_dump({"task": "Lift", "data": data, "policy": TINY_VLA}))
    with pytest.raises(ManipError, match="frame_memory_gb"):
        load_train_config(config_path)
    data["frame_memory_gb"] = 0.5
    config_path.write_text(yaml.safe_dump({"task": "Lift", "data": data, "policy": TINY_VLA}))
    dataset = build_policy_and_dataset(load_train_config(config_path))[1]
    assert dataset.dataset._settings["frame_memory_bytes"] == 1 << 29


def test_vla_training_data_needs_instructions(vla, tmp_path):
    from manip.data.dataset import ChunkDataset
    from manip.data.store import EpisodeStore

    store = EpisodeStore.create(tmp_path / "plain.zarr")
    steps = {k: np.zeros((5, *OBS_SPEC[k].shape), np.float32) for k in LOWDIM}
    steps.update({f.name: np.zeros((5, *f.shape), np.uint8) for f in OBS_SPEC.of_kind("rgb")})
    steps["action"] = np.zeros((5, 7), np.float32)
    store.add_episode(steps, {"task": "t"})
    dataset = ChunkDataset(store, vla.config.obs_keys, horizon=8, n_obs_steps=2, n_action_steps=4)
    with pytest.raises(ManipError, match="no instruction"):
        vla.training_dataset(dataset)


@pytest.mark.parametrize(
    "name", ["lift_image_diffusion", "lift_image_meanflow", "vla_multitask", "vla_multitask_cpu"]
)
def test_shipped_image_and_vla_configs_validate(name):
    from pathlib import Path

    from manip.policies.train_config import load_train_config

    path = Path(__file__).resolve().parents[2] / "configs" / f"{name}.yaml"
    config = load_train_config(path).policy_config
    assert {"agentview_image", "robot0_eye_in_hand_image"} <= set(config.obs_keys)
    assert config.type == ("vla" if name.startswith("vla") else "chunk")
