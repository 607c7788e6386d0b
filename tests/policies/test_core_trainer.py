"""Trainer: EMA, exact resume, top-k rollout checkpoints, LR schedule, and a run through `manip train`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from manip.core.config import validate_config
from manip.core.errors import ManipError
from manip.policies.ema import EMA, ema_decay
from manip.policies.train_config import TrainConfig
from manip.policies.trainer import StepBatchSampler, cosine_with_warmup
from manip.policies.training import run_training


def test_ema_decay_warms_up_and_is_capped():
    decays = [ema_decay(step, power=0.75, max_decay=0.999) for step in (0, 1, 10, 100, 10**6)]
    assert decays[0] == 0.0
    assert decays == sorted(decays)
    assert decays[-1] == 0.999


def test_ema_tracks_the_model_slowly():
    model = torch.nn.Linear(3, 3)
    ema = EMA(model, power=0.75, max_decay=0.5)
    ema.update(model)  # first update copies (decay 0 → 0.5 cap not reached: 1-(2)^-0.75 ≈ 0.41)
    with torch.no_grad():
        model.weight.add_(1.0)
    before = ema.model.weight.clone()
    decay = ema.update(model)
    expected = decay * before + (1 - decay) * model.weight
    assert torch.allclose(ema.model.weight, expected)
    assert not torch.allclose(ema.model.weight, model.weight)
    assert not ema.model.weight.requires_grad


def test_ema_refuses_batchnorm():
    with pytest.raises(ManipError, match="EMA is refused with BatchNorm"):
        EMA(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)))


def test_cosine_schedule_warms_up_then_decays_to_zero():
    f = cosine_with_warmup(10, 110)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0)


def test_batch_order_depends_only_on_seed_and_step():
    full = StepBatchSampler(50, 8, seed=3, start=0)
    late = StepBatchSampler(50, 8, seed=3, start=7)
    batches = [b for b, _ in zip(full, range(12), strict=False)]
    assert [b for b, _ in zip(late, range(5), strict=False)] == batches[7:12]
    first_epoch = [i for b in batches[:6] for i in b]  # 48 of the 50 samples, none twice
    assert len(set(first_epoch)) == 48
    small = StepBatchSampler(5, 8, seed=0, start=0)  # smaller than a batch: wraps into the next epoch
    assert len(next(iter(small))) == 8 and set(next(iter(small))) == set(range(5))
    ranks = [StepBatchSampler(50, 8, 3, 0, rank=r, world=2) for r in (0, 1)]
    first = [next(iter(s)) for s in ranks]
    assert sorted(first[0] + first[1]) == sorted(batches[0])


def test_weighted_batches_follow_the_weights_and_depend_only_on_seed_and_step():
    weights = np.zeros(50)
    weights[[3, 7]] = [0.75, 0.25]
    full = StepBatchSampler(50, 400, seed=3, start=0, weights=weights)
    late = StepBatchSampler(50, 400, seed=3, start=2, weights=weights)
    batches = [b for b, _ in zip(full, range(4), strict=False)]
    assert [b for b, _ in zip(late, range(2), strict=False)] == batches[2:4]  # exact resume
    assert batches[0] != batches[1]
    drawn = np.array(batches).ravel()
    assert set(drawn.tolist()) == {3, 7}  # zero weight: never drawn
    assert (drawn == 3).mean() == pytest.approx(0.75, abs=0.05)
    with pytest.raises(ManipError, match="50 finite non-negative"):
        StepBatchSampler(50, 8, seed=0, start=0, weights=np.ones(49))


def test_task_weights_reach_training_and_bad_ones_fail_in_one_line(tiny_store, tiny_train_raw, tmp_path):
    raw = tiny_train_raw(tiny_store, "flow", steps=2)
    with pytest.raises(ManipError, match=r"data\.task_weights\.Lift: Input should be greater than 0"):
        validate_config(TrainConfig, {**raw, "data": {**raw["data"], "task_weights": {"Lift": -1}}})
    typo = validate_config(
        TrainConfig, {**raw, "data": {**raw["data"], "task_weights": {"Lift": 1, "Lfit": 1}}}
    )
    with pytest.raises(ManipError, match="Lfit have no training episodes"):
        run_training(typo, tmp_path / "typo", quiet=True)
    config = validate_config(TrainConfig, {**raw, "data": {**raw["data"], "task_weights": {"Lift": 2.0}}})
    assert (run_training(config, tmp_path / "weighted", quiet=True) / "model.safetensors").is_file()


def test_exact_resume_matches_an_uninterrupted_run(tiny_store, tiny_train_raw, tmp_path):
    """MeanFlow: its loss draws the most random numbers per step (noise, r, t, the r != t mask)."""
    config = validate_config(TrainConfig, tiny_train_raw(tiny_store, "meanflow", steps=6, save_every=3))
    run_training(config, tmp_path / "full", quiet=True)
    run_training(config, tmp_path / "split", stop_at=3, quiet=True)
    with pytest.raises(ManipError, match="already holds a run"):
        run_training(config, tmp_path / "split", quiet=True)
    run_training(config, tmp_path / "split", resume=True, quiet=True)
    full = load_file(str(tmp_path / "full" / "state" / "state.safetensors"))
    split = load_file(str(tmp_path / "split" / "state" / "state.safetensors"))
    assert full.keys() == split.keys()
    assert any(k.startswith("ema/") for k in full) and any(k.startswith("optim/") for k in full)
    for key in full:
        assert torch.equal(full[key], split[key]), key
    meta = json.loads((tmp_path / "split" / "state" / "state.json").read_text())
    assert meta["step"] == 6
    # the exported checkpoint holds the EMA weights
    exported = load_file(str(tmp_path / "full" / "checkpoint" / "model.safetensors"))
    assert all(torch.equal(exported[k], full[f"ema/{k}"]) for k in exported)


def test_init_from_starts_a_fresh_schedule_from_a_checkpoints_weights(tiny_store, tiny_train_raw, tmp_path):
    """init_from loads weights and normalizer (not the data's fresh fit); optimizer, EMA and step start anew."""
    from manip.policies.checkpoint import load_for_finetuning, load_policy
    from manip.policies.training import build_policy_and_dataset

    base = validate_config(TrainConfig, tiny_train_raw(tiny_store, "flow", steps=6))
    checkpoint = run_training(base, tmp_path / "base", quiet=True)
    raw = tiny_train_raw(tiny_store, "flow", steps=2, seed=1)
    raw |= {"init_from": str(checkpoint), "data": {"path": str(tiny_store), "max_episodes": 2}}
    config = validate_config(TrainConfig, raw)
    fresh, _ = build_policy_and_dataset(config)
    started = load_for_finetuning(checkpoint, like=fresh)
    saved = load_policy(checkpoint)
    assert started.training and started.normalizer.to_json() == saved.normalizer.to_json()
    assert started.normalizer.to_json() != fresh.normalizer.to_json()  # 2 episodes fit other statistics
    expected = saved.state_dict()
    assert started.state_dict().keys() == expected.keys()
    assert all(torch.equal(value, expected[key]) for key, value in started.state_dict().items())
    tuned = run_training(config, tmp_path / "tuned", quiet=True)
    assert json.loads((tmp_path / "tuned" / "state" / "state.json").read_text())["step"] == 2
    # the run trained the loaded policy, not the freshly fitted one
    assert load_policy(tuned).normalizer.to_json() == saved.normalizer.to_json()
    longer = validate_config(TrainConfig, raw | {"policy": {**raw["policy"], "horizon": 12}})
    with pytest.raises(
        ManipError, match=r"init_from .*does not match this run's policy\.horizon \(12 here, 8 in"
    ):
        run_training(longer, tmp_path / "mismatch", quiet=True)


def test_init_from_may_switch_the_heads_training_target_but_not_its_inputs(
    tiny_store, tiny_train_raw, tmp_path, capsys
):
    """A fine-tune may switch the flow head's prediction target (printed); a head setting that changes inputs fails."""
    from manip.policies.checkpoint import load_for_finetuning, load_policy
    from manip.policies.training import build_policy_and_dataset

    checkpoint = run_training(
        validate_config(TrainConfig, tiny_train_raw(tiny_store, "flow", steps=2)),
        tmp_path / "base",
        quiet=True,
    )
    raw = tiny_train_raw(tiny_store, "flow", steps=2, seed=1) | {"init_from": str(checkpoint)}

    def with_head(**head):
        return validate_config(
            TrainConfig, raw | {"policy": {**raw["policy"], "head": {"name": "flow", **head}}}
        )

    fresh, _ = build_policy_and_dataset(with_head(prediction="sample", solver="heun"))
    started = load_for_finetuning(checkpoint, like=fresh)
    printed = capsys.readouterr().out
    assert "policy.head.prediction changes from 'velocity' to 'sample'" in printed
    assert "policy.head.solver changes from 'euler' to 'heun'" in printed
    expected = load_policy(checkpoint).state_dict()
    assert all(torch.equal(value, expected[key]) for key, value in started.state_dict().items())
    prefixed, _ = build_policy_and_dataset(with_head(prefix_training=0.5))
    with pytest.raises(
        ManipError, match=r"policy\.head\.prefix_training \(0\.5 here, 0\.0 in the checkpoint\)"
    ):
        load_for_finetuning(checkpoint, like=prefixed)
    rescaled, _ = build_policy_and_dataset(with_head(time_scale=1.0))
    with pytest.raises(ManipError, match=r"policy\.head\.time_scale \(1\.0 here, 100\.0 in the checkpoint\)"):
        load_for_finetuning(checkpoint, like=rescaled)


def test_rollouts_keep_the_top_k_checkpoints(tiny_store, tiny_train_raw, tmp_path):
    """The trainer calls the injected rollout every N steps and keeps the k best by success rate."""
    rates = iter([0.2, 0.9, 0.5, 0.1])
    seen = []

    def rollout(policy, step):
        seen.append((step, policy.training))
        return {"success_rate": next(rates)}

    config = validate_config(TrainConfig, tiny_train_raw(tiny_store, steps=8, rollout_every=2, top_k=2))
    run_training(config, tmp_path / "run", rollout=rollout, quiet=True)
    assert seen == [(2, False), (4, False), (6, False), (8, False)]
    top = json.loads((tmp_path / "run" / "top.json").read_text())
    assert [(e["step"], e["success_rate"]) for e in top] == [(4, 0.9), (6, 0.5)]
    kept = sorted(p.name for p in (tmp_path / "run" / "top").iterdir())
    assert kept == ["step_0000004", "step_0000006"]
    assert (tmp_path / "run" / "top" / "step_0000004" / "model.safetensors").is_file()


def manip_train(*args) -> subprocess.CompletedProcess:
    """Run `manip train ARGS...` in a subprocess (text output captured)."""
    cmd = [sys.executable, "-P", "-m", "manip.cli.main", "train", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_manip_train_cli_writes_a_loadable_checkpoint(tiny_store, tiny_train_raw, tmp_path):
    import yaml

    raw = tiny_train_raw(tiny_store, "flow", steps=4)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    result = manip_train(tmp_path / "c.yaml", "trainer.steps=2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out / "checkpoint")
    assert (out / "tb").is_dir() and (out / "metrics.jsonl").read_text().count("\n") == 1
    assert yaml.safe_load((out / "config.yaml").read_text())["trainer"]["steps"] == 2
    again = manip_train(tmp_path / "c.yaml", "trainer.steps=2", "--out", str(out))
    assert again.returncode != 0 and "--resume" in again.stderr


def test_manip_train_cli_stop_at_then_resume(tiny_store, tiny_train_raw, tmp_path):
    """--stop-at splits a run over two jobs: state and checkpoint at the stop, --resume finishes it."""
    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(tiny_train_raw(tiny_store, "flow", steps=4, log_every=1)))
    out = tmp_path / "run"
    cmd = [tmp_path / "c.yaml", "--out", str(out), "--quiet"]

    def step_of_state() -> int:
        return json.loads((out / "state" / "state.json").read_text())["step"]

    bad = manip_train(*cmd, "--stop-at", "9")
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0 and "--stop-at 9" in bad.stderr
    assert not out.exists()
    first = manip_train(*cmd, "--stop-at", "2")
    assert first.returncode == 0, first.stderr
    assert "stopped at step 2 of 4" in first.stderr and step_of_state() == 2
    assert (out / "checkpoint" / "model.safetensors").is_file()
    rest = manip_train(*cmd, "--resume")
    assert rest.returncode == 0, rest.stderr
    assert "trained 4 steps" in rest.stderr and step_of_state() == 4
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_ddp_with_two_cpu_processes(tiny_store, tiny_train_raw, tmp_path):
    """torchrun with the gloo backend: both ranks train, rank 0 alone writes the run directory."""
    import yaml

    raw = tiny_train_raw(tiny_store, "flow", steps=3, log_every=1, num_threads=1)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "manip.cli.main", "train",
           str(tmp_path / "c.yaml"), "--out", str(out), "--quiet"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]
    state = json.loads((out / "state" / "state.json").read_text())
    assert state["extra"]["world"] == 2 and state["step"] == 3
    from manip.policies import load_policy

    assert load_policy(out / "checkpoint").horizon == 8
