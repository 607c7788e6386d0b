"""Policy: one transform path, checkpoints round-trip exactly, bad observations and normalizers fail in one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from manip.core.config import validate_config
from manip.core.errors import ManipError
from manip.core.specs import FeatureSpec, Spec
from manip.data.normalizer import Normalizer
from manip.policies import load_policy
from manip.policies.chunk import ChunkPolicy
from manip.policies.train_config import TrainConfig
from manip.policies.training import build_policy_and_dataset


@pytest.fixture
def make_policy(tiny_train_raw):
    def make(store, head="diffusion"):
        torch.manual_seed(0)
        return build_policy_and_dataset(validate_config(TrainConfig, tiny_train_raw(store, head)))

    return make


def window(dataset, n=3):
    items = [dataset[i] for i in range(n)]
    return {k: np.stack([it["obs"][k].numpy() for it in items]) for k in items[0]["obs"]}


@pytest.mark.parametrize("head", ["diffusion", "flow", "meanflow"])
def test_save_load_round_trip_predicts_identically(tiny_store, tmp_path, head, make_policy):
    policy, dataset = make_policy(tiny_store, head)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(4)])
    loss, _ = policy.compute_loss(batch)
    loss.backward()
    with torch.no_grad():  # make the weights non-trivial
        for p in policy.parameters():
            p.add_(0.01 * torch.randn_like(p))
    obs = window(dataset)
    policy.save_pretrained(tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["policy_type"] == "chunk" and meta["horizons"]["horizon"] == 8
    assert set(meta["normalizer"]["features"]) == {"robot0_eef_pos", "object", "action"}
    loaded = load_policy(tmp_path / "ckpt")
    policy.eval()
    a = policy.predict_chunk(obs, generator=torch.Generator().manual_seed(1))
    b = loaded.predict_chunk(obs, generator=torch.Generator().manual_seed(1))
    assert a.shape == (3, 8, 7)
    np.testing.assert_array_equal(a, b)


def test_predictions_are_unnormalized_and_prefix_is_kept(tiny_store, make_policy):
    policy, dataset = make_policy(tiny_store, "flow")
    obs = window(dataset, 2)
    prefix = np.full((2, 3, 7), 0.5, np.float32)
    out = policy.eval().predict_chunk(obs, steps=2, prefix=prefix)
    np.testing.assert_allclose(out[:, :3], prefix, atol=1e-5)


def test_train_and_serve_share_one_transform(tiny_store, make_policy):
    """prepare_obs is the only path: its output for a batch is what both compute_loss and predict_chunk use."""
    policy, dataset = make_policy(tiny_store)
    obs = window(dataset, 2)
    tensors = {k: torch.from_numpy(v) for k, v in obs.items()}
    prepared = policy.prepare_obs(tensors)
    expected = policy.normalizer.normalize({"object": tensors["object"]})["object"]
    assert torch.equal(prepared["object"], expected)
    assert prepared["robot0_eef_pos"].abs().max() <= 1.0 + 1e-5  # minmax over the data


def test_observation_mismatches_are_one_line_errors(tiny_store, make_policy):
    policy, dataset = make_policy(tiny_store)
    obs = window(dataset, 2)
    with pytest.raises(ManipError, match=r"missing key.*object"):
        policy.predict_chunk({"robot0_eef_pos": obs["robot0_eef_pos"]})
    with pytest.raises(ManipError, match="'object' has shape"):
        policy.predict_chunk({**obs, "object": obs["object"][..., :5]})
    with pytest.raises(ManipError, match="n_obs_steps=2"):
        policy.predict_chunk({k: np.concatenate([v, v], axis=1) for k, v in obs.items()})
    with pytest.raises(ManipError, match="NaN"):
        policy.predict_chunk({**obs, "object": np.full_like(obs["object"], np.nan)})


def test_missing_camera_is_named(tiny_store, make_policy):
    policy, dataset = make_policy(tiny_store)
    policy.obs_spec = Spec(
        (*policy.obs_spec.features, FeatureSpec("agentview_image", (84, 84, 3), "uint8", "rgb"))
    )
    with pytest.raises(ManipError, match=r"missing key.*agentview_image"):
        policy.predict_chunk(window(dataset, 1))


def test_normalizer_with_wrong_keys_is_refused(tiny_store, make_policy):
    policy, _ = make_policy(tiny_store)
    stats = policy.normalizer.to_json()
    del stats["features"]["object"]
    with pytest.raises(ManipError, match="normalizer keys do not match the policy; missing object"):
        ChunkPolicy(policy.config, policy.obs_spec, policy.action_spec, Normalizer.from_json(stats))


def test_normalizer_fails_closed_on_wrong_shape(tiny_store, make_policy):
    policy, dataset = make_policy(tiny_store)
    batch = torch.utils.data.default_collate([dataset[i] for i in range(2)])
    batch["action"] = batch["action"][..., :6]
    with pytest.raises(ManipError, match="normalizer: 'action' has shape"):
        policy.compute_loss(batch)


def test_checkpoint_problems_are_one_line(tiny_store, tmp_path, make_policy):
    policy, _ = make_policy(tiny_store)
    policy.save_pretrained(tmp_path / "ckpt")
    with pytest.raises(ManipError, match="not a checkpoint"):
        load_policy(tmp_path)
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    meta["policy"]["backbone"]["down_dims"] = [16, 64]
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ManipError, match="weights do not match the config"):
        load_policy(tmp_path / "ckpt")
    meta["policy"]["head"]["bogus"] = 1
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ManipError, match=r"policy.head: bogus: unknown key"):
        load_policy(tmp_path / "ckpt")


def test_config_unknown_keys_fail(tiny_store, tiny_train_raw):
    raw = tiny_train_raw(tiny_store)
    raw["policy"]["backbone"]["down_dimz"] = [8]
    with pytest.raises(ManipError, match=r"policy\.backbone: down_dimz: unknown key"):
        validate_config(TrainConfig, raw)
    raw = tiny_train_raw(tiny_store)
    raw["trainer"]["lr_max"] = 1
    with pytest.raises(ManipError, match=r"trainer\.lr_max: unknown key"):
        validate_config(TrainConfig, raw)


def test_manip_train_bad_config_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "inherit: " + str((__import__("pathlib").Path("configs") / "lift_lowdim_flow.yaml").resolve()) + "\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "manip.cli.main",
            "train",
            str(bad),
            "policy.head.stepz=3",
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "stepz" in result.stderr and "Traceback" not in result.stderr


def test_every_shipped_config_validates():
    from pathlib import Path

    from manip.policies.train_config import load_train_config

    configs = sorted(Path("configs").glob("*.yaml"))
    assert len(configs) >= 8
    for path in configs:
        load_train_config(path)
