"""A pool of warm simulation workers, reused across episodes, tasks, evaluations and sweep cells.

Each worker is a process started with spawn (never fork) that imports robosuite once, then serves calls one at a
time; what a call builds (envs and their render contexts, policies) stays cached in the worker for the next one
(:func:`manip.sim.eval._source_and_env`). One pool per process (:func:`shared_pool`) lives until the process
exits, so ``manip eval --workers N`` pays start-up once per process and a sweep once for all its cells.

A call is a function named ``module:function`` under ``manip.`` and a JSON object of arguments; it returns a JSON
value. Calls and results cross the pipe as JSON. Workers ignore SIGINT (Ctrl-C is the parent's): on Ctrl-C the
parent sends no more calls and stops the busy workers with SIGTERM (they close their envs and render contexts and
exit); idle workers stay warm. A worker that dies during a call fails only that call (``Outcome.error``) and is
replaced.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from importlib import import_module

STOP_GRACE_S = 5.0
CRASHED = "worker process crashed"


@dataclass(frozen=True)
class Call:
    """One unit of work: ``target`` (``manip.module:function``) applied to ``args`` (JSON-ready keywords)."""

    target: str
    args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What came back from a call: ``value``, or ``error`` (one line) when it raised or its worker died."""

    value: object = None
    error: str = ""
    pid: int = 0
    served: int = 0
    """How many calls this worker process has served so far, this one included."""


# -- worker side ------------------------------------------------------------------------------------------------
def _close_and_exit(_signum, _frame) -> None:
    """SIGTERM in a worker: close the cached envs (their render contexts) and exit without cleanup noise."""
    try:
        from manip.sim.eval import release_worker_resources

        release_worker_resources()
    finally:
        os._exit(143)


def _resolve(target: str):
    module, _, name = target.partition(":")
    if not module.startswith("manip.") or not name:
        raise ValueError(f"call target '{target}' must be manip.<module>:<function>")
    return getattr(import_module(module), name)


def serve(conn) -> None:
    """A worker's main loop: import robosuite once, say ready, then answer calls until ``stop`` or EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _close_and_exit)
    started = time.perf_counter()
    from manip.sim.render import import_robosuite

    import_robosuite()
    import manip.sim.eval  # noqa: F401  (the episode loop and its env cache)

    conn.send_bytes(json.dumps({"ready": os.getpid(), "import_s": time.perf_counter() - started}).encode())
    served = 0
    while True:
        try:
            message = json.loads(conn.recv_bytes())
        except (EOFError, OSError):  # the parent went away
            break
        if message.get("stop"):
            break
        served += 1
        reply: dict = {"pid": os.getpid(), "served": served}
        try:
            reply["value"] = _resolve(message["target"])(**message["args"])
        except Exception as exc:  # the call failed; the worker goes on
            reply["error"] = f"{type(exc).__name__}: {exc}"
        conn.send_bytes(json.dumps(reply).encode())
    from manip.sim.eval import release_worker_resources

    release_worker_resources()


# -- parent side ------------------------------------------------------------------------------------------------
@contextmanager
def sigint_ignored():
    """Processes spawned inside start with SIGINT ignored, so a Ctrl-C during their start-up cannot hit them."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Worker:
    def __init__(self, context):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child,), name="manip-sim-worker")
        with sigint_ignored():
            self.process.start()
        child.close()
        self.ready = False
        self.busy: int | None = None  # index of the call it is running

    def send(self, message: dict) -> None:
        """Send ``message`` as JSON (a dead worker's broken pipe is ignored: its sentinel reports the death)."""
        with suppress(OSError):
            self.conn.send_bytes(json.dumps(message).encode())

    def read(self) -> dict | None:
        """The next reply (skipping the ready note), or None when the worker died."""
        while True:
            try:
                message = json.loads(self.conn.recv_bytes())
            except (EOFError, OSError, ValueError):
                return None
            if "ready" not in message:
                return message
            self.ready = True
            if not self.conn.poll():
                return {}

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.process.is_alive():
            os.kill(self.process.pid, signum)

    def join(self, timeout: float) -> None:
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class WorkerPool:
    """Warm worker processes (spawn) that serve :class:`Call` s; grows on demand, never forks."""

    def __init__(self):
        import multiprocessing

        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self.started = 0
        """Worker processes started so far (replacements included)."""

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    def ensure(self, size: int) -> None:
        """Start workers until ``size`` are alive (dead ones are dropped first)."""
        for worker in [w for w in self._workers if not w.process.is_alive()]:
            self._drop(worker)
        while len(self._workers) < size:
            self._workers.append(_Worker(self._context))
            self.started += 1

    def wait_ready(self) -> None:
        """Block until every worker has imported robosuite (start-up done)."""
        for worker in self._workers:
            while not worker.ready:
                if worker.read() is None:
                    break

    def run(self, calls: list[Call], workers: int) -> Iterator[tuple[int, Outcome]]:
        """Run ``calls`` on at most ``workers`` workers; yield ``(index, outcome)`` as each finishes.

        Calls go out one per idle worker (none queue up behind a busy one). A worker that dies fails only its
        call and is replaced. If the caller stops early (Ctrl-C, an exception, ``close()`` of the iterator), the
        calls not yet sent never run and the busy workers are stopped (:meth:`stop_busy`).
        """
        from multiprocessing.connection import wait

        self.ensure(workers)
        active = self._workers[:workers]
        queue = list(enumerate(calls))[::-1]
        try:
            while queue or any(w.busy is not None for w in active):
                for worker in active:
                    if worker.busy is None and queue:
                        index, call = queue.pop()
                        worker.busy = index
                        worker.send({"target": call.target, "args": call.args})
                busy = {w.conn: w for w in active if w.busy is not None}
                sentinels = {w.process.sentinel: w for w in busy.values()}
                for ready in wait([*busy, *sentinels]):
                    worker = busy.get(ready) or sentinels[ready]
                    if worker.busy is None:
                        continue  # already answered through the other handle
                    reply = worker.read()
                    if reply == {}:
                        continue  # only the ready note so far
                    index, worker.busy = worker.busy, None
                    if reply is None:  # died mid-call: replace it, fail only this call
                        yield index, Outcome(error=CRASHED, pid=worker.process.pid)
                        active[active.index(worker)] = self._replace(worker)
                        continue
                    yield (
                        index,
                        Outcome(reply.get("value"), reply.get("error", ""), reply["pid"], reply["served"]),
                    )
        except BaseException:
            self.stop_busy()
            raise

    def stop_busy(self) -> None:
        """Stop the workers that are running a call (SIGTERM: they close their envs and exit); keep the idle."""
        busy = [w for w in self._workers if w.busy is not None]
        for worker in busy:
            worker.stop()
        for worker in busy:
            worker.join(STOP_GRACE_S)
            self._drop(worker)

    def close(self) -> None:
        """Stop every worker (idle ones exit on their own after closing their envs)."""
        for worker in self._workers:
            if worker.busy is None:
                worker.send({"stop": True})
            else:
                worker.stop()
        for worker in self._workers:
            worker.join(STOP_GRACE_S)
        self._workers.clear()

    def _drop(self, worker: _Worker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        worker.process.join(0)

    def _replace(self, dead: _Worker) -> _Worker:
        dead.join(0)
        fresh = _Worker(self._context)
        self._workers[self._workers.index(dead)] = fresh
        self.started += 1
        return fresh


_SHARED: WorkerPool | None = None


def shared_pool() -> WorkerPool:
    """This process's pool (made on first use, closed when the process exits)."""
    global _SHARED
    if _SHARED is None:
        from multiprocessing import util

        _SHARED = WorkerPool()
        # run by multiprocessing's exit hook (also in spawned children) before it joins child processes
        util.Finalize(_SHARED, _SHARED.close, exitpriority=10)
    return _SHARED


def close_shared_pool() -> None:
    """Stop this process's pool now (the next :func:`shared_pool` starts fresh workers)."""
    global _SHARED
    if _SHARED is not None:
        _SHARED.close()
        _SHARED = None
