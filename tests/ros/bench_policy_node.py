"""Benchmark (not a test): the policy node's achieved control rate, command jitter, round-trip latency and the
time from a killed server to a hold, against ``manip serve --synthetic image`` on 127.0.0.1.

    .venv/bin/python -m tests.ros.bench_policy_node [--seconds 10] [--rates 10 30] [--out ros-bench.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.ros.conftest import RosRun, Server, node_params, ros_environment


def measure(rate: float, seconds: float, tmp: Path) -> dict:
    server = Server(tmp)
    run = RosRun(ros_environment(), tmp, node_params(server.url, control_rate_hz=rate))
    try:
        assert run.ask("enable", data=True)["success"]
        start = run.wait_for(lambda e: bool(e["points"]), kind="command")["t"]
        time.sleep(seconds)
        stamps = np.array([e["t"] for e in run.events("command", since=start) if e["t"] <= start + seconds])
        gaps_ms = np.diff(stamps) * 1e3
        diagnostics = run.events("diagnostics")[-1]["values"]
        killed = run.ask("events", since=0.0)["now"]
        server.stop()
        held = run.wait_for(lambda e: e["held"], kind="status", since=killed)
        return {
            "control_rate_hz": rate,
            "seconds": seconds,
            "commands": len(stamps),
            "achieved_rate_hz": float((len(stamps) - 1) / (stamps[-1] - stamps[0])),
            "interval_ms": {q: float(np.percentile(gaps_ms, p)) for q, p in (("p50", 50), ("p99", 99))},
            "max_interval_ms": float(gaps_ms.max()),
            "round_trip_ms": {
                "p50": float(diagnostics["latency_p50_ms"]),
                "p99": float(diagnostics["latency_p99_ms"]),
            },
            "kill_to_hold_ms": float((held["t"] - killed) * 1e3),
        }
    finally:
        run.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", type=float, nargs="+", default=[10.0, 30.0])
    parser.add_argument("--out", type=Path, default=Path("ros-bench.json"))
    args = parser.parse_args()
    results = []
    for rate in args.rates:
        with tempfile.TemporaryDirectory() as tmp:
            result = measure(rate, args.seconds, Path(tmp))
        results.append(result)
        print(json.dumps(result))
    report = {"machine": platform.node(), "date": time.strftime("%Y-%m-%d"), "results": results}
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
