"""``manip data merge``: several episode stores → one new store (e.g. per-task demos → one multi-task dataset).

Episodes are copied in the order the sources are given, each with its own metadata (task, instruction, seed, …)
plus ``merged_from`` (the source path). Only keys every source has with the same per-step shape and dtype can be
merged: by default those are kept and the others dropped (reported); with ``keys`` given, exactly those are kept
and a source that lacks one, or has it with another shape, is refused by name. The per-step flags of corrections
(``intervention``, ``phase``; :data:`~manip.data.recorder.STEP_DEFAULTS`) are the exception: a source recorded
without them (plain demonstrations) is given them (no flag set, ``phase`` -1), so demonstrations merged with
corrections keep the corrections' phases. Dataset attributes every source has with the same value (``control_rate``,
``action_semantics``, …) are kept too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from manip.core.errors import ManipError
from manip.core.progress import progress
from manip.data.converters.zarr_store import require_complete
from manip.data.new_store import write_new_store
from manip.data.recorder import STEP_DEFAULTS


def _specs(store) -> dict[str, tuple]:
    return {key: store.step_spec(key) for key in store.keys}


def with_defaults(specs: Sequence[dict]) -> list[dict]:
    """``specs`` with each :data:`STEP_DEFAULTS` key that some sources have as a scalar of one dtype added, with that
    dtype, to the sources that lack it (sources that disagree on it are left as they are: the key is dropped)."""
    filled = {}
    for key in STEP_DEFAULTS:
        found = {spec[key] for spec in specs if key in spec}
        if len(found) == 1 and next(iter(found))[0] == ():
            filled[key] = found.pop()
    return [{**filled, **spec} for spec in specs]


def shared_attrs(stores) -> dict:
    """The dataset attributes every one of ``stores`` has with the same value (``merged_from`` aside: a merge
    records its own sources)."""
    first, *others = [store.attrs for store in stores]
    return {
        k: v for k, v in first.items() if k != "merged_from" and all(k in o and o[k] == v for o in others)
    }


def _episode(store, i: int, keys: Sequence[str], dtypes: dict) -> dict:
    """Episode ``i`` of ``store`` with ``keys``; a :data:`STEP_DEFAULTS` key it lacks is filled with its default,
    of the dtype the other sources store it in (``dtypes``)."""
    present = [k for k in keys if k in store.keys]
    episode = store.get_episode(i, present) if present else {}
    span = store.episode_slice(i)
    for key in keys:
        if key not in store.keys:
            episode[key] = np.full(span.stop - span.start, STEP_DEFAULTS[key], dtype=dtypes[key])
    return episode


def choose_keys(
    sources: Sequence[Path], specs: Sequence[dict], keys: Sequence[str] | None
) -> tuple[list, list]:
    """The keys to merge and the keys dropped (present in some sources only, or with differing shapes)."""
    every_key = {k for spec in specs for k in spec}
    if keys is None:
        kept = [k for k in specs[0] if all(spec.get(k) == specs[0][k] for spec in specs)]
        if not kept:
            raise ManipError(
                "the sources share no key with the same per-step shape and dtype; nothing to merge"
            )
        return kept, sorted(every_key - set(kept))
    if not keys:
        raise ManipError("--keys names no key")
    for key in keys:
        for src, spec in zip(sources, specs, strict=True):
            if key not in spec:
                raise ManipError(f"{src}: has no key {key!r} (its keys: {', '.join(sorted(spec))})")
        if len({spec[key] for spec in specs}) > 1:
            shown = "; ".join(
                f"{src}: {spec[key][0]} {spec[key][1]}" for src, spec in zip(sources, specs, strict=True)
            )
            raise ManipError(f"key {key!r} differs between sources ({shown})")
    return list(keys), sorted(every_key - set(keys))


def merge(
    sources: Sequence[str | Path],
    dst: str | Path,
    *,
    keys: Sequence[str] | None = None,
    zarr_format: int = 3,
    quiet: bool = True,
) -> tuple[list[str], list[str]]:
    """Write a new store at ``dst`` with every episode of ``sources``; return (kept keys, dropped keys)."""
    from manip.data.store import EpisodeStore

    sources, dst = [Path(s) for s in sources], Path(dst)
    if len(sources) < 2:
        raise ManipError("merge needs at least two source stores")
    if len({s.resolve() for s in sources}) < len(sources):
        raise ManipError("a source store is given twice")
    for src in sources:
        if not src.exists():
            raise ManipError(f"{src}: no such file or directory")
    opened = [EpisodeStore.open(src) for src in sources]
    try:
        for src, store in zip(sources, opened, strict=True):
            if store.num_episodes == 0:
                raise ManipError(f"{src}: has no episodes")
            require_complete(store, src)
        specs = with_defaults([_specs(s) for s in opened])
        kept, dropped = choose_keys(sources, specs, keys)
        dtypes = {key: spec[1] for key, spec in specs[0].items()}
        total = sum(s.num_episodes for s in opened)

        def fill(out) -> None:
            out.set_attrs(**shared_attrs(opened), merged_from=[str(s) for s in sources])
            episodes = (
                (src, store, i)
                for src, store in zip(sources, opened, strict=True)
                for i in range(store.num_episodes)
            )
            for src, store, i in progress(episodes, desc="merge", total=total, quiet=quiet, unit="ep"):
                meta = {**store.episode_meta(i), "merged_from": str(src)}
                out.add_episode(_episode(store, i, kept, dtypes), meta)

        write_new_store(dst, fill, inputs=sources, zarr_format=zarr_format)
    finally:
        for store in opened:
            store.close()
    return kept, dropped
