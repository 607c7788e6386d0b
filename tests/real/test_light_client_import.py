"""The light parts (client, executor, loop, protocol) import without torch, robosuite, pyrealsense2 or zarr."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "robosuite", "pyrealsense2", "zarr", "mujoco")
LIGHT = (
    "manip.real.client.connection",
    "manip.real.client.executor",
    "manip.real.client.safety",
    "manip.real.client.loop",
    "manip.real.client.protocol",
    "manip.real.client.messages",
    "manip.real.client.sources",
)


def test_light_modules_do_not_import_heavy_ones():
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in LIGHT)
        + f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        + "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"light modules pulled in: {result.stdout.strip()}"
