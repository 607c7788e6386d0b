"""The scripted expert as a device: the same interface as keyboard and SpaceMouse, so collection is testable."""

from __future__ import annotations

from manip.sim.devices.base import Command, Device
from manip.sim.experts import make_expert


class ScriptedDevice(Device):
    source = "scripted"
    human = False

    def __init__(self, task: str):
        self.expert = make_expert(task)

    def start_episode(self, env, seed: int) -> None:
        self.expert.reset(env, seed)

    def poll(self, env, obs) -> Command:
        return Command(self.expert.act(env, obs), active=True)
