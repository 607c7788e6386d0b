"""End to end on real parts: `manip demo` collects scripted Lift demos in robosuite, trains, evaluates, plots."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_manip_demo_end_to_end_tiny(tmp_path):
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "MANIP_NO_PROGRESS": "1"}
    out = tmp_path / "demo"
    cmd = [sys.executable, "-P", "-m", "manip.cli.main", "demo", "--out", str(out), "--demos", "2", "--steps", "3",
           "--eval-episodes", "1", "--workers", "1", "--video", "1", "--horizon", "24"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((out / "eval" / "results.json").read_text())
    assert results["task"] == "Lift" and results["episodes"] == 1 and results["seeds"] == [100000]
    assert set(results) >= {"successes", "success_rate", "ci95", "per_episode", "latency_ms"}
    assert 0 < results["per_episode"][0]["steps"] <= 24 and "error" not in results["per_episode"][0]
    assert (out / "checkpoint" / "model.safetensors").is_file() and (
        out / "checkpoint" / "config.json"
    ).is_file()
    assert (out / "plot.png").stat().st_size > 0
    assert list((out / "eval" / "videos").glob("*.mp4"))
    assert "success rate:" in result.stdout and str(out / "eval" / "results.json") in result.stdout
    # a second run reuses the demonstrations and the trained policy
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "reusing 2 demonstrations" in again.stderr and "reusing the trained policy" in again.stderr


def test_manip_demo_bad_argument_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-P", "-m", "manip.cli.main", "demo", "--out", str(tmp_path), "--demos", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == "manip demo: --demos must be >= 1"
