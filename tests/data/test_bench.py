"""`manip bench data` runs end to end on a tiny configuration; the dispatcher handles missing targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from manip.bench import commands
from manip.core.errors import ManipError
from tests.data.conftest import run_on_a_tty

ROOT = Path(__file__).resolve().parents[2]


def test_bench_data_json_and_out_file(tmp_path):
    out = tmp_path / "figures.json"
    args = ["--episodes", "2", "--steps", "20", "--samples", "10", "--cases", "lowdim,cams84", "--json"]
    result = subprocess.run(
        [sys.executable, "-P", "-m", "manip.cli.main", "bench", "data", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert json.loads(out.read_text()) == figures
    assert [c["case"] for c in figures["cases"]] == ["lowdim", "cams84"]
    assert figures["machine"]["cpu_count"] == os.cpu_count() and figures["machine"]["python"]
    for case in figures["cases"]:
        assert (
            case["steps"] == 40
            and case["write_steps_per_s"] > 0
            and case["write_mb_per_s"] > 0
            and case["read_samples_per_s"] > 0
        )
    assert figures["cases"][1]["window"]["cameras"] == 2
    codecs = {row["codec"]: row for row in figures["codecs"]["84x84"]}
    assert codecs["blosc-zstd1 (default)"]["lossless"] and codecs["blosc-zstd1 (default)"]["ratio"] > 1


def test_bench_bad_case_is_one_line():
    result = subprocess.run(
        [sys.executable, "-P", "-m", "manip.cli.main", "bench", "data", "--cases", "nope", "--no-codecs"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "unknown case(s) nope" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_every_target_resolves_through_the_registry():
    for target in commands.TARGETS:
        module = commands._load(target)
        assert module.__name__ == f"manip.bench.{target}" and callable(module.run)
    with pytest.raises(ManipError, match="unknown benchmark 'no_such_target'"):
        commands._load("no_such_target")


def test_bench_out_that_is_a_directory_fails_before_running(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-P",
            "-m",
            "manip.cli.main",
            "bench",
            "data",
            "--no-codecs",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"manip bench: {tmp_path}: is a directory; --out takes a file name\n"


def test_bench_shows_progress_on_a_tty_and_none_in_json_mode():
    args = ["bench", "data", "--cases", "lowdim", "--episodes", "1", "--steps", "16", "--samples", "2"]
    code, stderr = run_on_a_tty(*args, "--no-codecs")
    assert code == 0 and "bench data" in stderr, stderr
    code, stderr = run_on_a_tty(*args, "--no-codecs", "--json")
    assert code == 0 and stderr == "", stderr
