"""`manip steer`: noise-space SAC in two simulation workers writes a checkpoint that loads and evaluates as usual."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli import manip


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory):
    from tests.sim.tiny_checkpoint import lift_checkpoint

    return lift_checkpoint(tmp_path_factory.mktemp("base") / "base")


@pytest.mark.slow
def test_steer_learns_from_a_few_env_steps_and_writes_a_loadable_checkpoint(tmp_path, base_checkpoint):
    from manip.policies import load_policy
    from manip.policies.steering.policy import SteeredPolicy

    out = tmp_path / "steer"
    result = manip(
        "steer", "--checkpoint", str(base_checkpoint), "--task", "Lift", "--env-steps", "96", "--horizon", "24",
        "--out", str(out), "--workers", "2", "--batch-size", "8", "--learning-starts", "4", "--hidden", "32",
        "--variant", "na", "--save-every", "48", "--action-steps", "2", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "steer.json").read_text())
    assert report["env_steps"] >= 96 and report["episodes"] >= 2 and report["updates"] > 0
    updates = [e["updates"] for e in report["per_episode"]]
    assert report["finished"] and updates == sorted(updates)
    assert not (out / "steer.json.partial").exists()
    saved = sorted((out / "checkpoints").iterdir())  # part-way saves, each a loadable checkpoint
    assert saved and all((s / "model.safetensors").is_file() and (s / "config.json").is_file() for s in saved)
    assert {e["worker"] for e in report["per_episode"]} == {0, 1}  # both workers ran episodes
    policy = load_policy(out / "checkpoint")
    base = load_policy(base_checkpoint)
    assert isinstance(policy, SteeredPolicy) and policy.config.variant == "na"
    assert (policy.n_action_steps, base.n_action_steps) == (2, 4)  # --action-steps is kept in the checkpoint
    assert policy.action_critic is None and policy.critic is not None  # the chunk critic is training-only
    assert load_policy(saved[-1]).action_critic is not None  # part-way saves keep it
    rng = np.random.default_rng(0)
    obs = {
        n: rng.normal(size=(1, 2, *policy.obs_spec[n].shape)).astype(np.float32)
        for n in policy.obs_spec.names
    }
    assert (
        np.abs(policy.predict_chunk(obs) - base.predict_chunk(obs)).max() > 1e-4
    )  # the learned noise steers
    # manip eval runs the steered checkpoint unchanged
    evaluated = manip(
        "eval", "--checkpoint", str(out / "checkpoint"), "--task", "Lift", "--episodes", "1", "--horizon", "10",
        "--out", str(tmp_path / "eval"),
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["episodes"] == 1 and results["checkpoint_id"].startswith("checkpoint@")
    assert results["per_episode"][0]["chunks"] == 5  # 10 steps, 2 actions executed per decision
    scaled = manip(
        "eval", "--checkpoint", str(out / "checkpoint"), "--task", "Lift", "--episodes", "1", "--noise-scale",
        "0.5", "--out", str(tmp_path / "eval_scaled"),
    )  # fmt: skip
    assert scaled.returncode != 0 and "actor picks the initial noise" in scaled.stderr
    assert "Traceback" not in scaled.stderr


def test_steer_bad_input_is_one_line(tmp_path, base_checkpoint):
    result = manip(
        "steer", "--checkpoint", str(base_checkpoint), "--task", "Lift", "--env-steps", "10", "--out",
        str(tmp_path / "o"), "--variant", "ppo",
    )  # fmt: skip
    assert result.returncode != 0 and "--variant" in result.stderr and "Traceback" not in result.stderr
    too_many = manip(
        "steer", "--checkpoint", str(base_checkpoint), "--task", "Lift", "--env-steps", "10", "--out",
        str(tmp_path / "o"), "--action-steps", "8",
    )  # fmt: skip
    assert too_many.returncode != 0 and "--action-steps 8: pass 1 to 7" in too_many.stderr
    assert "Traceback" not in too_many.stderr and not (tmp_path / "o").exists()
    missing = manip("steer", "--task", "Lift")
    assert missing.returncode != 0 and "--checkpoint" in missing.stderr
