"""Progress in a log: plain lines now and then when stderr is not a terminal; none when quiet or under CI."""

from __future__ import annotations

from manip.core.progress import _log_lines, progress, progress_line


def test_log_lines_report_done_total_pace_and_time_left(capsys):
    assert list(_log_lines(range(4), desc="eval", total=4, unit="ep", every=0.0)) == [0, 1, 2, 3]
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "eval: 1/4 ep",
        "eval: 2/4 ep",
        "eval: 3/4 ep",
    ]  # not at 4/4
    assert all("left" in line for line in lines)


def test_log_lines_wait_for_the_interval(capsys):
    assert list(_log_lines(range(50), desc="train", total=50, unit="step", every=3600.0)) == list(range(50))
    assert capsys.readouterr().err == ""


def test_progress_line_wording():
    assert progress_line("eval", 57, 200, "ep", 57 * 30.0) == "eval: 57/200 ep, 2.0 ep/min, about 72 min left"
    assert (
        progress_line("train", 500, 1000, "step", 50.0)
        == "train: 500/1000 step, 10.0 step/s, about 50 s left"
    )
    assert progress_line("merge", 3, None, "episode", 90.0) == "merge: 3 episode, 2.0 episode/min"


def test_quiet_and_ci_show_nothing(capsys, monkeypatch):
    monkeypatch.setenv("MANIP_PROGRESS_EVERY", "0")
    monkeypatch.delenv("MANIP_NO_PROGRESS", raising=False)
    assert list(progress(range(3), desc="eval", total=3, quiet=True)) == [0, 1, 2]
    assert capsys.readouterr().err == ""
    assert list(progress(range(3), desc="eval", total=3)) == [0, 1, 2]  # captured stderr is not a terminal
    assert capsys.readouterr().err.count("eval: ") == 2
    monkeypatch.setenv("MANIP_NO_PROGRESS", "1")
    assert list(progress(range(3), desc="eval", total=3)) == [0, 1, 2]
    assert capsys.readouterr().err == ""
