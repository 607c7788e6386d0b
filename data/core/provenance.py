"""Where a figure comes from: the code's git commit (and whether the tree had uncommitted changes).

Every ``results.json`` (eval, sweeps) and every benchmark's JSON carries :func:`code_provenance`, so a number
can be traced to the code that produced it. Outside a git checkout (an installed wheel) the commit is ``null``
and the package version stands in.
"""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2]
"""The checkout this package runs from (data/core/ → the repository root) when installed editable."""


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "-C", str(SOURCE_ROOT), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_provenance() -> dict:
    """``{"git_commit": sha | None, "git_dirty": bool | None, "manip_version": str | None}``.

    ``git_dirty`` is true when tracked files differ from the commit (untracked files do not count).
    """
    from_checkout = (SOURCE_ROOT / "data" / "core" / "provenance.py").resolve() == Path(__file__).resolve()
    commit = _git("rev-parse", "HEAD") if from_checkout else None
    dirty = None
    if commit is not None:
        status = _git("status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else bool(status)
    try:
        version = metadata.version("manip")
    except metadata.PackageNotFoundError:
        version = None
    return {"git_commit": commit, "git_dirty": dirty, "manip_version": version}
