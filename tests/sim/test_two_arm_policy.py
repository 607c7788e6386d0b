"""TwoArmTransport end to end with 14-D actions and two robots' proprioception: scripted episodes into a real
store, a trained policy checkpoint (normalizer fitted on the 14-D actions), and ``manip eval`` of it both in
process and through a real ``manip serve`` on 127.0.0.1 — the same paths as one-arm tasks, no special case."""

from __future__ import annotations

import numpy as np
import pytest

from tests.cli import manip, read_json
from tests.tiny_train import tiny_train_raw

TASK = "TwoArmTransport"
OBS_KEYS = [f"robot{i}_{key}" for i in range(2) for key in ("eef_pos", "eef_quat", "gripper_qpos")] + [
    "object"
]


@pytest.fixture(scope="module")
def transport_checkpoint(tmp_path_factory):
    """Two short scripted episodes (24 steps each, kept although unfinished) and a policy trained on them."""
    from manip.core.config import validate_config
    from manip.policies.train_config import TrainConfig
    from manip.policies.training import run_training
    from manip.sim.collect import collect
    from manip.sim.devices.scripted import ScriptedDevice
    from manip.sim.env import make_env

    root = tmp_path_factory.mktemp("transport")
    env = make_env(TASK, horizon=24)
    try:
        collect(env, ScriptedDevice(TASK), root / "data.zarr", episodes=2, keep_failures=True, quiet=True)
    finally:
        env.close()
    raw = tiny_train_raw(
        root / "data.zarr", "meanflow", task=TASK, obs_keys=OBS_KEYS, steps=2, batch_size=4, save_every=2
    )
    checkpoint = run_training(validate_config(TrainConfig, raw), root / "run", quiet=True)
    return root, checkpoint


@pytest.mark.slow
def test_store_and_checkpoint_carry_both_arms(transport_checkpoint):
    from manip.data.store import EpisodeStore
    from manip.policies.checkpoint import load_policy

    root, checkpoint = transport_checkpoint
    store = EpisodeStore.open(root / "data.zarr")
    assert store.step_spec("action")[0] == (14,)
    actions = np.asarray(store.read("action", 0, store.num_steps))
    assert np.abs(actions[:, 7:13]).max() > 0  # robot1's half moves: the expert drives both arms
    policy = load_policy(checkpoint)
    assert policy.action_spec["action"].shape == (14,)
    assert set(policy.obs_spec.names) >= set(OBS_KEYS)
    action_norm = policy.normalizer.features["action"]
    assert action_norm.shape == (14,) and np.asarray(action_norm.scale).shape == (14,)  # per dim of both arms


@pytest.mark.slow
@pytest.mark.parametrize("through_server", [False, True], ids=["in_process", "served"])
def test_eval_runs_the_14d_policy(transport_checkpoint, tmp_path, through_server):
    from manip.real.launch import start_server

    _root, checkpoint = transport_checkpoint
    out = tmp_path / "eval"
    common = ["--task", TASK, "--episodes", "1", "--horizon", "8", "--seed", "3", "--out", str(out)]
    if through_server:
        with start_server(["--checkpoint", str(checkpoint), "--port", "0"]) as server:
            result = manip("eval", "--server", server.url, *common)
    else:
        result = manip("eval", "--checkpoint", str(checkpoint), *common)
    assert result.returncode == 0, result.stderr
    results = read_json(out / "results.json")
    assert results["task"] == TASK and results["errors"] == 0
    episode = results["per_episode"][0]
    assert episode["steps"] == 8 and episode["chunks"] == 2  # 4 of each 8-step chunk executed
    assert not episode["success"]
