"""Teleoperation devices behind one interface (:class:`sim.devices.base.Device`): scripted, keyboard, SpaceMouse."""

from __future__ import annotations

from data.errors import ManipError

DEVICES = ("scripted", "keyboard", "spacemouse")


def make_device(name: str, task: str):
    """The device called ``name`` for ``task`` (one-line errors for an unknown or missing device)."""
    if name == "scripted":
        from sim.devices.scripted import ScriptedDevice

        return ScriptedDevice(task)
    if name == "keyboard":
        from sim.devices.keyboard import KeyboardDevice

        return KeyboardDevice()
    if name == "spacemouse":
        from sim.devices.spacemouse import SpaceMouseDevice

        return SpaceMouseDevice()
    raise ManipError(f"unknown device '{name}': pass one of {', '.join(DEVICES)}")
