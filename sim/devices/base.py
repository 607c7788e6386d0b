"""The device interface every action source used for collection implements (human or scripted).

Per control tick the collector calls :meth:`Device.poll` and gets a :class:`Command`: the 7-D action, whether
the operator is actively driving (``active``; used to mark interventions when a policy drives otherwise), and
an optional episode event: ``finish`` (start the episode while waiting, end it while recording, keep it at the
end-of-episode prompt), ``discard`` (drop it), ``restart`` (drop it and record the same seed again) or ``quit``
(stop collecting, keeping what was kept).
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
    reads_keyboard = False  # True when the device itself turns Enter / Backspace / Tab / Esc into events
    controls: tuple[tuple[str, str], ...] = ()  # (keys or buttons, what they do) for the operator's HUD

    def start_episode(self, env, seed: int) -> None:
        """Called after ``env.reset(seed=seed)``."""

    def poll(self, env, obs) -> Command:
        raise NotImplementedError

    def close(self) -> None:
        """Release the hardware / listener."""
