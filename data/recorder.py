"""Recorder: build an episode step by step and commit it to an :class:`~manip.data.store.EpisodeStore` atomically.

Steps are buffered and streamed into the store past its committed end every ``flush_every`` steps (so long
image episodes need not fit in memory); the episode becomes visible only at :meth:`Recorder.commit`, which
writes ``meta/episode_ends`` last. A crash or :meth:`Recorder.discard` leaves the committed episodes untouched.

Each step may carry an ``intervention`` flag (a teleoperator took over); it is stored per step as
``data/intervention`` (bool) in stores that have that key, and in every new store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from manip.core.errors import ManipError
from manip.data.store import EpisodeStore

INTERVENTION = "intervention"
PHASE = "phase"
"""Per-step int8 key of corrections episodes (``manip collect --corrections``): who drove the step."""
POLICY_PHASE, RECOVERY_PHASE, CORRECTION_PHASE = 0, 1, 2
"""The policy drove; the recovery rewound the arm; the correction (expert or person) drove."""
NO_PHASE = -1
"""``phase`` of the steps of an episode recorded without phases (a plain demonstration) in a merged store."""
STEP_DEFAULTS = {INTERVENTION: False, PHASE: NO_PHASE}
"""Per-step scalar keys, and the value that stores recorded without them are given when merged with stores that
have them (``manip data merge``, in those stores' dtype): demonstrations merged with corrections keep the
corrections' phases."""


class Recorder:
    """Append episodes to ``store`` one step at a time; see the module docstring for the guarantees."""

    def __init__(self, store: EpisodeStore, flush_every: int = 64):
        if flush_every < 1:
            raise ManipError(f"Recorder: flush_every must be >= 1, got {flush_every}")
        self.store = store
        self.flush_every = int(flush_every)
        self._meta: dict[str, Any] | None = None
        self._buffer: list[dict[str, np.ndarray]] = []
        self._staged = 0
        self._step_spec: dict[str, tuple[tuple[int, ...], np.dtype]] = {}

    @property
    def recording(self) -> bool:
        """True between :meth:`start_episode` and :meth:`commit` / :meth:`discard`."""
        return self._meta is not None

    @property
    def num_steps(self) -> int:
        """Steps added to the current episode so far."""
        return self._staged + len(self._buffer)

    @property
    def records_intervention(self) -> bool:
        return INTERVENTION in self.store.keys or self.store.num_episodes == 0

    def start_episode(self, **meta: Any) -> None:
        """Begin a new episode with metadata (task, instruction, source, seed, ...)."""
        if self.recording:
            raise ManipError("Recorder: an episode is already open; commit() or discard() it first")
        self.store.discard_staged()
        self._meta = dict(meta)
        self._buffer = []
        self._staged = 0
        self._step_spec = {}

    def add_step(self, step: Mapping[str, np.ndarray], intervention: bool = False) -> None:
        """Add one step (``{key: per-step array}``); ``intervention`` marks a teleoperator correction."""
        if not self.recording:
            raise ManipError("Recorder: add_step() before start_episode()")
        values = {str(k): np.asarray(v) for k, v in step.items()}
        if INTERVENTION in values:
            raise ManipError(f"Recorder: pass '{INTERVENTION}' as the argument, not as a step key")
        if self.records_intervention:
            values[INTERVENTION] = np.asarray(bool(intervention))
        elif intervention:
            raise ManipError(
                f"{self.store.path}: this store has no '{INTERVENTION}' array to record the flag in"
            )
        self._check_step(values)
        self._buffer.append(values)
        if len(self._buffer) >= self.flush_every:
            self._flush()

    def _check_step(self, values: dict[str, np.ndarray]) -> None:
        spec = {k: (tuple(v.shape), v.dtype) for k, v in values.items()}
        where = f"Recorder: step {self.num_steps}"
        if not self._step_spec:
            self._step_spec = spec
            return
        if set(spec) != set(self._step_spec):
            raise ManipError(f"{where} has keys {sorted(spec)}, earlier steps had {sorted(self._step_spec)}")
        for key, (shape, _dtype) in spec.items():
            if shape != self._step_spec[key][0]:
                raise ManipError(
                    f"{where}: '{key}' has shape {shape}, earlier steps had {self._step_spec[key][0]}"
                )

    def _flush(self) -> None:
        if not self._buffer:
            return
        chunk = {key: np.stack([s[key] for s in self._buffer]) for key in self._buffer[0]}
        self._staged += self.store.stage_steps(self._staged, chunk)
        self._buffer = []

    def commit(self, success: bool | None = None, **meta: Any) -> int:
        """Write the remaining steps and commit the episode (``episode_ends`` last); return its index."""
        if not self.recording:
            raise ManipError("Recorder: commit() without an open episode")
        if self.num_steps == 0:
            raise ManipError("Recorder: cannot commit an episode with no steps (discard() it instead)")
        full_meta = {**(self._meta or {}), **meta, "success": success}
        try:
            self._flush()
            index = self.store.commit_staged(self._staged, full_meta)
        except BaseException:
            self.discard()
            raise
        self._meta = None
        self._staged = 0
        return index

    def discard(self) -> None:
        """Drop the open episode; the store is left exactly as after the last commit."""
        self._meta = None
        self._buffer = []
        self._staged = 0
        self.store.discard_staged()
