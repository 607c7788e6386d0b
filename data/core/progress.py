"""Progress bars that show on a terminal and stay quiet in JSON mode, under CI and in pipes."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress_enabled(quiet: bool = False) -> bool:
    """True when stderr is a terminal, ``quiet`` is false and ``MANIP_NO_PROGRESS`` is unset."""
    return not quiet and sys.stderr.isatty() and not os.environ.get("MANIP_NO_PROGRESS")


def progress(
    items: Iterable[T], *, desc: str, total: int | None = None, quiet: bool = False, unit: str = "it"
) -> Iterator[T]:
    """Wrap ``items`` in a tqdm bar on a TTY; otherwise yield them unchanged."""
    if not progress_enabled(quiet):
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, total=total, unit=unit, dynamic_ncols=True, leave=False)
