"""Light inference client: numpy + msgpack + websockets only (no torch), Python >= 3.10. See docs/PROTOCOL.md.

:class:`PolicyClient` (blocking) and :class:`AsyncPolicyClient` (asyncio) connect to ``manip serve``, read the
server's metadata, send observation windows and return action chunks with the server's per-stage timings and
the measured round-trip time. A lost connection raises :class:`ServerUnavailable` at once (so a control loop can
hold, never block) and the next call reconnects once the exponential back-off allows. Both clients implement
:class:`manip.real.client.sources.ChunkSource` (``metadata`` + ``request``), so ``manip eval --server`` and the ROS node drive
a :class:`manip.real.client.executor.ChunkExecutor` from them unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from manip.core.errors import ManipError
from manip.real.client.auth import auth_header
from manip.real.client.protocol import DEFAULT_MAX_FRAME_BYTES, PROTOCOL_VERSION, ProtocolError, pack, unpack
from manip.real.client.sources import SourceMetadata, SourceUnavailable


class ServerUnavailable(SourceUnavailable):
    """No connection to the server right now (refused, closed, timed out); a later call retries."""


class ServerError(ManipError):
    """The server answered with an error reply; ``code`` says which kind (the connection stays usable)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(f"server error ({code}): {message}")


@dataclass
class Backoff:
    """Exponential back-off with jitter: after n failures wait ``min(max_s, base_s·2^(n-1))`` × U(0.5, 1)."""

    base_s: float = 0.1
    max_s: float = 5.0
    failures: int = 0
    next_try: float = 0.0

    def ready(self) -> bool:
        return time.monotonic() >= self.next_try

    def wait_s(self) -> float:
        return max(0.0, self.next_try - time.monotonic())

    def failed(self) -> None:
        self.failures += 1
        delay = min(self.max_s, self.base_s * 2 ** (self.failures - 1)) * random.uniform(0.5, 1.0)
        self.next_try = time.monotonic() + delay

    def succeeded(self) -> None:
        self.failures, self.next_try = 0, 0.0


@dataclass
class Reply:
    """One chunk with its timings: the server's (decode, queue, infer, encode, server total) and the RTT."""

    chunk: np.ndarray
    timings: dict[str, float]
    rtt_ms: float
    t_obs: float | None = None


@dataclass
class _Session:
    """State shared by the sync and async clients: ids, metadata, back-off and the last measurements."""

    url: str
    token: str | None
    request_timeout_s: float
    max_frame_bytes: int
    backoff: Backoff = field(default_factory=Backoff)
    ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    server_info: dict[str, Any] = field(default_factory=dict)
    meta: SourceMetadata | None = None
    last_timings: dict[str, float] = field(default_factory=dict)
    rtts_ms: list[float] = field(default_factory=list)
    connects: int = 0

    def connect_kwargs(self) -> dict:
        return {
            "additional_headers": auth_header(self.token),
            "max_size": self.max_frame_bytes,
            "compression": None,
        }

    def read_metadata(self, frame) -> SourceMetadata:
        message = unpack(frame)
        if message.get("type") != "metadata":
            raise ServerUnavailable(f"{self.url}: expected metadata first, got {message.get('type')!r}")
        if message.get("protocol") != PROTOCOL_VERSION:
            raise ManipError(
                f"{self.url}: server speaks protocol {message.get('protocol')}, this client {PROTOCOL_VERSION}"
            )
        self.server_info = message
        self.meta = SourceMetadata.from_json(message)
        return self.meta

    def infer_frame(self, obs, t_obs, prefix, instruction, steps) -> tuple[int, bytes]:
        request_id = next(self.ids)
        message: dict[str, Any] = {
            "type": "infer",
            "id": request_id,
            "obs": {k: np.asarray(v) for k, v in obs.items()},
            "t_obs": time.time() if t_obs is None else float(t_obs),
        }
        if prefix is not None:
            message["prefix"] = np.asarray(prefix, dtype=np.float32)
        if instruction is not None and self.meta is not None and self.meta.takes_instruction:
            message["instruction"] = instruction  # a policy that takes none refuses one
        if steps is not None:
            message["steps"] = int(steps)
        return request_id, pack(message)

    def match(self, frame, request_id: int) -> dict | None:
        """The reply for ``request_id`` (None for a stale reply to an older request); errors raise."""
        try:
            message = unpack(frame)
        except ProtocolError as exc:
            raise ServerUnavailable(f"{self.url}: undecodable reply ({exc})") from None
        if message.get("id") != request_id:
            return None
        if message.get("type") == "error":
            raise ServerError(str(message.get("code")), str(message.get("error")))
        return message

    def reply(self, message: dict, sent: float) -> Reply:
        rtt_ms = (time.perf_counter() - sent) * 1e3
        timings = {k: float(v) for k, v in (message.get("timings") or {}).items()}
        timings["rtt_ms"] = rtt_ms
        self.last_timings = timings
        self.rtts_ms.append(rtt_ms)
        return Reply(np.array(message["chunk"], dtype=np.float32), timings, rtt_ms, message.get("t_obs"))

    def unavailable(self, exc: BaseException) -> ServerUnavailable:
        self.backoff.failed()
        return ServerUnavailable(f"{self.url}: {type(exc).__name__}: {exc}".strip().rstrip(":"))

    def not_yet(self) -> ServerUnavailable:
        return ServerUnavailable(f"{self.url}: not connected; next try in {self.backoff.wait_s():.2f} s")


_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, asyncio.TimeoutError, EOFError)


def _connection_errors() -> tuple[type[BaseException], ...]:
    from websockets.exceptions import InvalidHandshake, WebSocketException

    return (*_CONNECTION_ERRORS, WebSocketException, InvalidHandshake)


class _ClientBase:
    """What the blocking and the asyncio client share: the session state and the constructor."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        request_timeout_s: float = 10.0,
        connect_timeout_s: float = 5.0,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        backoff: Backoff | None = None,
    ):
        self.session = _Session(url, token, request_timeout_s, max_frame_bytes, backoff or Backoff())
        self.connect_timeout_s = connect_timeout_s
        self.ws = None


class PolicyClient(_ClientBase):
    """Blocking client. ``metadata`` connects on first use; ``infer`` returns a :class:`Reply`.

    ``request(obs, t_obs, prefix=None, instruction=None)`` is the :class:`ChunkSource` form (chunk only).
    """

    # -- connection -----------------------------------------------------------------------------------------
    def connect(self) -> SourceMetadata:
        """Connect now (or raise :class:`ServerUnavailable`); returns the server's metadata."""
        from websockets.sync.client import connect

        s = self.session
        if self.ws is not None:
            return s.meta
        if not s.backoff.ready():
            raise s.not_yet()
        try:
            ws = connect(s.url, open_timeout=self.connect_timeout_s, **s.connect_kwargs())
            meta = s.read_metadata(ws.recv(timeout=self.connect_timeout_s))
        except ManipError:
            s.backoff.failed()
            raise
        except _connection_errors() as exc:
            raise s.unavailable(exc) from None
        s.connects += 1
        s.backoff.succeeded()
        self.ws = ws
        return meta

    def close(self) -> None:
        """Close the connection (a later call reconnects)."""
        if self.ws is not None:
            ws, self.ws = self.ws, None
            ws.close()

    def __enter__(self) -> PolicyClient:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def metadata(self) -> SourceMetadata:
        """The policy's metadata (specs, horizon, n_obs_steps, control rate, checkpoint id)."""
        return self.session.meta if self.session.meta is not None else self.connect()

    @property
    def server_info(self) -> dict[str, Any]:
        """The server's full metadata message (protocol, limits, …)."""
        self.metadata  # noqa: B018 (connects when needed)
        return self.session.server_info

    @property
    def last_timings(self) -> dict[str, float]:
        """Timings of the last reply: decode_ms, queue_ms, wait_ms, infer_ms, encode_ms, server_ms, batch_size,
        rtt_ms."""
        return self.session.last_timings

    # -- requests -------------------------------------------------------------------------------------------
    def _exchange(self, request_id: int, frame: bytes) -> tuple[dict, float]:
        s = self.session
        if self.ws is None:
            self.connect()
        sent = time.perf_counter()
        try:
            self.ws.send(frame)
            deadline = sent + s.request_timeout_s
            while True:
                reply = s.match(self.ws.recv(timeout=max(0.0, deadline - time.perf_counter())), request_id)
                if reply is not None:
                    return reply, sent
        except _connection_errors() as exc:
            self._drop()
            raise s.unavailable(exc) from None

    def _drop(self) -> None:
        ws, self.ws = self.ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()

    def infer(
        self,
        obs: Mapping[str, np.ndarray],
        t_obs: float | None = None,
        *,
        prefix: np.ndarray | None = None,
        instruction: str | None = None,
        steps: int | None = None,
    ) -> Reply:
        """Send ``obs`` ``{key: (n_obs_steps, ...)}`` (taken at ``t_obs``, default now) and wait for the chunk.

        ``instruction`` is sent only when the served policy takes one (metadata ``takes_instruction``), so callers
        may pass their task's instruction to any :class:`ChunkSource`.
        """
        if self.ws is None:
            self.connect()  # the metadata decides what the request carries
        request_id, frame = self.session.infer_frame(obs, t_obs, prefix, instruction, steps)
        message, sent = self._exchange(request_id, frame)
        return self.session.reply(message, sent)

    def request(self, obs, t_obs, prefix=None, instruction=None) -> np.ndarray:
        """:class:`ChunkSource` form of :meth:`infer`: the chunk ``(horizon, action_dim)``."""
        return self.infer(obs, t_obs, prefix=prefix, instruction=instruction).chunk

    def ping(self) -> float:
        """Round-trip time of a ping, in milliseconds."""
        request_id = next(self.session.ids)
        _, sent = self._exchange(request_id, pack({"type": "ping", "id": request_id}))
        return (time.perf_counter() - sent) * 1e3


class AsyncPolicyClient(_ClientBase):
    """Asyncio client with the same behaviour as :class:`PolicyClient` (``await client.infer(...)``).

    ``metadata`` is available after ``await client.connect()``.
    """

    async def connect(self) -> SourceMetadata:
        """Connect now (or raise :class:`ServerUnavailable`); returns the server's metadata."""
        from websockets.asyncio.client import connect

        s = self.session
        if self.ws is not None:
            return s.meta
        if not s.backoff.ready():
            raise s.not_yet()
        try:
            ws = await connect(s.url, open_timeout=self.connect_timeout_s, **s.connect_kwargs())
            meta = s.read_metadata(await asyncio.wait_for(ws.recv(), self.connect_timeout_s))
        except ManipError:
            s.backoff.failed()
            raise
        except _connection_errors() as exc:
            raise s.unavailable(exc) from None
        s.connects += 1
        s.backoff.succeeded()
        self.ws = ws
        return meta

    async def close(self) -> None:
        if self.ws is not None:
            ws, self.ws = self.ws, None
            await ws.close()

    async def __aenter__(self) -> AsyncPolicyClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def metadata(self) -> SourceMetadata:
        if self.session.meta is None:
            raise ServerUnavailable(f"{self.session.url}: not connected yet (await connect())")
        return self.session.meta

    @property
    def last_timings(self) -> dict[str, float]:
        return self.session.last_timings

    async def _exchange(self, request_id: int, frame: bytes) -> tuple[dict, float]:
        s = self.session
        if self.ws is None:
            await self.connect()
        sent = time.perf_counter()
        try:
            await self.ws.send(frame)
            deadline = sent + s.request_timeout_s
            while True:
                remaining = max(0.0, deadline - time.perf_counter())
                reply = s.match(await asyncio.wait_for(self.ws.recv(), remaining), request_id)
                if reply is not None:
                    return reply, sent
        except _connection_errors() as exc:
            ws, self.ws = self.ws, None
            if ws is not None:
                await ws.close()
            raise s.unavailable(exc) from None

    async def infer(self, obs, t_obs=None, *, prefix=None, instruction=None, steps=None) -> Reply:
        """See :meth:`PolicyClient.infer`."""
        if self.ws is None:
            await self.connect()  # the metadata decides what the request carries
        request_id, frame = self.session.infer_frame(obs, t_obs, prefix, instruction, steps)
        message, sent = await self._exchange(request_id, frame)
        return self.session.reply(message, sent)

    async def request(self, obs, t_obs, prefix=None, instruction=None) -> np.ndarray:
        """Chunk only (the asyncio form of :meth:`PolicyClient.request`)."""
        return (await self.infer(obs, t_obs, prefix=prefix, instruction=instruction)).chunk

    async def ping(self) -> float:
        """Round-trip time of a ping, in milliseconds."""
        request_id = next(self.session.ids)
        _, sent = await self._exchange(request_id, pack({"type": "ping", "id": request_id}))
        return (time.perf_counter() - sent) * 1e3
