"""The delay sweep's report: markdown table and plot from per-(mode, delay) rows."""

from __future__ import annotations

from real.delay_sweep import markdown_table, plot


def report() -> dict:
    rows = [
        {"mode": m, "delay_ms": d, "jitter_ms": 0.0, "episodes": 10, "successes": s, "success_rate": s / 10,
         "ci95": [max(0.0, s / 10 - 0.2), min(1.0, s / 10 + 0.2)]}
        for m, d, s in [("receding", 0, 9), ("receding", 200, 4), ("rtc", 0, 9), ("rtc", 200, 8)]
    ]  # fmt: skip
    return {"task": "Lift", "seeds": list(range(10)), "rows": rows}


def test_table_has_one_row_per_mode_and_one_column_per_delay():
    lines = markdown_table(report()).splitlines()
    assert lines[0] == "| mode | 0 ms | 200 ms |"
    assert lines[2] == "| receding | 9/10 (70–100 %) | 4/10 (20–60 %) |"
    assert lines[3].startswith("| rtc | 9/10")


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "sweep.png"
    plot(report(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
