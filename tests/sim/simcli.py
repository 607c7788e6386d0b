"""Helpers for the sim tests: the real ``manip`` CLI in a fresh interpreter, JSON reading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def manip(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``manip ARGS`` in a fresh interpreter (progress off)."""
    full_env = dict(os.environ, MANIP_NO_PROGRESS="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "data.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
