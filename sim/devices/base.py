"""The device interface every action source used for collection implements (human or scripted).

Per control tick the collector calls :meth:`Device.poll` and gets a :class:`Command`: the 7-D action, whether
the operator is actively driving (``active``; used to mark interventions when a policy drives otherwise), and
an optional episode event: ``finish`` (keep the episode now), ``discard`` (drop it), ``restart`` (drop it and
record the same seed again) or ``quit`` (stop collecting).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EVENTS = ("finish", "discard", "restart", "quit")


@dataclass
class Command:
    """One tick's output of a device."""

    action: np.ndarray
    active: bool = True
    event: str | None = None


class Device:
    """Base class: subclasses set ``source`` (recorded per episode) and implement :meth:`poll`."""

    source = "device"
    human = True

    def start_episode(self, env, seed: int) -> None:
        """Called after ``env.reset(seed=seed)``."""

    def poll(self, env, obs) -> Command:
        raise NotImplementedError

    def close(self) -> None:
        """Release the hardware / listener."""
