"""Pace a loop at a control rate, so a human sees and drives the simulation in real time.

:class:`Pacer` never runs ahead of schedule: tick ``k`` starts no earlier than ``k / rate`` seconds after the
first. When a tick overruns, the schedule slips to the late tick instead of bursting to catch up, so the robot
never moves faster than the operator expects.
"""

from __future__ import annotations

import time


class Pacer:
    """Wait for the next tick at ``rate`` Hz; :meth:`tick` returns seconds since the first tick."""

    def __init__(self, rate: float, clock=time.perf_counter, sleep=time.sleep):
        if rate <= 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.period = 1.0 / float(rate)
        self.clock, self.sleep = clock, sleep
        self.start: float | None = None
        self.deadline = 0.0

    def restart(self) -> None:
        """Make the next :meth:`tick` the first one (time 0)."""
        self.start = None

    def tick(self) -> float:
        """Block until the next tick is due; return its time in seconds since the first tick."""
        now = self.clock()
        if self.start is None:
            self.start = self.deadline = now
            return 0.0
        self.deadline += self.period
        while now < self.deadline:
            self.sleep(self.deadline - now)
            now = self.clock()
        if now - self.deadline > self.period:  # overran by more than a tick: slip rather than burst
            self.deadline = now
        return now - self.start
