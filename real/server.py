"""The inference server: asyncio websockets, binary msgpack frames, dynamic batching on a worker thread.

One event loop accepts connections, decodes and checks requests and sends replies; the model runs on a single
worker thread, so a forward pass never blocks the loop. Requests from all connections go into one queue; the
batcher takes what is there, waits up to ``batch_wait_ms`` for more only while another recently active
connection (one that sent an ``infer`` in the last ``ACTIVE_WINDOW_S``) has no request in the batch, groups
requests that can share a forward pass (same prefix length, instruction presence and sampling steps) and runs
each group as one batch. A lone active client is therefore never delayed by idle connections. The wire protocol
is in docs/PROTOCOL.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import numpy as np
from pydantic import Field

from manip.core.config import StrictConfig
from manip.core.errors import ManipError
from manip.real.client.messages import (
    InferRequest,
    check_keys,
    chunk_message,
    error_message,
    metadata_message,
    parse_infer,
    request_type,
)
from manip.real.client.protocol import (
    DEFAULT_MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    ProtocolError,
    encode_array,
    pack,
    unpack,
)
from manip.real.client.sources import ChunkSource

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
HEALTH_PATH = "/healthz"
ACTIVE_WINDOW_S = 1.0
"""A connection that sent an ``infer`` this recently counts as active: the batcher may wait for its next one."""


class ServerConfig(StrictConfig):
    """Where and how the server listens and batches."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_batch: int = Field(16, ge=1)
    """Most requests in one forward pass (1 turns batching off)."""
    batch_wait_ms: float = Field(2.0, ge=0)
    """Longest wait for more requests before a forward pass; only while another active connection has none in
    the batch (see ``ACTIVE_WINDOW_S``)."""
    max_frame_bytes: int = Field(DEFAULT_MAX_FRAME_BYTES, ge=1024)
    """Largest accepted message (all its websocket frames together); a larger one closes the connection with
    close code 1009."""
    max_queue: int = Field(1024, ge=1)
    """A request arriving while this many wait for the model gets an ``overloaded`` error reply."""
    warmup: int = Field(2, ge=0)
    """Warm-up rounds on dummy observations before the first client is accepted; each round runs a batch of 1
    and, when ``max_batch > 1``, a batch of 2 (so a compiled model has its graphs for both)."""


def check_bind(host: str, token: str | None) -> None:
    """Binding anywhere but loopback needs a token (one-line error otherwise)."""
    if host not in LOCAL_HOSTS and not token:
        raise ManipError(
            f"binding to {host} exposes the robot's policy to the network: give a token with --token-file "
            "or MANIP_SERVER_TOKEN (or bind 127.0.0.1)"
        )


def bearer_token(header: str) -> str | None:
    """The credentials of an ``Authorization: Bearer <token>`` header value (the scheme is case-insensitive,
    RFC 7235); None for another scheme or no credentials."""
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip() or None


def dummy_observation(source: ChunkSource) -> dict[str, np.ndarray]:
    """A zero observation window matching the source's spec (for warm-up)."""
    meta = source.metadata
    return {f.name: np.zeros((meta.n_obs_steps, *f.shape), dtype=f.dtype) for f in meta.obs_spec.features}


def run_batch(source: ChunkSource, requests: list[InferRequest]) -> np.ndarray:
    """Chunks ``(B, H, A)`` float32 for compatible requests: one ``request_batch`` call when the source has it.

    Each request's ``prefix`` is copied into the first ``P`` actions of its chunk, so they are bit-identical to
    what the client sent (a policy holds the prefix in normalized space: unnormalizing moves it by up to 1 ulp).
    """
    first = requests[0]
    prefix = None if first.prefix is None else np.stack([r.prefix for r in requests])
    batch_fn = getattr(source, "request_batch", None)
    if batch_fn is None:
        chunks = [
            source.request(r.obs, r.t_obs or 0.0, prefix=r.prefix, instruction=r.instruction)
            for r in requests
        ]
    else:
        obs = {k: np.stack([r.obs[k] for r in requests]) for k in first.obs}
        instructions = None if first.instruction is None else [r.instruction for r in requests]
        kwargs = {"steps": first.steps} if first.steps is not None else {}
        chunks = batch_fn(obs, prefix, instructions, **kwargs)
    chunks = np.array(chunks, dtype=np.float32)  # a writable copy
    if prefix is not None:
        chunks[:, : prefix.shape[1]] = prefix
    return chunks


@dataclass
class Pending:
    """A request waiting for its chunk."""

    request: InferRequest
    future: asyncio.Future
    enqueued: float
    connection: int
    result: dict[str, Any] = field(default_factory=dict)


class PolicyServer:
    """Serve a :class:`ChunkSource` over websockets (see the module docstring and docs/PROTOCOL.md)."""

    def __init__(self, source: ChunkSource, config: ServerConfig | None = None, token: str | None = None):
        self.source = source
        self.config = config or ServerConfig()
        self.token = token or None
        check_bind(self.config.host, self.token)
        self.meta = source.metadata
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="manip-model")
        self.connections = 0
        self.connection_numbers = itertools.count()
        self.last_infer: dict[int, float] = {}
        """Connection number → when it last sent an ``infer`` (``time.perf_counter``)."""
        self.batches = 0
        self.port: int | None = None
        self.queue: asyncio.Queue[Pending] | None = None
        self._stop: asyncio.Event | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Run ``config.warmup`` rounds (compile kernels, allocate memory) before accepting clients: a batch of 1
        and, when batching is on, a batch of 2 (a compiled model specializes batch size 1)."""
        obs = dummy_observation(self.source)
        instruction = "warm up" if self.meta.takes_instruction else None
        req = InferRequest(id=0, obs=obs, t_obs=0.0, instruction=instruction, prefix=None, steps=None)
        sizes = (1, 2) if self.config.max_batch > 1 else (1,)
        for _ in range(self.config.warmup):
            for size in sizes:
                run_batch(self.source, [req] * size)
        reset = getattr(self.source, "reset_sampling", None)
        if callable(reset):  # no sampling state from the dummy observation reaches the first client
            reset()

    async def serve(self, on_ready: Callable[[PolicyServer], None] | None = None) -> None:
        """Warm up, listen, call ``on_ready(self)`` and serve until :meth:`stop`."""
        from websockets.asyncio.server import serve

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.worker, self.warm_up)
        self._stop = asyncio.Event()
        self.queue = asyncio.Queue()
        batcher = asyncio.create_task(self._batcher())
        async with serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            max_size=self.config.max_frame_bytes,
            compression=None,
            ping_interval=20,
            ping_timeout=20,
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            if on_ready is not None:
                on_ready(self)
            await self._stop.wait()
        batcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await batcher

    def stop(self) -> None:
        """Ask :meth:`serve` to return (call from the loop's thread)."""
        if self._stop is not None:
            self._stop.set()

    # -- HTTP: health and auth ------------------------------------------------------------------------------
    def _process_request(self, connection, request):
        if request.path.split("?")[0] == HEALTH_PATH:
            body = {"status": "ok", "protocol": PROTOCOL_VERSION, "clients": self.connections}
            return _with_header(
                connection.respond(HTTPStatus.OK, json.dumps(body) + "\n"), "Content-Type", "application/json"
            )
        if self.token is not None:
            given = bearer_token(request.headers.get("Authorization", "")) or ""
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                refused = connection.respond(HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
                return _with_header(refused, "WWW-Authenticate", "Bearer")
        return None

    # -- one connection -------------------------------------------------------------------------------------
    async def _handle(self, ws) -> None:
        self.connections += 1
        number = next(self.connection_numbers)
        tasks: set[asyncio.Task] = set()
        try:
            await ws.send(pack(self._metadata()))
            async for frame in ws:
                received = time.perf_counter()
                reply = self._decode(frame, received, number)
                if isinstance(reply, Pending):
                    task = asyncio.create_task(self._answer(ws, reply, received))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                else:
                    await ws.send(pack(reply))
        except Exception as exc:  # a broken connection must never take the server down
            from websockets.exceptions import ConnectionClosed

            if not isinstance(exc, ConnectionClosed):
                print(f"manip serve: connection error: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            self.connections -= 1
            self.last_infer.pop(number, None)
            for task in tasks:
                task.cancel()

    def _metadata(self) -> dict:
        return metadata_message(
            self.meta,
            max_frame_bytes=self.config.max_frame_bytes,
            max_batch=self.config.max_batch,
            batch_wait_ms=self.config.batch_wait_ms,
            max_queue=self.config.max_queue,
            auth=self.token is not None,
        )

    def _decode(self, frame, received: float, connection: int) -> dict | Pending:
        """A message → an immediate reply (error, pong, metadata) or a queued :class:`Pending` inference.

        Error replies carry the message's ``id`` when it decodes to a map with one, else nil.
        """
        try:
            message = unpack(frame, max_bytes=self.config.max_frame_bytes)
        except ProtocolError as exc:
            return error_message(None, "bad_frame", str(exc))
        request_id = message.get("id")
        try:
            kind = request_type(message)
        except ProtocolError as exc:
            return error_message(request_id, "bad_frame", str(exc))
        try:
            if kind != "infer":
                check_keys(message, kind)
                if kind == "ping":
                    return {"type": "pong", "id": request_id, "t_server": time.time()}
                return {**self._metadata(), "id": request_id}
            request = parse_infer(message, self.meta)
        except ManipError as exc:
            return error_message(request_id, "bad_request", str(exc))
        now = time.perf_counter()
        self.last_infer[connection] = now
        if self.queue.qsize() >= self.config.max_queue:
            return error_message(
                request_id, "overloaded", f"{self.queue.qsize()} requests are already queued"
            )
        pending = Pending(request, asyncio.get_running_loop().create_future(), now, connection)
        pending.result["decode_ms"] = (now - received) * 1e3
        self.queue.put_nowait(pending)
        return pending

    async def _answer(self, ws, pending: Pending, received: float) -> None:
        try:
            chunk = await pending.future
        except Exception as exc:
            await ws.send(pack(error_message(pending.request.id, "internal", f"{type(exc).__name__}: {exc}")))
            return
        start = time.perf_counter()
        timings = dict(pending.result)
        encoded = encode_array(np.asarray(chunk, dtype=np.float32))  # the bulk of the reply, timed
        timings["encode_ms"] = (time.perf_counter() - start) * 1e3
        timings["server_ms"] = (time.perf_counter() - received) * 1e3
        await ws.send(pack(chunk_message(pending.request.id, pending.request.t_obs, encoded, timings)))

    # -- batching -------------------------------------------------------------------------------------------
    def _others_active(self, batch: list[Pending]) -> bool:
        """Whether a connection with no request in ``batch`` sent an ``infer`` within ``ACTIVE_WINDOW_S``."""
        present = {p.connection for p in batch}
        since = time.perf_counter() - ACTIVE_WINDOW_S
        return any(t >= since for number, t in self.last_infer.items() if number not in present)

    async def _batcher(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = time.perf_counter() + self.config.batch_wait_ms / 1e3
            waited = 0.0
            while len(batch) < self.config.max_batch:
                if not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                    continue
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or not self._others_active(batch):
                    break
                start = time.perf_counter()
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), remaining))
                except (TimeoutError, asyncio.TimeoutError):  # distinct classes on Python 3.10
                    break
                finally:
                    waited += time.perf_counter() - start
            for p in batch:
                p.result["wait_ms"] = waited * 1e3
            for group in _group(batch):
                await self._run_group(loop, group)

    async def _run_group(self, loop, group: list[Pending]) -> None:
        start = time.perf_counter()
        try:
            chunks = await loop.run_in_executor(
                self.worker, run_batch, self.source, [p.request for p in group]
            )
        except Exception as exc:
            for p in group:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        infer_ms = (time.perf_counter() - start) * 1e3
        self.batches += 1
        for p, chunk in zip(group, chunks, strict=True):
            p.result.update(queue_ms=(start - p.enqueued) * 1e3, infer_ms=infer_ms, batch_size=len(group))
            if not p.future.done():
                p.future.set_result(chunk)


def _with_header(response, name: str, value: str):
    """``response`` with its header ``name`` set to ``value`` (replacing any)."""
    if name in response.headers:
        del response.headers[name]
    response.headers[name] = value
    return response


def _group(batch: list[Pending]) -> list[list[Pending]]:
    groups: dict[tuple, list[Pending]] = {}
    for p in batch:
        groups.setdefault(p.request.batch_key(), []).append(p)
    return list(groups.values())
