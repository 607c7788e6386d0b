"""Success vs injected delay: `manip eval --delay-ms` on the one worker loop, and the sweep's delay table and plot."""

from __future__ import annotations

import pytest

from tests.cli import manip, read_json
from tests.sim.tiny_checkpoint import lift_checkpoint


def groups() -> list[dict]:
    """Seed-pooled groups as :func:`manip.sim.sweep_report.pool_seeds` makes them."""
    made = []
    for mode, delay, successes in [("receding", 0, 9), ("receding", 200, 4), ("rtc", 0, 9), ("rtc", 200, 8)]:
        made.append(
            {
                "task": "Lift", "policy": "run/checkpoint", "setting": f"{mode} {delay}", "mode": mode,
                "delay_ms": float(delay), "jitter_ms": 0.0, "seeds": [0], "episodes": 10, "successes": successes,
                "success_rate": successes / 10, "ci_low": max(0.0, successes / 10 - 0.2),
                "ci_high": min(1.0, successes / 10 + 0.2), "held_fraction": 0.0, "failed": 0,
            }
        )  # fmt: skip
    return made


def test_table_has_one_row_per_mode_and_one_column_per_delay():
    from manip.sim.sweep_report import delay_table

    lines = delay_table(groups()).splitlines()
    assert lines[0] == "| mode | 0 ms | 200 ms |"
    assert lines[2] == "| receding | 9/10 (70–100 %) | 4/10 (20–60 %) |"
    assert lines[3].startswith("| rtc | 9/10")


def test_plot_writes_a_titled_png(tmp_path):
    from PIL import Image

    from manip.sim.sweep_report import plot_delay

    path = tmp_path / "delay.png"
    plot_delay(groups(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    title = Image.open(path).text["Title"]
    assert "Success vs injected delay: Lift, run/checkpoint" in title and "10 episodes per point" in title


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return lift_checkpoint(tmp_path_factory.mktemp("lift") / "checkpoint")


def _eval_with_delay(checkpoint, out, mode):
    result = manip(
        "eval", "--checkpoint", checkpoint, "--task", "Lift", "--episodes", "1", "--seed", "7", "--horizon", "12",
        "--executor", mode, "--delay-ms", "100", "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return read_json(out / "results.json")


@pytest.mark.slow
def test_eval_injects_delay_in_the_worker_loop(checkpoint, tmp_path):
    """A tiny untrained Lift policy in robosuite: the first chunk arrives after 100 ms (2 ticks at 20 Hz)."""
    rtc = _eval_with_delay(checkpoint, tmp_path / "rtc", "rtc")
    assert (rtc["delay_ms"], rtc["jitter_ms"]) == (100.0, 0.0)  # results.json records the delay
    assert rtc["per_episode"][0]["steps"] == 12 and rtc["per_episode"][0]["held_ticks"] == 2  # then no holds
    receding = _eval_with_delay(checkpoint, tmp_path / "receding", "receding")
    assert receding["per_episode"][0]["held_ticks"] == 4  # holds 2 ticks for each of its two chunks
    assert receding["held_fraction"] == pytest.approx(4 / 12)


@pytest.mark.slow
def test_delay_sweep_file_writes_the_delay_table_and_plot(checkpoint, tmp_path):
    """The shipped delay sweep, shrunk: executor modes x delays through `manip sweep`, seeds pooled."""
    out = tmp_path / "out"
    result = manip(
        "sweep", "configs/sweeps/delay.yaml", f"policies=[{checkpoint}]", "seeds=[7, 8]", "episodes=1",
        "grid.executor=[rtc, receding]", "grid.delay_ms=[0, 100]", "settings=[{horizon: 12}]", "workers=2",
        "--out", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = (out / "delay.md").read_text().splitlines()
    assert lines[0] == "| mode | 0 ms | 100 ms |"
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| rtc", "| receding"]
    assert all(line.count("0/2 (") == 2 for line in lines[2:])  # two seeds pooled per point
    assert (out / "delay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cell = next(d for d in (out / "cells").iterdir() if "executor-receding-delay_ms-100" in d.name)
    results = read_json(cell / "results.json")
    assert results["delay_ms"] == 100.0 and results["per_episode"][0]["held_ticks"] == 4
