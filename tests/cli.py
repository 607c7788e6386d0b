"""Test helpers: the real ``manip`` CLI in a fresh interpreter (from the repo root), JSON reading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def manip(*args, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``manip ARGS`` in a fresh interpreter from the repo root (progress off; args may be paths)."""
    full_env = dict(os.environ, MANIP_NO_PROGRESS="1", **(env or {}))
    return subprocess.run(
        [sys.executable, "-P", "-m", "manip.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=ROOT,
    )


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())
