"""3Dconnexion SpaceMouse teleop through hidapi: 6-DoF motion → OSC deltas; buttons toggle the gripper and end,
keep or discard episodes.

HID input reports of the SpaceMouse Compact (USB 256f:c635) and Wireless (256f:c62e receiver, 256f:c62f
cable), parsed by :func:`parse_report` (byte 0 is the report id; axes are signed 16-bit little-endian, about
±350 at full deflection):

- id 1, 7 bytes: translation ``x, y, z`` in bytes 1-2, 3-4, 5-6 (x right, y towards the user, z down);
  some firmware sends 13 bytes, the rotation ``rx, ry, rz`` following in bytes 7-12;
- id 2, 7 bytes: rotation ``rx, ry, rz`` in bytes 1-2, 3-4, 5-6;
- id 3, 2+ bytes: buttons, byte 1 a bit mask (bit 0 left, bit 1 right); all zero when released.

Buttons act when released (:class:`ButtonGestures`), so a two-button press is never mistaken for one button:
left toggles the gripper, right ends the episode (or starts it; keeps it at the end-of-episode prompt), both
discard it. The viewer window's Enter / Backspace / Tab / Esc work too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from manip.core.errors import ManipError, require
from manip.sim.devices.base import Command, Device

VENDOR_ID = 0x256F  # 3Dconnexion
REPORT_SIZE = 13
SCALE = 350.0  # raw axis value for a full-scale action
DEADZONE = 0.05
LEFT, RIGHT = 0b01, 0b10
CONTROLS = (
    ("push/pull", "move the gripper"),
    ("twist/tilt", "rotate the gripper"),
    ("left btn", "open / close gripper"),
    ("right btn", "start; end now; keep"),
    ("both btns", "discard"),
    ("Enter", "start; end now; keep"),
    ("Backspace", "discard"),
    ("Tab", "redo (same seed)"),
    ("Esc", "quit (keeps what was kept)"),
)


@dataclass(frozen=True)
class Report:
    """One parsed HID report: whichever of translation, rotation and button mask it carries (else None)."""

    translation: tuple[int, int, int] | None = None
    rotation: tuple[int, int, int] | None = None
    buttons: int | None = None


def _int16s(data: bytes, start: int) -> tuple[int, int, int]:
    values = np.frombuffer(bytes(data[start : start + 6]), dtype="<i2")
    return int(values[0]), int(values[1]), int(values[2])


def parse_report(data) -> Report:
    """Parse one HID input report (``bytes`` or a list of ints; layout in the module docstring).

    Unknown report ids and truncated reports give an empty :class:`Report`.
    """
    data = bytes(data)
    if not data:
        return Report()
    kind = data[0]
    if kind == 1 and len(data) >= 13:
        return Report(translation=_int16s(data, 1), rotation=_int16s(data, 7))
    if kind == 1 and len(data) >= 7:
        return Report(translation=_int16s(data, 1))
    if kind == 2 and len(data) >= 7:
        return Report(rotation=_int16s(data, 1))
    if kind == 3 and len(data) >= 2:
        return Report(buttons=data[1] & (LEFT | RIGHT))
    return Report()


def motion_from(translation, rotation) -> np.ndarray:
    """Raw device axes → the 6-D OSC action (robot frame, in [-1, 1], small deflections zeroed)."""
    x, y, z = translation
    rx, ry, rz = rotation
    motion = np.clip(np.array([-y, -x, -z, -ry, -rx, -rz], dtype=np.float64) / SCALE, -1.0, 1.0)
    motion[np.abs(motion) < DEADZONE] = 0.0
    return motion


class ButtonGestures:
    """Turn button masks into actions on release: ``gripper`` (left), ``finish`` (right), ``discard`` (both)."""

    def __init__(self):
        self.pressed = 0

    def update(self, mask: int) -> str | None:
        if mask:
            self.pressed |= mask
            return None
        pressed, self.pressed = self.pressed, 0
        return {LEFT: "gripper", RIGHT: "finish", LEFT | RIGHT: "discard"}.get(pressed)


def open_spacemouse(vendor_id: int = VENDOR_ID):
    """Open the first HID device of ``vendor_id`` (one-line error when there is none)."""
    hid = require("hid", "teleop")
    found = [d for d in hid.enumerate() if d.get("vendor_id") == vendor_id]
    if not found:
        raise ManipError(
            f"no SpaceMouse found (USB vendor 0x{vendor_id:04x}): plug it in and allow access to its "
            "hidraw device (udev rule), or pass --device keyboard / --device scripted"
        )
    device = hid.device()
    device.open(found[0]["vendor_id"], found[0]["product_id"])
    return device


class SpaceMouseDevice(Device):
    """The SpaceMouse behind :class:`Device`; ``hid_device`` (anything with ``read(size, timeout_ms)`` and
    ``close()``) defaults to the first 3Dconnexion device found."""

    source = "spacemouse"
    controls = CONTROLS

    def __init__(self, hid_device=None):
        self.hid = hid_device if hid_device is not None else open_spacemouse()
        self.lock = threading.Lock()
        self.translation, self.rotation = (0, 0, 0), (0, 0, 0)
        self.buttons = ButtonGestures()
        self.gripper = -1.0
        self.event: str | None = None
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while self.running:
            data = self.hid.read(REPORT_SIZE, 50)
            if data:
                self.handle(data)

    def handle(self, data) -> None:
        """Apply one raw HID report to the device state."""
        report = parse_report(data)
        with self.lock:
            if report.translation is not None:
                self.translation = report.translation
            if report.rotation is not None:
                self.rotation = report.rotation
            if report.buttons is not None:
                gesture = self.buttons.update(report.buttons)
                if gesture == "gripper":
                    self.gripper = -self.gripper
                elif gesture:
                    self.event = gesture

    def start_episode(self, env, seed: int) -> None:
        with self.lock:
            self.gripper, self.event = -1.0, None

    def poll(self, env, obs) -> Command:
        with self.lock:
            motion = motion_from(self.translation, self.rotation)
            event, self.event = self.event, None
            gripper = self.gripper
        action = np.concatenate([motion, [gripper]]).astype(np.float32)
        return Command(action, active=bool(np.any(motion)), event=event)

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=1.0)
        self.hid.close()
