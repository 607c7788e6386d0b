"""3Dconnexion SpaceMouse teleop through hidapi: 6-DoF motion → OSC deltas; left button toggles the gripper,
right button finishes the episode (hold both to discard it)."""

from __future__ import annotations

import threading

import numpy as np

from manip.core.errors import ManipError, require
from manip.sim.devices.base import Command, Device

VENDOR_ID = 0x256F  # 3Dconnexion
SCALE = 350.0  # raw axis value for a full-scale action
DEADZONE = 0.05


def _axis(low: int, high: int) -> float:
    value = low | (high << 8)
    return float(value - 65536 if value >= 32768 else value)


class SpaceMouseDevice(Device):
    source = "spacemouse"

    def __init__(self, vendor_id: int = VENDOR_ID):
        hid = require("hid", "teleop")
        found = [d for d in hid.enumerate() if d.get("vendor_id") == vendor_id]
        if not found:
            raise ManipError(
                f"no SpaceMouse found (USB vendor 0x{vendor_id:04x}): plug it in and allow access to its "
                "hidraw device (udev rule), or pass --device keyboard / --device scripted"
            )
        self.hid = hid.device()
        self.hid.open(found[0]["vendor_id"], found[0]["product_id"])
        self.lock = threading.Lock()
        self.motion = np.zeros(6)
        self.gripper = -1.0
        self.event: str | None = None
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while self.running:
            data = self.hid.read(13, 50)
            if not data:
                continue
            with self.lock:
                if data[0] == 1:  # translation
                    x, y, z = (_axis(data[i], data[i + 1]) for i in (1, 3, 5))
                    self.motion[:3] = [-y, -x, -z]
                elif data[0] == 2:  # rotation
                    rx, ry, rz = (_axis(data[i], data[i + 1]) for i in (1, 3, 5))
                    self.motion[3:] = [-ry, -rx, -rz]
                elif data[0] == 3:  # buttons
                    if data[1] == 1:
                        self.gripper = -self.gripper
                    elif data[1] == 2:
                        self.event = "finish"
                    elif data[1] == 3:
                        self.event = "discard"

    def start_episode(self, env, seed: int) -> None:
        with self.lock:
            self.gripper, self.event = -1.0, None

    def poll(self, env, obs) -> Command:
        with self.lock:
            motion = np.clip(self.motion / SCALE, -1.0, 1.0)
            event, self.event = self.event, None
            gripper = self.gripper
        motion[np.abs(motion) < DEADZONE] = 0.0
        action = np.concatenate([motion, [gripper]]).astype(np.float32)
        return Command(action, active=bool(np.any(motion)), event=event)

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=1.0)
        self.hid.close()
