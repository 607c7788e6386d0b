"""The camera process: RealSense cameras → shared-memory slots, away from any rclpy process.

    python -m manip.real.cameras.process --config cameras.json --prefix manip_cam --info info.json

``cameras.json`` is a list of :class:`manip.real.cameras.realsense.CameraConfig` mappings. The process writes each
camera's newest frame to the slot ``{prefix}_{name}``, the cameras' serials and intrinsics to ``--info`` once
streaming, then prints ``ready``; it runs until SIGTERM/SIGINT or until every played-back recording ends.
:class:`CameraProcess` starts it from another process (possibly another Python, e.g. from a ROS node) and
hands out :class:`manip.real.cameras.shared.FrameReader` objects.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from manip.core.errors import ManipError
from manip.real.cameras.realsense import CameraConfig


def slot_name(prefix: str, camera: str) -> str:
    """The shared-memory name of a camera's slot."""
    return f"{prefix}_{camera}"


def _stream(camera, writer, stop: threading.Event) -> None:
    while not stop.is_set():
        frame = camera.read(timeout_s=0.5)
        if frame is None:
            if camera.config.playback_file:
                return  # the recording ended
            continue
        writer.write(frame, camera.frames, camera.dropped)


def serve(configs: list[CameraConfig], prefix: str, info_path: Path | None) -> int:
    """Stream every camera into its slot until stopped; returns the exit status."""
    from manip.real.cameras.realsense import RealSenseCamera
    from manip.real.cameras.shared import FrameWriter

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    cameras = [RealSenseCamera(c).start() for c in configs]
    writers = []
    try:
        for cam in cameras:
            intr = cam.color_intrinsics
            writers.append(FrameWriter(slot_name(prefix, cam.config.name), intr.width, intr.height))
        if info_path is not None:
            tmp = info_path.with_suffix(".tmp")
            tmp.write_text(json.dumps([cam.info() for cam in cameras], indent=1))
            tmp.replace(info_path)
        print("ready", flush=True)
        threads = [
            threading.Thread(target=_stream, args=(cam, w, stop), daemon=True)
            for cam, w in zip(cameras, writers, strict=True)
        ]
        for t in threads:
            t.start()
        while not stop.is_set() and any(t.is_alive() for t in threads):
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(timeout=2.0)
        if info_path is not None:
            info_path.write_text(json.dumps([cam.info() for cam in cameras], indent=1))
    finally:
        for cam in cameras:
            cam.stop()
        for w in writers:
            w.unlink()
    return 0


def load_configs(path: Path) -> list[CameraConfig]:
    """Read the camera list (JSON) with one-line errors."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ManipError(f"{path}: cannot read the camera list ({exc})") from None
    if not isinstance(raw, list) or not raw:
        raise ManipError(f"{path}: expected a non-empty list of cameras")
    configs = [CameraConfig.from_dict(item, f"{path}[{i}]") for i, item in enumerate(raw)]
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ManipError(f"{path}: camera names must be unique, got {names}")
    return configs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m manip.real.cameras.process", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", required=True, type=Path, help="JSON list of cameras")
    parser.add_argument("--prefix", required=True, help="shared-memory name prefix")
    parser.add_argument("--info", type=Path, help="write serials, intrinsics and counters here")
    args = parser.parse_args(argv)
    try:
        return serve(load_configs(args.config), args.prefix, args.info)
    except ManipError as exc:
        print(f"camera process: {exc}", file=sys.stderr)
        return 2


class CameraProcess:
    """Runs :func:`serve` in a child process (``python`` may be another interpreter than this one)."""

    def __init__(self, configs: list[CameraConfig], prefix: str, workdir: Path, python: str = sys.executable):
        self.configs, self.prefix, self.workdir, self.python = list(configs), prefix, Path(workdir), python
        self.info_path = self.workdir / f"{prefix}-info.json"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 30.0) -> list[dict]:
        """Start the child and wait for ``ready``; returns the cameras' info (serials, intrinsics)."""
        config_path = self.workdir / f"{self.prefix}-cameras.json"
        config_path.write_text(json.dumps([c.to_dict() for c in self.configs]))
        cmd = [
            self.python,
            "-m",
            "manip.real.cameras.process",
            "--config",
            str(config_path),
            "--prefix",
            self.prefix,
        ]
        self.proc = subprocess.Popen(
            [*cmd, "--info", str(self.info_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        line = _readline(self.proc, timeout_s)
        if line.strip() != "ready":
            self.stop()
            err = self.proc.stderr.read().strip().splitlines() if self.proc.stderr else []
            raise ManipError(err[-1] if err else f"camera process did not start within {timeout_s:g} s")
        return json.loads(self.info_path.read_text())

    def reader(self, camera: str):
        """A reader of camera ``camera``'s slot."""
        from manip.real.cameras.shared import FrameReader

        return FrameReader(slot_name(self.prefix, camera), camera)

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """SIGTERM the child and wait; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _readline(proc: subprocess.Popen, timeout_s: float) -> str:
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(proc.stdout.readline()), daemon=True)
    thread.start()
    thread.join(timeout_s)
    return result[0] if result else ""


if __name__ == "__main__":
    sys.exit(main())
