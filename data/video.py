"""Camera frames to and from video files with PyAV: encode (T, H, W, 3) uint8 frames, decode them back with their
presentation times, and measure the loss (PSNR).

Encoding is lossy (the codec works in YUV 4:2:0): at :data:`DEFAULT_CRF` (H.264, CRF 18) robosuite's 84x84 camera
frames come back at ~38 dB PSNR (CRF 23: ~35-37 dB, CRF 30: ~30-33 dB); ``manip data export`` measures and prints
it. ``g`` (the keyframe interval) is kept small so a reader can seek to any frame cheaply, as LeRobot's own writer
does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from manip.core.errors import ManipError, require

DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 18
DEFAULT_GOP = 2


@dataclass(frozen=True)
class VideoSettings:
    """How frames are encoded: ``codec`` (an FFmpeg encoder), ``crf`` (quality: lower is better), ``gop``
    (frames between keyframes) and ``pix_fmt``."""

    codec: str = DEFAULT_CODEC
    crf: int = DEFAULT_CRF
    gop: int = DEFAULT_GOP
    pix_fmt: str = "yuv420p"


def _av():
    return require("av", "sim")


def _even(frames: np.ndarray, where: str) -> np.ndarray:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ManipError(f"{where}: expected (T, H, W, 3) uint8 frames, got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:  # 4:2:0 needs even sizes: repeat the last row/column
        frames = np.pad(frames, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    return frames


class VideoWriter:
    """An open video file that episodes' frames are appended to (one stream, constant ``fps``)."""

    def __init__(self, path: Path, fps: float, settings: VideoSettings = VideoSettings()):
        self.path = Path(path)
        self.fps = fps
        self.settings = settings
        self.frames_written = 0
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None

    def _open(self, height: int, width: int) -> None:
        av = _av()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), "w")
        rate = Fraction(self.fps).limit_denominator(1001)
        options = {"crf": str(self.settings.crf), "g": str(self.settings.gop)}
        if self.settings.codec == "libx264":
            options["preset"] = "veryfast"
        self._stream = self._container.add_stream(self.settings.codec, rate=rate, options=options)
        self._stream.pix_fmt = self.settings.pix_fmt
        self._stream.width, self._stream.height = width, height
        self._stream.time_base = 1 / rate
        self._size = (height, width)

    def write(self, frames: np.ndarray) -> None:
        """Append ``frames`` (T, H, W, 3) uint8; every call must use the same frame size."""
        av = _av()
        frames = _even(np.asarray(frames), str(self.path))
        if self._container is None:
            self._open(*frames.shape[1:3])
        if frames.shape[1:3] != self._size:
            raise ManipError(f"{self.path}: frame size {frames.shape[1:3]} differs from {self._size}")
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts = self.frames_written
            self.frames_written += 1
            self._container.mux(self._stream.encode(picture))

    def close(self) -> None:
        """Flush the encoder and close the file."""
        if self._container is not None:
            self._container.mux(self._stream.encode(None))
            self._container.close()
            self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def write_video(
    path: Path, frames: np.ndarray, fps: float, settings: VideoSettings = VideoSettings()
) -> None:
    """Encode ``frames`` (T, H, W, 3) uint8 into the video file ``path``."""
    with VideoWriter(path, fps, settings) as writer:
        writer.write(frames)


def iter_frames(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    """Every frame of the first video stream of ``path`` in presentation order: ``(time_s, (H, W, 3) uint8)``."""
    av = _av()
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as exc:
        raise ManipError(f"{path}: not a readable video ({exc})") from None
    with container:
        if not container.streams.video:
            raise ManipError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        try:
            for frame in container.decode(stream):
                yield float(frame.pts * stream.time_base), frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            raise ManipError(f"{path}: damaged video ({exc})") from None


def read_video(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All frames of ``path`` as ``(times (T,), frames (T, H, W, 3) uint8)``."""
    times, frames = [], []
    for time, frame in iter_frames(path):
        times.append(time)
        frames.append(frame)
    if not frames:
        raise ManipError(f"{path}: no frames")
    return np.asarray(times), np.stack(frames)


class FrameCursor:
    """Reads the frames of a video file forward in time, e.g. episode after episode of one LeRobot video file
    (reopening the file if a caller asks for an earlier time)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._frames: Iterator[tuple[float, np.ndarray]] | None = None
        self._pending: tuple[float, np.ndarray] | None = None
        self._last_time = -np.inf

    def _next(self) -> tuple[float, np.ndarray] | None:
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        if self._frames is None:
            self._frames = iter_frames(self.path)
        item = next(self._frames, None)
        if item is not None:
            self._last_time = item[0]
        return item

    def take(self, times: np.ndarray, tolerance: float, where: str) -> np.ndarray:
        """The frames shown at ``times`` (seconds, increasing), each within ``tolerance``; stacked (T, H, W, 3)."""
        if len(times) and times[0] < self._last_time - tolerance:
            self._frames, self._pending, self._last_time = None, None, -np.inf
        out = []
        for wanted in times:
            while True:
                item = self._next()
                if item is None:
                    raise ManipError(f"{where}: {self.path} ends before the frame at {wanted:.3f}s")
                time, frame = item
                if time < wanted - tolerance:
                    continue
                if time > wanted + tolerance:
                    self._pending = item
                    raise ManipError(
                        f"{where}: {self.path} has no frame at {wanted:.3f}s (next at {time:.3f}s)"
                    )
                out.append(frame)
                break
        return np.stack(out)


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of ``decoded`` against ``reference`` (uint8); ``inf`` when identical."""
    error = np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else float(10 * np.log10(255.0**2 / error))
