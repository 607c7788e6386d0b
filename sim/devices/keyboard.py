"""Keyboard teleop through pynput (needs a display).

Keys: W/S x, A/D y, R/F z, Z/X roll, T/G pitch, C/V yaw (held keys move, released keys stop), Space toggles
the gripper. Enter starts an episode, ends it early, and keeps it at the end-of-episode prompt; Backspace
discards it, Tab redoes it on the same seed, Esc quits.
"""

from __future__ import annotations

import threading

import numpy as np

from manip.core.errors import ManipError, MissingExtra
from manip.sim.devices.base import Command, Device

MOTION_KEYS = {
    "w": (0, 1.0), "s": (0, -1.0), "a": (1, 1.0), "d": (1, -1.0), "r": (2, 1.0), "f": (2, -1.0),
    "z": (3, 1.0), "x": (3, -1.0), "t": (4, 1.0), "g": (4, -1.0), "c": (5, 1.0), "v": (5, -1.0),
}  # fmt: skip
EVENT_KEYS = {"enter": "finish", "backspace": "discard", "tab": "restart", "esc": "quit"}
SPEED = 0.6
CONTROLS = (
    ("W / S", "forward / back"),
    ("A / D", "left / right"),
    ("R / F", "up / down"),
    ("Z / X", "roll"),
    ("T / G", "pitch"),
    ("C / V", "yaw"),
    ("Space", "open / close gripper"),
    ("Enter", "start; end now; keep"),
    ("Backspace", "discard"),
    ("Tab", "redo (same seed)"),
    ("Esc", "quit (keeps what was kept)"),
)


class KeyboardDevice(Device):
    source = "keyboard"
    reads_keyboard = True
    controls = CONTROLS

    def __init__(self):
        try:
            from pynput import keyboard
        except ImportError as exc:  # pynput also raises ImportError when no X server / display is reachable
            if exc.name == "pynput":
                raise MissingExtra("pynput", "teleop") from None
            raise ManipError(
                "keyboard teleop needs a display (pynput found no X server): set DISPLAY, "
                "or pass --device spacemouse / --device scripted"
            ) from None
        self.keyboard = keyboard
        self.lock = threading.Lock()
        self.held: set[str] = set()
        self.gripper = -1.0
        self.event: str | None = None
        self.listener = keyboard.Listener(on_press=self._press, on_release=self._release)
        self.listener.start()

    def _name(self, key) -> str:
        return getattr(key, "char", None) or getattr(key, "name", "")

    def _press(self, key) -> None:
        name = (self._name(key) or "").lower()
        with self.lock:
            if name == "space":
                self.gripper = -self.gripper
            elif name in EVENT_KEYS:
                self.event = EVENT_KEYS[name]
            else:
                self.held.add(name)

    def _release(self, key) -> None:
        with self.lock:
            self.held.discard((self._name(key) or "").lower())

    def start_episode(self, env, seed: int) -> None:
        with self.lock:
            self.gripper, self.event = -1.0, None

    def poll(self, env, obs) -> Command:
        action = np.zeros(7, dtype=np.float32)
        with self.lock:
            moving = [name for name in self.held if name in MOTION_KEYS]
            for name in moving:
                axis, sign = MOTION_KEYS[name]
                action[axis] += sign * SPEED
            action[6] = self.gripper
            event, self.event = self.event, None
        return Command(action, active=bool(moving), event=event)

    def close(self) -> None:
        self.listener.stop()
