"""`manip eval`: results.json per the contract, same seeds → same results, videos, crash isolation, bad input."""

from __future__ import annotations

import math

import pytest

from manip.sim.eval import CRASH_ENV
from manip.sim.stats import wilson_interval
from tests.cli import manip, read_json

CONTRACT_KEYS = {
    "task",
    "episodes",
    "successes",
    "success_rate",
    "ci95",
    "seeds",
    "per_episode",
    "latency_ms",
    "git_commit",
    "checkpoint_id",
}


def _eval(out, *extra, env=None):
    args = [
        "eval",
        "--expert",
        "--task",
        "Lift",
        "--episodes",
        "3",
        "--seed",
        "10",
        "--out",
        str(out),
        *extra,
    ]
    return manip(*args, env=env)


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval1")
    # CUDA_VISIBLE_DEVICES="" (CPU-only jobs, schedulers) must not break EGL device selection for the videos
    result = _eval(out, "--video", "1", env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr
    return out, result


def test_results_json_follows_the_contract(one_worker):
    out, result = one_worker
    results = read_json(out / "results.json")
    assert set(results) >= CONTRACT_KEYS
    assert results["task"] == "Lift" and results["episodes"] == 3
    assert results["seeds"] == [10, 11, 12]
    assert results["successes"] == sum(e["success"] for e in results["per_episode"]) == 3
    assert math.isclose(results["success_rate"], 1.0)
    assert results["ci95"] == pytest.approx(list(wilson_interval(3, 3)))
    for episode in results["per_episode"]:
        assert set(episode) >= {"seed", "success", "steps"} and 0 < episode["steps"] < 400
    assert results["latency_ms"]["p50"] > 0 and results["latency_ms"]["p99"] >= results["latency_ms"]["p50"]
    assert results["checkpoint_id"] is None and results["git_commit"]  # the expert has no checkpoint
    page = (out / "report.html").read_text()  # the page beside results.json
    assert "Lift" in page and "3/3" in page
    assert (results["delay_ms"], results["jitter_ms"], results["held_fraction"]) == (0.0, 0.0, 0.0)
    assert "Lift: 3/3 succeeded" in result.stdout and len(result.stdout.strip().splitlines()) == 1


def test_video_of_the_first_episode(one_worker):
    import av

    out, _ = one_worker
    videos = sorted((out / "videos").glob("*.mp4"))
    assert [v.name for v in videos] == ["episode_000_seed10.mp4"]
    with av.open(str(videos[0])) as container:
        frames = sum(1 for _ in container.decode(video=0))
    steps = read_json(out / "results.json")["per_episode"][0]["steps"]
    assert frames == steps + 1


@pytest.mark.slow
def test_two_workers_same_results_and_crash_isolation(one_worker, tmp_path):
    out, _ = one_worker
    parallel = _eval(tmp_path / "two", "--workers", "2")
    assert parallel.returncode == 0, parallel.stderr
    assert (
        read_json(tmp_path / "two" / "results.json")["per_episode"]
        == read_json(out / "results.json")["per_episode"]
    )
    crashed = _eval(tmp_path / "crash", "--workers", "2", env={CRASH_ENV: "11"})
    assert crashed.returncode == 0, crashed.stderr
    results = read_json(tmp_path / "crash" / "results.json")
    by_seed = {e["seed"]: e for e in results["per_episode"]}
    assert by_seed[11]["success"] is False and "crashed" in by_seed[11]["error"]
    assert by_seed[10]["success"] and by_seed[12]["success"]  # the other episodes still ran
    assert results["successes"] == 2 and "1 error(s)" in crashed.stdout


def test_wilson_interval_known_values():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(50, 50)[1] == 1.0  # exact, so results.json shows 1.0
    assert wilson_interval(0, 50)[0] == 0.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "Lift"], "pass --checkpoint CKPT, --expert or --server"),
        (["--expert", "--task", "Lfit"], "unknown task 'Lfit'"),
        (["--checkpoint", "/nonexistent", "--task", "Lift"], "not a checkpoint directory"),
        (["--server", "http://x:1", "--task", "Lift"], "must look like ws://HOST:PORT"),
        (["--expert", "--task", "Lift", "--workers", "0"], "--workers must be >= 1"),
        (["--expert", "--task", "Lift", "--action-steps", "0"], "--action-steps must be >= 1"),
        (["--expert", "--task", "Lift", "--executor", "fast"], "--executor must be one of receding"),
        (["--expert", "--task", "Lift", "--ensemble-every", "2"], "only with --executor ensemble"),
        (["--expert", "--task", "Lift", "--delay-ms", "-1"], "--delay-ms must be >= 0"),
        (["--expert", "--task", "Lift", "--jitter-ms", "-5"], "--jitter-ms must be >= 0"),
        (["--expert"], "missing required option(s) --task"),
    ],
)
def test_bad_input_one_line(tmp_path, args, message):
    result = manip("eval", *args, "--episodes", "1", "--out", str(tmp_path / "o"))
    assert result.returncode != 0
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
