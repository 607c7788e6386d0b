"""Chunk requests off the control thread: one worker thread owns the connection to the policy server.

The control tick only calls :meth:`AsyncRequester.submit` (returns at once) and :meth:`AsyncRequester.poll`
(returns a finished request, if any), so a slow or dead server never blocks it. The worker (re)connects with
``connect()`` — any callable returning a :class:`manip.real.client.sources.ChunkSource`, normally the light websocket client —
and turns every failure (refused connection, closed socket, protocol version mismatch, bad chunk) into a
one-line error the node reports while it holds.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Reply:
    """A finished request: the chunk (or the error) for the observation taken at ``t_obs``."""

    t_obs: float
    chunk: np.ndarray | None
    error: str
    round_trip_s: float


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, ValueError | OSError) else text


class AsyncRequester:
    """A worker thread that connects to the server and answers one request at a time."""

    def __init__(self, connect: Callable[[], Any], reconnect_interval_s: float = 1.0):
        self._connect = connect
        self._reconnect_interval_s = float(reconnect_interval_s)
        self._jobs: queue.Queue = queue.Queue(maxsize=1)
        self._replies: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._source = None
        self._connect_error = "connecting to the policy server"
        self._busy = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chunk-requests", daemon=True)
        self._thread.start()

    # -- control-thread side ----------------------------------------------------------------------------------
    @property
    def metadata(self):
        """The server's metadata once connected (None before)."""
        source = self._source
        return None if source is None else source.metadata

    @property
    def busy(self) -> bool:
        """True while a request is queued or running."""
        return self._busy

    def submit(self, obs: dict[str, np.ndarray], t_obs: float, prefix: np.ndarray | None = None) -> bool:
        """Queue a request; False (nothing queued) while another is in flight or the server is not connected."""
        with self._lock:
            if self._busy or self._source is None:
                return False
            self._busy = True
        self._jobs.put((obs, t_obs, prefix))
        return True

    def poll(self) -> Reply | None:
        """The oldest finished request, or None."""
        try:
            return self._replies.get_nowait()
        except queue.Empty:
            return None

    def check_alive(self) -> str:
        """'' while connected; otherwise why not. Notices a closed websocket at once (no request needed)."""
        source = self._source
        if source is None:
            return self._connect_error or "not connected to the policy server"
        state = getattr(getattr(source, "ws", None), "state", None)
        if state is not None and getattr(state, "name", "OPEN") in ("CLOSING", "CLOSED"):
            self.drop_connection("the policy server closed the connection")
            return self._connect_error
        return ""

    def drop_connection(self, reason: str) -> None:
        """Forget the connection (the worker reconnects); used when the node sees the server is gone."""
        with self._lock:
            source, self._source = self._source, None
            self._connect_error = reason
        _close(source)

    def close(self) -> None:
        """Stop the worker and close the connection."""
        self._stop.set()
        self._jobs.put(None)
        self._thread.join(timeout=2.0)
        _close(self._source)

    # -- worker side ------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            if self._source is None:
                self._try_connect()
                continue
            try:
                job = self._jobs.get(timeout=0.05)
            except queue.Empty:
                continue
            if job is None:
                return
            self._answer(*job)

    def _try_connect(self) -> None:
        try:
            source = self._connect()
        except Exception as exc:  # any failure is reported and retried, never raised into the node
            self._connect_error = f"cannot connect to the policy server: {_one_line(exc)}"
            self._stop.wait(self._reconnect_interval_s)
            return
        with self._lock:
            self._source, self._connect_error = source, ""

    def _answer(self, obs, t_obs: float, prefix) -> None:
        start = time.monotonic()
        chunk, error = None, ""
        try:
            source = self._source
            if source is None:
                raise ConnectionError("the connection to the policy server was dropped")
            chunk = np.asarray(source.request(obs, t_obs, prefix=prefix), dtype=np.float64)
            if chunk.ndim != 2:
                raise ValueError(
                    f"the server sent a chunk of shape {chunk.shape}, expected (horizon, action_dim)"
                )
        except Exception as exc:  # the node holds and says why; the worker reconnects
            chunk, error = None, f"policy server request failed: {_one_line(exc)}"
            self.drop_connection(error)
        with self._lock:
            self._busy = False
        self._replies.put(Reply(t_obs, chunk, error, time.monotonic() - start))


def _close(source) -> None:
    close = getattr(source, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):  # closing a dead connection may fail; nothing to do about it
            close()
