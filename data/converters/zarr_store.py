"""Zarr episode store → manip store: Diffusion Policy zarr v2 (directory or ``.zarr.zip``) or another manip store.

Every committed episode is copied array for array with its metadata; dataset attributes are kept under
``attrs["source_attrs"]``. Values and dtypes are unchanged (lossless); chunking and codecs follow
:mod:`manip.data.layout` (so images become one frame per chunk).
"""

from __future__ import annotations

from pathlib import Path

from manip.core.errors import ManipError
from manip.core.progress import progress
from manip.data.store import EpisodeStore


def require_complete(source: EpisodeStore, src: Path) -> None:
    """Refuse a store with missing chunks (they would read as fill values), naming the key and first step."""
    for key in source.keys:
        missing = source.missing_chunks(key)
        if missing:
            raise ManipError(
                f"{src}/data/{key}: {len(missing)} chunk(s) missing (first covers steps from {missing[0]}); "
                "they would read as fill values (see manip data validate)"
            )


def convert(src: Path, store: EpisodeStore, *, quiet: bool = True) -> None:
    """Append every episode of the store at ``src`` to ``store`` (refused when a source chunk is missing)."""
    with EpisodeStore.open(src) as source:
        require_complete(source, src)
        store.set_attrs(source={"format": f"zarr v{source.zarr_format}", "path": str(src)})
        if source.attrs:
            store.set_attrs(source_attrs=source.attrs)
        for i in progress(
            range(source.num_episodes), desc="convert", total=source.num_episodes, quiet=quiet, unit="ep"
        ):
            store.add_episode(source.get_episode(i), source.episode_meta(i))
