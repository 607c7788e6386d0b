"""A real writer process killed with SIGKILL: the store still validates and holds every committed episode."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from manip.data.store import EpisodeStore
from manip.data.validate import validate_store
from tests.data.writer_child import episode_length, episode_step

ROOT = Path(__file__).resolve().parents[2]


def start_writer(path: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.data.writer_child", str(path), mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def recover_cli(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-P", "-m", "manip.cli.main", "data", "recover", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def kill_after(proc: subprocess.Popen, line_wanted: str, count: int) -> list[str]:
    """Read stdout until ``line_wanted`` was seen ``count`` times, then SIGKILL the writer; return the lines."""
    lines = []
    seen = 0
    for line in proc.stdout:
        lines.append(line.strip())
        seen += line.startswith(line_wanted)
        if seen >= count:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    return lines


def assert_episodes_intact(path: Path, at_least: int) -> EpisodeStore:
    report = validate_store(path)
    assert report.ok, report.problems
    store = EpisodeStore.open(path)
    assert store.num_episodes >= at_least
    for i in range(store.num_episodes):
        assert store.episode_lengths[i] == episode_length(i)
        got = store.get_episode(i)
        for t in range(episode_length(i)):
            for key, value in episode_step(i, t).items():
                np.testing.assert_array_equal(got[key][t], value)
        assert got["intervention"].tolist() == [t == 1 for t in range(episode_length(i))]
        assert store.episode_meta(i) == {"task": "Lift", "seed": i, "success": i % 2 == 0}
    return store


def test_sigkill_mid_episode_keeps_committed_and_ignores_tail(tmp_path):
    path = tmp_path / "s.zarr"
    proc = start_writer(path, "stream")
    lines = kill_after(proc, "streaming", 1)
    assert lines[:2] == ["committed 0", "committed 1"]
    store = assert_episodes_intact(path, at_least=2)
    assert store.num_episodes == 2
    assert store.uncommitted_steps() >= 4  # the partial episode's steps are on disk but ignored
    tail = store.uncommitted_steps()
    recovered_path = tmp_path / "recovered.zarr"
    shutil.copytree(path, recovered_path)
    cli = recover_cli(recovered_path)
    assert cli.returncode == 0 and "recovered episode 2" in cli.stdout, cli.stderr
    recovered = EpisodeStore.open(recovered_path)
    assert recovered.episode_meta(2) == {"recovered": True, "success": None}
    assert tail - 2 <= recovered.episode_lengths[2] <= tail - 1
    got = recovered.get_episode(2)
    for t in range(int(recovered.episode_lengths[2])):
        np.testing.assert_array_equal(got["action"][t], episode_step(2, t)["action"])
        np.testing.assert_array_equal(got["agentview_image"][t], episode_step(2, t)["agentview_image"])
    assert validate_store(recovered_path).ok and recovered.uncommitted_steps() == 0
    assert "nothing to recover" in recover_cli(recovered_path).stdout
    appended = EpisodeStore.open(path, mode="a")
    new = {
        k: np.stack([episode_step(2, t)[k] for t in range(episode_length(2))])
        for k in ("action", "agentview_image")
    }
    new["intervention"] = np.array([t == 1 for t in range(episode_length(2))])
    appended.add_episode(new, {"task": "Lift", "seed": 2, "success": True})
    assert_episodes_intact(path, at_least=3)
    assert EpisodeStore.open(path).uncommitted_steps() == 0


@pytest.mark.parametrize("commits", [1, 7, 20])
def test_sigkill_during_rapid_commits(tmp_path, commits):
    path = tmp_path / "s.zarr"
    kill_after(start_writer(path, "commits"), "committed", commits)
    assert_episodes_intact(path, at_least=commits)
    # the store stays appendable by a new writer after the crash
    kill_after(start_writer(path, "append"), "committed", 2)
    assert_episodes_intact(path, at_least=commits + 2)
