"""Benchmark plumbing (figures are not asserted: speed lives in bench/, not in tests)."""

from __future__ import annotations

import argparse

import pytest

from manip.bench import inference, train
from manip.core.errors import ManipError

SMALL = inference.Case("lowdim", "meanflow", 1, backbone="transformer")
TINY_BACKBONE = {"backbone": {"name": "transformer", "d_model": 32, "n_layers": 1, "n_heads": 4}}


def test_inference_case_reports_latency_percentiles():
    result = inference.time_case(SMALL, repeats=3, warmup=1, policy_overrides=TINY_BACKBONE)
    assert result["label"] == "lowdim MeanFlow-1 (transformer)"
    lat = result["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"] and result["repeats"] == 3 and result["parameters"] > 0


def test_headline_is_meanflow_over_ddim_per_mode():
    def case(label, mode, p50):
        return {
            "label": label,
            "obs_mode": mode,
            "latency_ms": {"min": p50, "p50": p50, "p99": p50},
            "repeats": 1,
        }

    results = [case("lowdim DDIM-10", "lowdim", 40.0), case("lowdim MeanFlow-1", "lowdim", 5.0)]
    assert inference.headline(results) == {"lowdim": 0.125}
    text = inference.format_report({"cases": results, "headline_meanflow1_over_ddim10": {"lowdim": 0.125}})
    assert "MeanFlow-1 / DDIM-10 latency = 0.125" in text


def test_default_cases_cover_every_head_and_step_count():
    labels = {c.label for c in inference.default_cases()}
    for mode in ("lowdim", "image"):
        assert {f"{mode} DDPM-100", f"{mode} DDIM-10", f"{mode} flow-10", f"{mode} MeanFlow-1"} <= labels
        assert {f"{mode} DDIM-10 eager", f"{mode} flow-10 eager", f"{mode} MeanFlow-1 eager"} <= labels
    quick = {c.label for c in inference.default_cases(quick=True, modes=("lowdim",))}
    assert not any("DDPM" in label or "image" in label for label in quick)


def test_eager_reference_cases_run_the_per_step_path_with_the_same_weights():
    fast, eager = inference.Case("lowdim", "meanflow", 1), inference.Case("lowdim", "meanflow", 1, eager=True)
    results = inference.time_cases([fast, eager], [2, 2], 0, TINY_BACKBONE)
    assert [r["label"] for r in results] == ["lowdim MeanFlow-1", "lowdim MeanFlow-1 eager"]
    assert [r["eager_reference"] for r in results] == [False, True]
    reference = inference.build_policy(eager, TINY_BACKBONE)
    assert reference.head.bind_condition is False
    small_unet = {"backbone": {"name": "unet1d", "down_dims": [16, 32], "time_embed_dim": 16}}
    packing = [
        [getattr(m, "cpu_packing", None) for m in inference.build_policy(case, small_unet).modules()]
        for case in (fast, eager)
    ]
    assert True in packing[0] and False not in packing[0]  # the fast case runs packed convolutions
    assert False in packing[1] and True not in packing[1]  # its reference runs PyTorch's own
    ratios = inference.over_eager(results)
    p50 = [r["latency_ms"]["p50"] for r in results]
    assert ratios == {"lowdim MeanFlow-1": round(p50[0] / p50[1], 3)}


def test_image_data_supply_reads_windows_from_disk_and_compares_with_the_step():
    supply = train.data_supply(batch_size=4, batches=1, workers=1, episodes=1)
    assert set(supply["windows_per_s"]) == {
        "batched, 0 workers",
        "zarr reads, batched",
        "zarr reads, one window at a time",
        "batched, 1 workers",
    }
    assert all(rate > 0 for rate in supply["windows_per_s"].values())
    report = train.supply_report(supply, [{"label": train.IMAGE_POLICY, "samples_per_s": 2.0}])
    assert report["supply_over_demand"] == round(max(supply["windows_per_s"].values()) / 2.0, 1)
    assert "supply / demand" in train.format_report({"cases": [], "data": report})


def test_training_throughput_case_runs_real_steps():
    result = train.time_training(
        inference.Case("lowdim", "flow", 0, backbone="transformer"),
        TINY_BACKBONE,
        batch_size=4,
        iters=1,
        warmup=0,
    )
    assert result["samples_per_s"] > 0 and result["batch_size"] == 4 and result["policy_type"] == "chunk"


def test_bench_arguments_are_checked():
    with pytest.raises(ManipError, match="repeats"):
        inference.run(argparse.Namespace(repeats=0, warmup=0, json=True))
    with pytest.raises(ManipError, match="batch-size"):
        train.run(argparse.Namespace(batch_size=0, iters=1, warmup=0, json=True))
    with pytest.raises(ManipError, match="modes"):
        inference.run(argparse.Namespace(repeats=1, warmup=0, modes="depth", json=True))
    with pytest.raises(ManipError, match="threads"):
        inference.run(argparse.Namespace(repeats=1, warmup=0, threads=0, json=True))


def test_gpu_latency_figures_name_the_targets_once_their_cases_ran():
    from manip.bench import gpu

    def row(label, mode, p50):
        return {"label": label, "mode": mode, "latency_ms": {"p50": p50}}

    partial = gpu.latency_figures([row("lowdim DDIM-10", "eager per-step", 30.0)])
    assert (
        partial["ddim10_eager_over_cuda_graphs"] is None and partial["meanflow1_cuda_graphs_p50_ms"] is None
    )
    rows = [
        row("lowdim DDIM-10", "eager per-step", 30.0),
        row("lowdim DDIM-10", "CUDA graphs", 2.5),
        row("lowdim MeanFlow-1", "CUDA graphs", 0.8),
    ]
    figures = gpu.latency_figures(rows)
    assert figures["ddim10_eager_over_cuda_graphs"] == 12.0 and figures["meanflow1_cuda_graphs_p50_ms"] == 0.8


def test_gpu_script_is_valid_bash_and_documents_the_offline_wheels():
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "bench" / "gpu.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert "pip download --only-binary=:all: --python-version 3.12" in text and "--no-index" in text
