"""``manip bench server`` runs end to end (tiny sizes) and reports what batching changes."""

from __future__ import annotations

import argparse

from manip.bench.server import format_report, run


def test_bench_server_reports_overhead_and_batching():
    report = run(argparse.Namespace(requests=10, seconds=0.5, model_ms=20.0, checkpoint=None, json=True))
    assert [r["payload"] for r in report["overhead"]] == ["lowdim", "image"]
    for r in report["overhead"]:
        assert r["overhead_ms"]["p50"] > 0 and r["rtt_ms"]["p50"] >= r["overhead_ms"]["p50"]
    rows = {(r["batching"], r["clients"]): r for r in report["throughput"]}
    assert set(rows) == {(b, c) for b in (True, False) for c in (1, 4, 16)}
    assert rows[(True, 16)]["mean_batch"] > 1
    assert rows[(False, 16)]["mean_batch"] == 1
    assert "throughput" in format_report(report)
