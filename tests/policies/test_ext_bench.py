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
