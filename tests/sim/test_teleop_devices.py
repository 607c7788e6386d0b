"""Teleop pieces without a display: SpaceMouse HID reports (recorded bytes) through the Device interface, the
pacer's schedule, the HUD's content and layout."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from manip.sim.devices.spacemouse import ButtonGestures, Report, SpaceMouseDevice, parse_report
from manip.sim.hud import PANEL, PANEL_WIDTH, HudState, compose, hud_lines
from manip.sim.pacing import Pacer

# Reports as hidapi's read() returns them, recorded from a SpaceMouse Compact (7-byte motion reports) and a
# SpaceMouse Wireless (one 13-byte report with translation and rotation).
PUSH_RIGHT_AND_AWAY = [0x01, 0x5E, 0x01, 0x88, 0xFF, 0x02, 0x00]  # x=350, y=-120, z=2
TILT_FORWARD = [0x02, 0x00, 0x00, 0xD4, 0xFE, 0x0C, 0x00]  # rx=0, ry=-300, rz=12
WIRELESS_MOTION = [0x01, 0x5E, 0x01, 0x88, 0xFF, 0x02, 0x00, 0x00, 0x00, 0xD4, 0xFE, 0x0C, 0x00]
LEFT_DOWN, RIGHT_DOWN, BOTH_DOWN, RELEASED = (
    [0x03, 0x01, 0x00],
    [0x03, 0x02, 0x00],
    [0x03, 0x03, 0x00],
    [0x03, 0, 0],
)
CENTRED = [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]


def test_parse_motion_and_button_reports():
    assert parse_report(PUSH_RIGHT_AND_AWAY) == Report(translation=(350, -120, 2))
    assert parse_report(bytes(TILT_FORWARD)) == Report(rotation=(0, -300, 12))
    assert parse_report(WIRELESS_MOTION) == Report(translation=(350, -120, 2), rotation=(0, -300, 12))
    assert parse_report(LEFT_DOWN) == Report(buttons=1)
    assert parse_report(BOTH_DOWN) == Report(buttons=3)
    assert parse_report(RELEASED) == Report(buttons=0)
    for ignored in ([], [0x01, 0x5E], [0x17, 1, 2, 3, 4, 5, 6]):  # truncated, unknown report id
        assert parse_report(ignored) == Report()


def test_buttons_act_on_release_and_both_means_discard():
    gestures = ButtonGestures()
    assert [gestures.update(m) for m in (1, 0)] == [None, "gripper"]
    assert [gestures.update(m) for m in (2, 0)] == [None, "finish"]
    assert [gestures.update(m) for m in (1, 3, 2, 0)] == [None, None, None, "discard"]
    assert gestures.update(0) is None


class RecordedHid:
    """A HID device that replays recorded reports (then reads nothing), as hidapi's ``device`` does."""

    def __init__(self, reports):
        self.reports = list(reports)
        self.done = threading.Event()
        self.closed = False

    def read(self, size, timeout_ms):
        if self.reports:
            return self.reports.pop(0)[:size]
        self.done.set()
        threading.Event().wait(timeout_ms / 1000)
        return []

    def close(self):
        self.closed = True


def replay(reports) -> SpaceMouseDevice:
    hid = RecordedHid(reports)
    device = SpaceMouseDevice(hid_device=hid)
    assert hid.done.wait(timeout=10)
    return device


def test_spacemouse_device_turns_reports_into_commands():
    device = replay([PUSH_RIGHT_AND_AWAY, TILT_FORWARD, LEFT_DOWN, RELEASED])
    try:
        command = device.poll(None, None)
        # robot x = -device y, robot y = -device x, z = -z; rotations likewise; small axes zeroed (dead zone)
        assert command.action == pytest.approx([120 / 350, -1.0, 0.0, 300 / 350, 0.0, 0.0, 1.0], abs=1e-6)
        assert command.active and command.event is None  # the left button closed the gripper
    finally:
        device.close()
    assert device.hid.closed


def test_spacemouse_buttons_end_and_discard_episodes():
    device = replay([RIGHT_DOWN, RELEASED])
    assert device.poll(None, None).event == "finish"
    assert device.poll(None, None).event is None  # an event is delivered once
    device.close()
    device = replay([WIRELESS_MOTION, CENTRED, LEFT_DOWN, BOTH_DOWN, RELEASED])
    command = device.poll(None, None)
    assert command.event == "discard" and command.action[6] == -1.0  # both buttons: no gripper toggle
    assert command.action[:3] == pytest.approx([0, 0, 0]) and command.action[3] != 0  # rotation held
    device.close()


class VirtualClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_pacer_never_runs_ahead_and_slips_after_an_overrun():
    clock = VirtualClock()
    pacer = Pacer(20, clock=clock, sleep=clock.sleep)
    work = [0.01, 0.01, 0.2, 0.01, 0.01, 0.06, 0.01]  # seconds of work after each tick
    times = []
    for seconds in work:
        times.append(pacer.tick())
        clock.now += seconds
    assert times[:3] == pytest.approx([0.0, 0.05, 0.10])
    assert times[3] == pytest.approx(0.30)  # 0.15 overran by > a tick: start again from the late tick
    assert times[4:] == pytest.approx([0.35, 0.40, 0.46])  # then on the new schedule, never ahead of it


def test_hud_says_what_the_operator_needs():
    state = HudState(
        task="Lift", instruction="lift the cube", episodes=20, horizon=400, rate=20, seed=7, step=100, kept=3,
        discarded=1, gripper_closed=True, controls=(("Space", "open / close gripper"),),
        phase="prompt", banner=("SUCCESS - keep this episode?",), last="kept episode 3 (seed 6)",
    )  # fmt: skip
    text = "\n".join(line for line, _colour in hud_lines(state))
    for expected in (
        "episode 4 of 20   seed 7", "step 100/400   time left 15.0 s", "gripper CLOSED", "kept 3   discarded 1",
        "SUCCESS - keep this episode?", "kept episode 3 (seed 6)", "Space\topen / close gripper",
    ):  # fmt: skip
        assert expected in text
    scene = np.full((120, 160, 3), 200, dtype=np.uint8)
    frame = compose(scene, hud_lines(state))
    assert frame.shape == (120, 160 + PANEL_WIDTH, 3)
    assert np.array_equal(frame[:, :160], scene)
    blank = compose(scene, [])
    assert np.all(blank[:, 160:] == PANEL) and not np.array_equal(frame, blank)
