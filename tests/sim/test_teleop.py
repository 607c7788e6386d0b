"""Keyboard teleop as an operator uses it: `manip collect` on a private Xvfb display, real X key events from
xdotool, the viewer window read back from the screen, the store checked afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from manip.data.store import EpisodeStore
from manip.sim.hud import PANEL, YELLOW
from tests.cli import ROOT

pytestmark = pytest.mark.slow  # each test starts robosuite in a subprocess

RATE = 20.0  # Lift's control rate


@pytest.fixture(scope="module")
def display():
    """A private Xvfb display (its own number, picked by Xvfb); yields e.g. ':7'."""
    for tool, package in (("Xvfb", "xvfb"), ("xdotool", "xdotool")):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing (apt-get install {package}, or run .ci/setup.sh)")
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    assert number, "Xvfb did not report its display number"
    yield f":{number}"
    server.terminate()
    server.wait(timeout=10)


class Collect:
    """`manip collect ...` running on ``display``; its stderr is read line by line as it comes."""

    def __init__(self, display: str, *args: str):
        self.display = display
        env = dict(os.environ, DISPLAY=display, MUJOCO_GL="egl", MANIP_NO_PROGRESS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "manip.cli.main", "collect", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, count: int = 1, timeout: float = 120) -> None:
        """Wait until ``text`` has appeared in ``count`` stderr lines."""
        deadline = time.monotonic() + timeout
        while sum(text in line for line in self.lines) < count:
            if self.proc.poll() is not None and not self.reader.is_alive():
                raise AssertionError(f"collect exited ({self.proc.returncode}) before '{text}': {self.lines}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no '{text}' (x{count}) within {timeout} s: {self.lines}")
            time.sleep(0.05)

    def key(self, *keys: str) -> None:
        xdotool(self.display, "key", *keys)

    def hold(self, key: str, seconds: float) -> None:
        xdotool(self.display, "keydown", key)
        time.sleep(seconds)
        xdotool(self.display, "keyup", key)

    def finish(self, timeout: float = 60) -> str:
        """Wait for exit; returns stdout."""
        self.proc.wait(timeout=timeout)
        self.reader.join(timeout=5)
        return self.proc.stdout.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def xdotool(display: str, *args: str) -> str:
    done = subprocess.run(
        ["xdotool", *args], env=dict(os.environ, DISPLAY=display), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def run_collect(display):
    started: list[Collect] = []

    def start(*args: str) -> Collect:
        started.append(Collect(display, *args))
        return started[-1]

    yield start
    for collect in started:
        collect.kill()


def window_shot(display: str) -> np.ndarray:
    """The viewer window's pixels, as the X server shows them."""
    from PIL import ImageGrab

    window = xdotool(display, "search", "--name", "manip collect").split()[0]
    geometry = dict(
        line.split("=") for line in xdotool(display, "getwindowgeometry", "--shell", window).split()
    )
    x, y, w, h = (int(geometry[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
    shot = np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"))
    return shot[y : y + h, x : x + w]


def assert_paced(timestamps: list[float], steps: int) -> None:
    """Step k ran no earlier than (k - 1) control periods after the first: the loop keeps the control rate
    (unpaced, 30 steps take ~0.2 s)."""
    times = np.asarray(timestamps)
    assert times.shape == (steps,) and times[0] == 0.0
    assert np.all(np.diff(times) > 0)
    assert np.all(times[1:] >= (np.arange(1, steps) - 1) / RATE), times


def test_keyboard_episode_waits_for_the_operator_and_is_kept_at_the_prompt(run_collect, tmp_path):
    out = tmp_path / "teleop.zarr"
    collect = run_collect(
        "--task", "Lift", "--device", "keyboard", "--episodes", "1", "--out", str(out), "--horizon", "30"
    )
    collect.wait_for("move to start")
    time.sleep(1.0)  # idle: the episode must not start (nor time out) before the first move
    assert not any("TIME UP" in line for line in collect.lines)
    collect.hold("w", 0.4)
    collect.wait_for("TIME UP")  # the prompt: the scene is frozen, the question is on screen

    frame = window_shot(collect.display)
    scene, hud = frame[:, :480], frame[:, 480:]
    assert frame.shape[:2] == (480, 480 + 400)
    assert len(np.unique(scene.reshape(-1, 3), axis=0)) > 200 and scene.std() > 20  # a rendered scene
    not_panel = np.any(np.abs(hud.astype(int) - PANEL) > 30, axis=-1)
    assert not_panel.mean() > 0.02  # text on the HUD panel
    prompt = np.all(np.abs(hud.astype(int) - YELLOW) < 40, axis=-1)
    assert prompt.sum() > 50  # the keep/discard question in its colour

    collect.key("Return")
    stdout = collect.finish()
    assert collect.proc.returncode == 0, collect.lines
    assert "kept 1 episode(s) of 1 tried" in stdout
    assert any("kept episode 1 (seed 0, not successful, 30 steps)" in line for line in collect.lines)
    store = EpisodeStore.open(out)
    assert store.num_episodes == 1 and store.episode_lengths.tolist() == [30]
    meta = store.episode_meta(0)
    assert meta["seed"] == 0 and meta["source"] == "keyboard" and meta["task"] == "Lift"
    assert meta["success"] is False and meta["ended"] == "timeout" and meta["control_rate"] == RATE
    actions = store.get_episode(0, keys=["action"])["action"]
    assert actions[0, 0] > 0  # the first recorded step is the operator's first move (W: +x)
    assert np.all(actions[:, 6] == -1.0)  # gripper open throughout
    assert_paced(meta["timestamps"], 30)


def test_redo_discard_keep_and_quit(run_collect, tmp_path):
    out = tmp_path / "teleop.zarr"
    collect = run_collect(
        "--task", "Lift", "--device", "keyboard", "--episodes", "3", "--out", str(out), "--horizon", "8"
    )
    collect.wait_for("(seed 0): move to start")
    collect.hold("r", 0.2)
    collect.wait_for("TIME UP")
    collect.key("Tab")  # redo: the same seed again
    collect.wait_for("(seed 0): move to start", count=2)
    collect.hold("r", 0.2)
    collect.wait_for("TIME UP", count=2)
    collect.key("BackSpace")  # discard: on to the next seed
    collect.wait_for("discarded seed 0")
    collect.wait_for("(seed 1): move to start")
    collect.hold("space", 0.1)  # closing the gripper starts the episode too
    collect.wait_for("TIME UP", count=3)
    collect.key("Return")
    collect.wait_for("(seed 2): move to start")
    collect.key("Escape")
    stdout = collect.finish()
    assert collect.proc.returncode == 0, collect.lines
    assert "stopped by operator; kept 1 episode(s) of 2 tried" in stdout
    store = EpisodeStore.open(out)
    assert store.num_episodes == 1
    meta = store.episode_meta(0)
    assert meta["seed"] == 1 and meta["success"] is False
    actions = store.get_episode(0, keys=["action"])["action"]
    assert np.all(actions[:, 6] == 1.0)  # the gripper closed from the first step


def test_append_continues_after_the_stores_last_seed_with_auto_keep(run_collect, tmp_path):
    from tests.cli import manip

    out = tmp_path / "mixed.zarr"
    scripted = manip(
        "collect", "--task", "Lift", "--device", "scripted", "--episodes", "2", "--out", str(out)
    )
    assert scripted.returncode == 0, scripted.stderr
    collect = run_collect(
        "--task", "Lift", "--device", "keyboard", "--episodes", "2", "--out", str(out), "--horizon", "8",
        "--auto-keep", "--keep-failures",
    )  # fmt: skip
    collect.wait_for("(seed 2): move to start")
    collect.hold("a", 0.2)
    collect.wait_for("kept episode 1 (seed 2")  # no question with --auto-keep
    collect.wait_for("(seed 3): move to start")
    collect.key("Escape")
    stdout = collect.finish()
    assert collect.proc.returncode == 0 and "stopped by operator" in stdout, collect.lines
    store = EpisodeStore.open(out)
    metas = [store.episode_meta(i) for i in range(store.num_episodes)]
    assert [m["seed"] for m in metas] == [0, 1, 2]
    assert [m["source"] for m in metas] == ["scripted", "scripted", "keyboard"]
    assert_paced(metas[2]["timestamps"], 8)


@pytest.mark.slow
def test_corrections_of_a_policy_use_the_same_window_and_prompt(run_collect, tmp_path):
    from tests.sim.tiny_checkpoint import lift_checkpoint

    checkpoint = lift_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "rac.zarr"
    collect = run_collect(
        "--task", "Lift", "--device", "keyboard", "--episodes", "1", "--out", str(out), "--horizon", "60",
        "--policy", str(checkpoint),
    )  # fmt: skip
    collect.wait_for("move to start")
    collect.key("Return")  # start: the policy drives
    time.sleep(0.5)
    collect.hold("d", 1.5)  # the operator takes over (the policy's first chunk may still be computing)
    collect.wait_for("TIME UP")
    frame = window_shot(collect.display)
    assert np.all(np.abs(frame[:, 480:].astype(int) - YELLOW) < 40, axis=-1).sum() > 50
    collect.key("Return")
    assert collect.finish() and collect.proc.returncode == 0, collect.lines
    store = EpisodeStore.open(out)
    assert store.num_episodes == 1 and store.episode_lengths.tolist() == [60]
    episode = store.get_episode(0, keys=["intervention", "action"])
    flags = episode["intervention"]
    assert flags.any() and not flags[0]  # the policy first, then the operator
    assert np.all(episode["action"][flags, 1] < 0)  # D: -y, the operator's own action was recorded
