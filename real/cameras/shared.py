"""The newest frame of one camera in shared memory: one writer (the camera process), any number of readers.

Layout of a slot: a header of int64/float64 fields, then the RGB image (H, W, 3) uint8, then depth (H, W) uint16.
The writer bumps ``seq`` to an odd value, writes, and bumps it to the next even value; a reader copies the frame
and keeps it only if ``seq`` was even and unchanged across the copy (a seqlock), so it never sees half a frame.
"""

from __future__ import annotations

import time
from multiprocessing import resource_tracker, shared_memory

import numpy as np

from manip.real.cameras.realsense import CameraFrame

HEADER = np.dtype(
    [
        ("seq", "<u8"),
        ("timestamp_ms", "<f8"),
        ("received_s", "<f8"),
        ("frame_number", "<i8"),
        ("frames", "<i8"),
        ("dropped", "<i8"),
        ("has_depth", "<i8"),
        ("domain", "<i8"),
        ("width", "<i8"),
        ("height", "<i8"),
    ]
)


DOMAINS = ("hardware_clock", "system_time", "global_time", "unknown")


def slot_size(width: int, height: int) -> int:
    """Bytes a slot for ``width`` x ``height`` frames needs."""
    return HEADER.itemsize + width * height * 3 + width * height * 2


class _Slot:
    def __init__(self, shm: shared_memory.SharedMemory, width: int, height: int):
        self.shm = shm
        self.header = np.ndarray((), dtype=HEADER, buffer=shm.buf, offset=0)
        self.color = np.ndarray((height, width, 3), dtype=np.uint8, buffer=shm.buf, offset=HEADER.itemsize)
        self.depth = np.ndarray(
            (height, width), dtype=np.uint16, buffer=shm.buf, offset=HEADER.itemsize + width * height * 3
        )

    def close(self) -> None:
        del self.header, self.color, self.depth
        self.shm.close()


class FrameWriter(_Slot):
    """Creates the slot ``name`` and publishes frames into it (the camera process)."""

    def __init__(self, name: str, width: int, height: int):
        shm = shared_memory.SharedMemory(name=name, create=True, size=slot_size(width, height))
        super().__init__(shm, width, height)
        self.header["seq"] = 0
        self.header["width"], self.header["height"] = width, height

    def write(self, frame: CameraFrame, frames: int, dropped: int) -> None:
        """Publish ``frame`` (with the camera's frame and drop counters)."""
        h = self.header
        h["seq"] += 1  # odd: writing
        self.color[...] = frame.color
        if frame.depth is not None:
            self.depth[...] = frame.depth
        h["timestamp_ms"], h["received_s"], h["frame_number"] = (
            frame.timestamp_ms,
            frame.received_s,
            frame.frame_number,
        )
        h["frames"], h["dropped"], h["has_depth"] = frames, dropped, int(frame.depth is not None)
        domain = frame.timestamp_domain
        h["domain"] = DOMAINS.index(domain) if domain in DOMAINS else len(DOMAINS) - 1
        h["seq"] += 1  # even: complete

    def unlink(self) -> None:
        """Remove the slot (the writer owns it)."""
        self.close()
        self.shm.unlink()


class FrameReader(_Slot):
    """Attaches to the slot ``name`` and copies out the newest complete frame."""

    def __init__(self, name: str, camera_name: str = ""):
        shm = shared_memory.SharedMemory(name=name)
        # Python < 3.13 registers attached segments with the resource tracker, which would unlink the writer's
        # segment when this reader exits: only the writer owns it.
        resource_tracker.unregister(shm._name, "shared_memory")
        header = np.ndarray((), dtype=HEADER, buffer=shm.buf)
        width, height = int(header["width"]), int(header["height"])
        del header
        super().__init__(shm, width, height)
        self.camera_name = camera_name or name

    def read(self, last_seq: int = 0, tries: int = 100) -> tuple[CameraFrame | None, int, dict]:
        """``(frame, seq, counters)``: the newest frame if its ``seq`` is newer than ``last_seq`` (else None)."""
        for _ in range(tries):
            before = int(self.header["seq"])
            if before == 0 or before <= last_seq:
                return None, last_seq, {}
            if before % 2:
                time.sleep(0.0005)
                continue
            color = self.color.copy()
            h = self.header.copy()
            depth = self.depth.copy() if h["has_depth"] else None
            if int(self.header["seq"]) == before:
                frame = CameraFrame(
                    name=self.camera_name,
                    color=color,
                    depth=depth,
                    timestamp_ms=float(h["timestamp_ms"]),
                    timestamp_domain=DOMAINS[int(h["domain"])],
                    frame_number=int(h["frame_number"]),
                    received_s=float(h["received_s"]),
                )
                return frame, before, {"frames": int(h["frames"]), "dropped": int(h["dropped"])}
        return None, last_seq, {}
