"""The static pages, loaded in a real headless Chromium: `manip data view` (episode table, videos, plots with
intervention spans) and the eval/sweep ``report.html``; no console errors, videos decode and play, plots render."""

from __future__ import annotations

import numpy as np
import pytest

from manip.data.store import EpisodeStore
from manip.data.video import write_video
from manip.data.view.html import write_page
from manip.data.view.store_page import true_spans
from manip.sim.report import write_report
from tests.cli import manip
from tests.data.browser import load_page
from tests.data.fixtures import lerobot_fixture as fx

FPS = 10.0


def viewable_store(path, lengths=(12, 8)) -> None:
    rng = np.random.default_rng(0)
    store = EpisodeStore.create(path)
    store.set_attrs(control_rate=FPS)
    for i, n in enumerate(lengths):
        intervention = np.zeros(n, bool)
        intervention[2:5] = i == 0
        store.add_episode(
            {
                "action": rng.normal(size=(n, 4)).astype(np.float32),
                "robot0_eef_pos": rng.normal(size=(n, 3)),
                "intervention": intervention,
                "agentview_image": np.stack([fx.frame(i, t) for t in range(n)]),
            },
            {"task": "Lift", "source": "teleop", "success": i == 0},
        )
    store.close()


def test_true_spans():
    assert true_spans(np.array([0, 1, 1, 0, 0, 1], bool)) == [(1, 3), (5, 6)]
    assert true_spans(np.zeros(4, bool)) == []


def test_data_view_pages_play_in_a_browser(tmp_path):
    viewable_store(tmp_path / "s.zarr")
    result = manip("data", "view", tmp_path / "s.zarr", "--out", tmp_path / "view")
    assert result.returncode == 0, result.stderr
    index = load_page(tmp_path / "view" / "index.html")
    assert index.errors == [] and index.rows == 2
    assert index.links == ["episode_0000.html", "episode_0001.html"]
    first = load_page(tmp_path / "view" / "episode_0000.html")
    assert first.errors == []
    (clip,) = first.videos
    assert (
        clip["error"] is None and clip["played"] and (clip["width"], clip["height"]) == (fx.WIDTH, fx.HEIGHT)
    )
    assert clip["duration"] == pytest.approx(12 / FPS, abs=0.15)
    assert [p["lines"] for p in first.plots] == [4, 3]  # action (4 dims), robot0_eef_pos (3 dims)
    assert all(p["spans"] == 1 and p["width"] > 100 and p["height"] > 50 for p in first.plots)
    second = load_page(tmp_path / "view" / "episode_0001.html")
    assert second.errors == [] and all(p["spans"] == 0 for p in second.plots)


def _eval_results(episodes: int) -> dict:
    return {
        "task": "Lift",
        "episodes": episodes,
        "successes": 2,
        "success_rate": 2 / episodes,
        "ci95": [0.19, 0.93],
        "seeds": list(range(episodes)),
        "per_episode": [{"seed": i, "success": i < 2, "steps": 30 + i} for i in range(episodes)],
        "latency_ms": {"p50": 4.2, "p99": 9.1},
        "git_commit": "abc123",
        "checkpoint_id": None,
    }


def test_eval_report_links_videos_and_draws_the_latency_histogram(tmp_path):
    (tmp_path / "videos").mkdir()
    for i in range(2):
        write_video(
            tmp_path / "videos" / f"episode_{i:03d}_seed{i}.mp4",
            np.stack([fx.frame(i, t) for t in range(10)]),
            20,
        )
    latencies = np.random.default_rng(0).gamma(4.0, 1.2, 200)
    page = write_report(tmp_path, _eval_results(3), latencies_ms=latencies)
    assert page == tmp_path / "report.html"
    report = load_page(page)
    assert report.errors == [] and report.rows == 3
    assert report.links == ["videos/episode_000_seed0.mp4", "videos/episode_001_seed1.mp4"]
    assert len(report.videos) == 2 and all(v["played"] and v["error"] is None for v in report.videos)
    assert report.videos[0]["duration"] == pytest.approx(0.5, abs=0.1)
    (hist,) = report.plots
    assert hist["bars"] == 20 and hist["width"] > 100
    text = page.read_text()
    assert (
        "66.7%" in text
        and "19.0% – 93.0%" in text
        and "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )


def test_sweep_report_table_and_chart(tmp_path):
    rows = [
        {"cell": f"c{i}", "task": "Lift", "policy": "expert", "setting": s, "seed": 0, "success_rate": r,
         "ci_low": max(0, r - 0.2), "ci_high": min(1, r + 0.2), "error": ""}
        for i, (s, r) in enumerate([("chunk8", 0.9), ("chunk4", 0.6)])
    ]  # fmt: skip
    rows.append({"cell": "c2", "task": "Lift", "policy": "expert", "setting": "bad", "seed": 0, "success_rate": None,
                 "ci_low": None, "ci_high": None, "error": "worker died"})  # fmt: skip
    (tmp_path / "cells" / "c0").mkdir(parents=True)
    write_report(tmp_path / "cells" / "c0", _eval_results(3))
    report = load_page(write_report(tmp_path, rows))
    assert report.errors == [] and report.rows == 3 and report.links == ["cells/c0/report.html"]
    (chart,) = report.plots
    assert chart["bars"] == 2


def test_the_browser_check_sees_a_broken_page(tmp_path):
    page = write_page(tmp_path / "broken.html", "broken", '<video src="videos/missing.mp4"></video>')
    report = load_page(page)
    assert report.errors and report.videos[0]["error"] is not None and not report.videos[0]["played"]
