"""`manip data export STORE --format FORMAT OUT`: write a store's episodes in another tool's format.

Formats: ``lerobot`` (a LeRobot v3 dataset directory, cameras as MP4 videos) and ``robomimic`` (one HDF5 file).
An exporter module exposes::

    def export(store: EpisodeStore, out: Path, *, fps: float, quiet: bool = True, **options) -> dict

which writes ``out`` (a path that does not exist yet) and returns a summary for the CLI. The dispatcher hands
it a staging path beside OUT and renames it into place only when the exporter returns, so a failed export
leaves nothing behind.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

from manip.core.errors import ManipError
from manip.data.store import EpisodeStore

EXPORTERS = {
    "lerobot": "manip.data.exporters.lerobot",
    "robomimic": "manip.data.exporters.robomimic",
}


def control_rate(store: EpisodeStore) -> float | None:
    """The store's steps per second, from its attributes (recorded by ``manip collect`` and the converters)."""
    attrs = store.attrs
    candidates = [
        attrs.get("control_rate"),
        attrs.get("fps"),
        (attrs.get("source") or {}).get("rate_hz") if isinstance(attrs.get("source"), dict) else None,
    ]
    env_args = (
        (attrs.get("source_attrs") or {}).get("env_args")
        if isinstance(attrs.get("source_attrs"), dict)
        else None
    )
    if isinstance(env_args, dict) and isinstance(env_args.get("env_kwargs"), dict):
        candidates.append(env_args["env_kwargs"].get("control_freq"))
    return next((float(c) for c in candidates if isinstance(c, (int, float)) and c > 0), None)


def export(
    src: str | Path, fmt: str, out: str | Path, *, fps: float | None = None, quiet: bool = True, **options
) -> dict:
    """Export the store at ``src`` to ``out`` in format ``fmt``; return the exporter's summary."""
    from manip.data.converters.zarr_store import require_complete
    from manip.data.new_store import check_new_store_path

    src, out = Path(src), Path(out)
    if fmt not in EXPORTERS:
        raise ManipError(f"unknown export format '{fmt}' (known: {', '.join(EXPORTERS)})")
    check_new_store_path(out, [src])
    module = importlib.import_module(EXPORTERS[fmt])
    staging = out.with_name(f".{out.name}.writing")
    _remove(staging)
    with EpisodeStore.open(src) as store:
        if store.num_episodes == 0:
            raise ManipError(f"{src}: has no episodes to export")
        require_complete(store, src)
        rate = fps or control_rate(store)
        if rate is None:
            raise ManipError(f"{src}: the store does not record its control rate; pass --fps")
        try:
            summary = module.export(store, staging, fps=rate, quiet=quiet, **options)
            staging.rename(out)
        finally:
            _remove(staging)
    return summary


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
