"""Appending to a zipped store (``.zarr.zip``) without ever leaving a broken zip behind.

A zip cannot be appended in place safely: new entries overwrite the central directory, so a crash mid-write
loses the whole archive. Instead the archive is unpacked into a hidden staging directory beside it, appends go
there, and after every commit the staging directory is zipped to a temporary file that atomically replaces the
original (``os.replace``). A crash leaves the last published zip intact plus a stale staging directory, which
the next open discards. Each commit rewrites the whole archive: for large stores, convert to a directory store
(``manip data convert SRC.zarr.zip DST.zarr``) instead.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

from manip.core.errors import ManipError


def staging_dir(path: Path) -> Path:
    """The hidden directory where appends to ``path`` are staged."""
    return path.with_name(f".{path.name}.appending")


def unpack_for_append(path: Path) -> Path:
    """Unpack the zip ``path`` into a fresh staging directory and return it."""
    if not zipfile.is_zipfile(path):
        raise ManipError(f"{path}: not a readable zip file (truncated, or not a zip)")
    staging = staging_dir(path)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                target = (staging / name).resolve()
                if not target.is_relative_to(staging.resolve()):
                    raise ManipError(f"{path}: entry '{name}' points outside the store")
            archive.extractall(staging)
    except (zipfile.BadZipFile, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ManipError(f"{path}: cannot unpack for appending ({exc})") from None
    return staging


def publish(staging: Path, path: Path) -> None:
    """Zip ``staging`` (stored entries, like zarr's ZipStore) and atomically replace ``path`` with it."""
    partial = path.with_name(f".{path.name}.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
        for file in sorted(staging.rglob("*")):
            if file.is_file() and not file.name.endswith(".partial"):
                archive.write(file, file.relative_to(staging).as_posix())
    os.replace(partial, path)


def discard(staging: Path) -> None:
    """Remove the staging directory."""
    shutil.rmtree(staging, ignore_errors=True)
