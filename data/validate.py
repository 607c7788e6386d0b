"""Validate an episode store: every problem becomes one line (``manip data validate``).

Checks: the store opens (metadata readable, codecs known); ``meta/episode_ends`` is 1-D integer, positive and
strictly increasing; every ``data/*`` array reaches the last committed end (arrays *longer* than it carry an
uncommitted tail from an interrupted append, which readers ignore: reported as a note, not a problem);
``data/action`` and any ``required`` keys exist; every stored chunk of the committed steps exists and decodes;
float arrays hold no NaN/inf; per-episode metadata is JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from manip.core.errors import ManipError
from manip.core.progress import progress
from manip.data.store import EPISODE_ENDS, EPISODE_META, EpisodeStore

READ_BLOCK_BYTES = 64 * 1024 * 1024
REQUIRED_KEYS = ("action",)


@dataclass
class Report:
    """What :func:`validate_store` found: ``problems`` make the store invalid, ``notes`` do not."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_store(path: str | Path, required: Iterable[str] = REQUIRED_KEYS, quiet: bool = True) -> Report:
    """Check the store at ``path``; never raises for a bad store (every finding is a line in the report)."""
    path = Path(path)
    report = Report()
    try:
        store = EpisodeStore.open(path)
    except ManipError as exc:
        report.problems.append(str(exc))
        return report
    try:
        _check_episode_ends(store, report)
        _check_keys(store, required, report)
        _check_contents(store, report, quiet)
        _check_episode_meta(store, report)
    finally:
        store.close()
    return report


def _check_episode_ends(store: EpisodeStore, report: Report) -> None:
    ends = store.episode_ends
    where = f"{store.path}/{EPISODE_ENDS}"
    if len(ends) and ends[0] <= 0:
        report.problems.append(
            f"{where}: first episode ends at {int(ends[0])}; episodes need at least one step"
        )
    steps = np.diff(ends)
    bad = np.flatnonzero(steps <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        report.problems.append(
            f"{where}: not strictly increasing at episode {i} ({int(ends[i - 1])} then {int(ends[i])}; "
            f"{bad.size} place(s))"
        )
    total = store.num_steps
    lengths = {key: int(store.array(key).shape[0]) for key in store.keys}
    for key, length in lengths.items():
        if length < total:
            report.problems.append(
                f"{store.path}/data/{key}: has {length} steps but episode_ends says {total} "
                "(arrays of unequal length)"
            )
    if store.num_episodes and report.ok and any(n > total for n in lengths.values()):
        report.notes.append(
            f"{store.path}: {store.uncommitted_steps()} uncommitted step(s) after the last episode "
            "(an interrupted append; ignored by readers, overwritten by the next append)"
        )


def _check_keys(store: EpisodeStore, required: Iterable[str], report: Report) -> None:
    if not store.keys and store.num_episodes:
        report.problems.append(
            f"{store.path}/data: no arrays, but episode_ends lists {store.num_episodes} episodes"
        )
    for key in required:
        if store.num_episodes and key not in store.keys:
            report.problems.append(f"{store.path}/data/{key}: missing key")


def _storage_block(array) -> int:
    shards = getattr(array, "shards", None)
    return int(shards[0]) if shards else int(array.chunks[0])


def _check_contents(store: EpisodeStore, report: Report, quiet: bool) -> None:
    for key in progress(store.keys, desc="validate", quiet=quiet, unit="array"):
        array = store.array(key)
        total = min(store.num_steps, int(array.shape[0]))
        where = f"{store.path}/data/{key}"
        block = _storage_block(array)
        missing = store.missing_chunks(key)
        if missing:
            report.problems.append(
                f"{where}: {len(missing)} chunk(s) missing (first covers steps from {missing[0]}); "
                "they would read as fill values"
            )
        step_bytes = max(1, int(np.prod(array.shape[1:])) * np.dtype(array.dtype).itemsize)
        rows = max(block, (READ_BLOCK_BYTES // step_bytes) // block * block)
        for start in range(0, total, rows):
            stop = min(total, start + rows)
            try:
                values = np.asarray(array[start:stop])
            except Exception as exc:
                report.problems.append(
                    f"{where}: unreadable chunk(s) in steps {start}:{stop} ({type(exc).__name__}: {_first_line(exc)})"
                )
                break
            if values.dtype.kind == "f":
                finite = np.isfinite(values)
                if not finite.all():
                    step = start + int(np.flatnonzero(~finite.reshape(len(values), -1).all(axis=1))[0])
                    count = int((~finite).sum())
                    report.problems.append(f"{where}: {count} NaN/inf value(s), first at step {step}")
                    break


def _check_episode_meta(store: EpisodeStore, report: Report) -> None:
    where = f"{store.path}/{EPISODE_META}"
    try:
        texts = store.episode_meta_texts()
    except ManipError as exc:
        report.problems.append(str(exc))
        return
    for i, text in enumerate(texts):
        if not text:
            continue
        try:
            meta = json.loads(text)
        except json.JSONDecodeError:
            report.problems.append(f"{where}: episode {i} metadata is not valid JSON")
            continue
        if not isinstance(meta, dict):
            report.problems.append(f"{where}: episode {i} metadata is not a JSON object")
        elif meta.get("success") not in (True, False, None):
            report.problems.append(
                f"{where}: episode {i} success is {meta['success']!r}, not true/false/null"
            )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
