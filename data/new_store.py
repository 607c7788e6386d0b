"""Write a new episode store atomically: build it in a staging directory beside DST, rename it into place at the end.

Used by every command that makes a store out of others (``manip data convert``, ``manip data merge``): a failure
half-way leaves nothing at DST, and the inputs are never opened for writing.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from manip.core.errors import ManipError


def check_new_store_path(dst: Path, inputs: Sequence[Path]) -> None:
    """One-line errors when ``dst`` exists, is one of ``inputs`` or has no parent directory."""
    if dst.exists():
        raise ManipError(f"{dst}: already exists (choose a new output path)")
    if any(src.resolve() == dst.resolve() for src in inputs):
        raise ManipError(f"{dst}: output must differ from the input")
    if not dst.parent.is_dir():
        raise ManipError(f"{dst.parent}: output directory does not exist")


def write_new_store(dst: Path, fill: Callable, *, inputs: Sequence[Path], zarr_format: int = 3) -> None:
    """Create the store ``dst`` by calling ``fill(store)`` on an empty one; nothing is left at ``dst`` on failure.

    Errors raised while filling that name the staging directory are re-worded to name ``dst`` (or the single
    input, when the message is about it).
    """
    from manip.data.store import EpisodeStore

    check_new_store_path(dst, inputs)
    staging = dst.with_name(f".{dst.name}.writing")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        store = EpisodeStore.create(staging, zarr_format=zarr_format)
        fill(store)
        store.close()
        staging.rename(dst)
    except ManipError as exc:  # bad data found while appending: name the source, not the staging directory
        message = str(exc)
        if str(staging) not in message:
            raise
        message = message.replace(f"{staging}: ", "").replace(str(staging), str(dst))
        if len(inputs) == 1 and not message.startswith(str(inputs[0])):
            message = f"{inputs[0]}: {message}"
        raise ManipError(message) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
