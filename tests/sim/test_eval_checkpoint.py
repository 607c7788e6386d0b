"""`manip eval --checkpoint`: a real (tiny, untrained) policy checkpoint built from collected demos is
evaluated through LocalPolicySource → ChunkExecutor; the observation keys and latency come through."""

from __future__ import annotations

import pytest

from tests.cli import manip, read_json
from tests.tiny_train import tiny_train_raw


@pytest.mark.slow
def test_eval_a_checkpoint(tmp_path):
    from manip.core.config import validate_config
    from manip.core.provenance import code_provenance
    from manip.policies.train_config import TrainConfig
    from manip.policies.training import build_policy_and_dataset
    from manip.real.client.sources import checkpoint_id
    from manip.sim.collect import collect
    from manip.sim.devices.scripted import ScriptedDevice
    from manip.sim.env import make_env

    store = tmp_path / "lift.zarr"
    collect(make_env("Lift"), ScriptedDevice("Lift"), store, episodes=2, quiet=True)
    raw = tiny_train_raw(store, "flow", steps=1, batch_size=4)
    policy, _dataset = build_policy_and_dataset(validate_config(TrainConfig, raw))
    policy.save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "eval"
    result = manip(
        "eval", "--checkpoint", str(tmp_path / "ckpt"), "--task", "Lift", "--episodes", "2", "--horizon", "12",
        "--seed", "5", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = read_json(out / "results.json")
    assert results["seeds"] == [5, 6] and results["errors"] == 0
    assert results["checkpoint_id"] == checkpoint_id(tmp_path / "ckpt")  # provenance: which weights ran
    assert results["git_commit"] == code_provenance()["git_commit"] and len(results["git_commit"]) == 40
    assert isinstance(results["git_dirty"], bool)
    assert [e["steps"] for e in results["per_episode"]] == [12, 12]  # an untrained policy does not succeed
    assert results["latency_ms"]["p50"] > 0
    assert [e["chunks"] for e in results["per_episode"]] == [3, 3]  # 12 steps, 4 actions executed per chunk
    closer = manip(
        "eval", "--checkpoint", str(tmp_path / "ckpt"), "--task", "Lift", "--episodes", "1", "--horizon", "12",
        "--seed", "5", "--action-steps", "2", "--out", str(tmp_path / "eval2"),
    )  # fmt: skip
    assert closer.returncode == 0, closer.stderr
    results = read_json(tmp_path / "eval2" / "results.json")
    assert results["action_steps"] == 2 and results["per_episode"][0]["chunks"] == 6
    ensembled = manip(
        "eval", "--checkpoint", str(tmp_path / "ckpt"), "--task", "Lift", "--episodes", "1", "--horizon", "12",
        "--seed", "5", "--executor", "ensemble", "--ensemble-every", "3", "--out", str(tmp_path / "eval3"),
    )  # fmt: skip
    assert ensembled.returncode == 0, ensembled.stderr
    results = read_json(tmp_path / "eval3" / "results.json")
    assert results["executor"] == {"ensemble_every": 3, "mode": "ensemble"}
    assert results["per_episode"][0]["chunks"] == 4  # a request every 3 of the 12 ticks


def test_eval_with_candidates_runs_a_selection_copy_of_the_checkpoint(tmp_path):
    import json

    from tests.sim.tiny_checkpoint import lift_checkpoint

    base = lift_checkpoint(tmp_path / "base")
    out = tmp_path / "eval"
    result = manip(
        "eval", "--checkpoint", str(base), "--task", "Lift", "--episodes", "1", "--horizon", "8",
        "--candidates", "4", "--selector", "density", "--noise-scale", "0.5", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    copy = out / "checkpoint"
    assert read_json(out / "results.json")["source"] == str(copy.resolve())
    sampling = json.loads((copy / "config.json").read_text())["policy"]["sampling"]
    assert (sampling["candidates"], sampling["selector"], sampling["noise_scale"]) == (4, "density", 0.5)
    assert (copy / "model.safetensors").read_bytes() == (base / "model.safetensors").read_bytes()


@pytest.mark.parametrize(
    ("flags", "shift"),
    [([], None), (["--action-steps", "2"], 2), (["--executor", "ensemble"], 1), (["--executor", "ensemble", "--ensemble-every", "3"], 3)],
)  # fmt: skip
def test_coherence_is_aligned_by_the_ticks_between_requests(tmp_path, flags, shift):
    """None: the policy's own n_action_steps (4 here), read when the policy runs."""
    import json

    from tests.sim.tiny_checkpoint import lift_checkpoint

    base = lift_checkpoint(tmp_path / "base")
    out = tmp_path / "eval"
    result = manip(
        "eval", "--checkpoint", str(base), "--task", "Lift", "--episodes", "1", "--horizon", "8",
        "--candidates", "4", "--selector", "coherence", *flags, "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sampling = json.loads((out / "checkpoint" / "config.json").read_text())["policy"]["sampling"]
    assert (sampling["selector"], sampling["coherence_shift"]) == ("coherence", shift)
    assert read_json(out / "results.json")["per_episode"][0]["chunks"] == -(-8 // (shift or 4))


def test_a_coherence_checkpoint_is_realigned_to_the_executor_options(tmp_path):
    import json

    from tests.sim.tiny_checkpoint import lift_checkpoint

    base = lift_checkpoint(tmp_path / "base", **CHECKPOINTS["coherence"])
    out = tmp_path / "eval"
    result = manip(
        "eval", "--checkpoint", str(base), "--task", "Lift", "--episodes", "1", "--horizon", "8",
        "--action-steps", "2", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    sampling = json.loads((out / "checkpoint" / "config.json").read_text())["policy"]["sampling"]
    assert (sampling["selector"], sampling["coherence_shift"]) == ("coherence", 2)  # not the stored 4


STREAMING = {
    "n_obs_steps": 2,
    "n_action_steps": 1,
    "head": {"name": "streaming", "default_steps": 2, "front": 1},
    "sampling": {"mode": "streaming"},
}
CHECKPOINTS = {
    "flow": {},
    "streaming": STREAMING,
    "streaming_full": {**STREAMING, "sampling": {"mode": "full"}},
    "streaming_4_actions": {**STREAMING, "n_action_steps": 4, "sampling": {"mode": "full"}},
    "coherence": {"sampling": {"candidates": 4, "selector": "coherence", "coherence_shift": 4}},
    "streaming_front_0": {
        **STREAMING,
        "head": {**STREAMING["head"], "front": 0},
        "sampling": {"mode": "full"},
    },
}


@pytest.mark.parametrize(
    ("kind", "flags", "message"),
    [
        ("flow", ["--expert", "--candidates", "4"], "--candidates needs --checkpoint"),
        ("flow", ["--checkpoint", "CKPT", "--candidates", "0"], "--candidates 0: pass a count of 1 or more"),
        ("flow", ["--checkpoint", "CKPT", "--selector", "best"], "selector 'best' is unknown"),
        ("flow", ["--checkpoint", "CKPT", "--candidates", "2000"], "less than or equal to 1024"),
        ("flow", ["--checkpoint", "CKPT", "--selector", "medoid"], "pass --candidates N with N >= 2"),
        ("flow", ["--checkpoint", "CKPT", "--candidates", "4", "--selector", "critic"], "needs a steered checkpoint"),
        ("flow", ["--checkpoint", "CKPT", "--candidates", "4", "--selector", "coherence", "--executor", "async"], "requests chunks at varying ticks"),
        ("flow", ["--checkpoint", "CKPT", "--candidates", "4", "--selector", "coherence", "--executor", "recedng"], "--executor"),
        ("coherence", ["--checkpoint", "CKPT", "--executor", "rtc"], "requests chunks at varying ticks"),
        ("coherence", ["--checkpoint", "CKPT", "--ros"], "keeps no per-episode state"),
        ("flow", ["--server", "ws://127.0.0.1:1", "--sampling-mode", "full"], "--sampling-mode needs --checkpoint"),
        ("flow", ["--checkpoint", "CKPT", "--sampling-mode", "full"], "streaming-head checkpoint (this one's head: flow)"),
        ("flow", ["--checkpoint", "CKPT", "--steps-per-tick", "2"], "add --sampling-mode streaming"),
        ("flow", ["--checkpoint", "CKPT", "--steps-per-tick", "0"], "--steps-per-tick 0: pass a count of 1 or more"),
        ("flow", ["--checkpoint", "CKPT", "--noise-scale", "-1"], "--noise-scale: Input should be greater than or equal to 0"),
        ("flow", ["--checkpoint", "CKPT", "--noise-scale", "x"], "--noise-scale"),
        ("streaming", ["--checkpoint", "CKPT", "--noise-scale", "0.5"], "applies to full sampling"),
        ("flow", ["--checkpoint", "CKPT", "--candidates", "4", "--workers", "0"], "--workers must be >= 1"),
        ("flow", ["--checkpoint", "CKPT", "--candidates", "4", "--delay-ms", "-1"], "--delay-ms must be >= 0"),
        ("flow", ["--checkpoint", "CKPT", "--candidates", "4", "--ros", "--workers", "2"], "cannot be combined with --ros"),
        ("flow", ["--checkpoint", "CKPT", "--candidates", "4", "--out", "CKPT"], "lies in the evaluated checkpoint"),
        ("flow", ["--checkpoint", "CKPT", "--candidates", "4", "--out", "OTHER"], "holds other weights"),
        ("streaming", ["--checkpoint", "CKPT", "--candidates", "4"], "samples in streaming mode, which draws one chunk"),
        ("streaming", ["--checkpoint", "CKPT", "--sampling-mode", "full", "--steps-per-tick", "2"], "(--sampling-mode full)"),
        ("streaming", ["--checkpoint", "CKPT", "--action-steps", "4"], "--action-steps 4: the checkpoint samples in streaming"),
        ("streaming", ["--checkpoint", "CKPT", "--executor", "rtc"], "receding executor only"),
        ("streaming_full", ["--checkpoint", "CKPT", "--candidates", "4", "--sampling-mode", "streaming"], "--sampling-mode streaming, which draws one chunk"),
        ("streaming_4_actions", ["--checkpoint", "CKPT", "--sampling-mode", "streaming"], "set policy.n_action_steps 1 (it is 4)"),
        ("streaming_front_0", ["--checkpoint", "CKPT", "--sampling-mode", "streaming"], "front=0 must be n_obs_steps - 1 = 1"),
    ],
)  # fmt: skip
def test_eval_sampling_flags_refuse_bad_input_in_one_line(tmp_path, kind, flags, message):
    from tests.sim.tiny_checkpoint import lift_checkpoint

    base = lift_checkpoint(tmp_path / "base", **CHECKPOINTS[kind])
    other = lift_checkpoint(tmp_path / "other" / "checkpoint", seed=1)  # another run's weights
    names = {"CKPT": str(base), "OTHER": str(other.parent)}
    flags = [names.get(flag, flag) for flag in flags]
    out = [] if "--out" in flags else ["--out", str(tmp_path / "eval")]
    result = manip("eval", *flags, "--task", "Lift", "--episodes", "1", *out)
    assert result.returncode != 0
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "eval").exists() and not (base / "checkpoint").exists()  # nothing written
    assert (other / "model.safetensors").read_bytes() != (base / "model.safetensors").read_bytes()


def test_eval_switches_a_streaming_checkpoint_between_streaming_and_full_sampling(tmp_path):
    from tests.sim.tiny_checkpoint import lift_checkpoint

    for kind, flags, expected in (
        ("streaming", ["--sampling-mode", "full"], ("full", 1)),
        ("streaming", ["--steps-per-tick", "2"], ("streaming", 2)),
        ("streaming_full", ["--sampling-mode", "streaming"], ("streaming", 1)),
    ):
        base = lift_checkpoint(tmp_path / kind, **CHECKPOINTS[kind])
        out = tmp_path / f"{kind}-{flags[0].strip('-')}"
        result = manip(
            "eval", "--checkpoint", str(base), "--task", "Lift", "--episodes", "1", "--horizon", "3", *flags,
            "--out", str(out),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        results = read_json(out / "results.json")
        assert results["source"] == str((out / "checkpoint").resolve())  # the copy ran, not the base
        assert results["per_episode"][0]["steps"] == 3 and results["errors"] == 0
        sampling = read_json(out / "checkpoint" / "config.json")["policy"]["sampling"]
        assert (sampling["mode"], sampling["steps_per_tick"]) == expected
