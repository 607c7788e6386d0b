"""Progress bars on a terminal; in a log (stderr not a terminal) a plain line now and then; nothing in JSON mode
(``quiet``) or with ``MANIP_NO_PROGRESS`` set (CI).

Log lines come at most every ``MANIP_PROGRESS_EVERY`` seconds (default 60), e.g.
``eval: 57/200 ep, 2.1 ep/min, about 68 min left``, so a long job run with ``> run.log 2>&1`` shows how far it is.
"""

from __future__ import annotations

import os
import sys
import time
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
    if quiet or os.environ.get("MANIP_NO_PROGRESS"):
        yield from items
        return
    if not sys.stderr.isatty():
        yield from _log_lines(items, desc=desc, total=total, unit=unit)
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, total=total, unit=unit, dynamic_ncols=True, leave=False)


def _log_lines(
    items: Iterable[T], *, desc: str, total: int | None, unit: str, every: float | None = None
) -> Iterator[T]:
    """Yield ``items``, writing ``desc: done/total unit, rate, time left`` to stderr at most every ``every`` s."""
    if every is None:
        every = float(os.environ.get("MANIP_PROGRESS_EVERY", "60"))
    start = last = time.monotonic()
    for done, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if now - last >= every and (total is None or done < total):
            last = now
            print(progress_line(desc, done, total, unit, now - start), file=sys.stderr, flush=True)


def progress_line(desc: str, done: int, total: int | None, unit: str, elapsed_s: float) -> str:
    """``eval: 57/200 ep, 2.1 ep/min, about 68 min left`` (no total: no time left; per second when fast)."""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    pace = f"{rate:.1f} {unit}/s" if rate >= 1 else f"{rate * 60:.1f} {unit}/min"
    line = f"{desc}: {done}/{total} {unit}" if total is not None else f"{desc}: {done} {unit}"
    if total is not None and rate > 0:
        left = (total - done) / rate
        line += (
            f", {pace}, about {left / 60:.0f} min left"
            if left >= 90
            else f", {pace}, about {left:.0f} s left"
        )
    else:
        line += f", {pace}"
    return line
