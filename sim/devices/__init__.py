"""Teleoperation devices behind one interface (:class:`manip.sim.devices.base.Device`): scripted, keyboard, SpaceMouse."""

from __future__ import annotations

from manip.core.errors import ManipError

DEVICES = ("scripted", "keyboard", "spacemouse")


def make_device(name: str, task: str):
    """The device called ``name`` for ``task`` (one-line errors for an unknown or missing device)."""
    if name == "scripted":
        from manip.sim.devices.scripted import ScriptedDevice

        return ScriptedDevice(task)
    if name == "keyboard":
        from manip.sim.devices.keyboard import KeyboardDevice

        return KeyboardDevice()
    if name == "spacemouse":
        from manip.sim.devices.spacemouse import SpaceMouseDevice

        return SpaceMouseDevice()
    raise ManipError(f"unknown device '{name}': pass one of {', '.join(DEVICES)}")
