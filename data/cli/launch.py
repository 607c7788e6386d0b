"""Start ``manip serve`` as a subprocess and wait until it listens (tests, benchmarks, ``manip eval --ros``).

Standard library + :mod:`manip.core` only, so every layer above the kernel (sim, real, bench) can use it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field

from manip.core.errors import ManipError

READY = re.compile(r"listening on ws://(?P<host>[^ ]+):(?P<port>\d+)")


@dataclass
class ServerProcess:
    """A running ``manip serve`` process; ``url`` is its websocket address, ``log`` its stderr so far."""

    proc: subprocess.Popen
    host: str
    port: int
    log: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def stop(self) -> None:
        """Terminate the process (kill it if it does not exit within 5 s)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_server(
    args: list[str], env: dict[str, str] | None = None, timeout_s: float = 120.0
) -> ServerProcess:
    """Run ``manip serve ARGS`` (add ``--port 0`` for a free port) and return once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "manip.cli.main", "serve", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    log: list[str] = []
    found = threading.Event()
    where: dict[str, str] = {}

    def read() -> None:
        for line in proc.stderr:
            log.append(line.rstrip("\n"))
            match = READY.search(line)
            if match and not found.is_set():
                where.update(match.groupdict())
                found.set()
        found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(timeout_s) or not where:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        raise ManipError(f"manip serve did not start: {' | '.join(log[-3:]) or 'no output'}")
    return ServerProcess(proc, where["host"], int(where["port"]), log)
