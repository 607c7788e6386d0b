"""Simulation workers for steering: each process runs episodes of one task and asks the learner for every chunk.

A worker runs the ordinary control loop (:func:`manip.sim.tasks.controller_for`: observation history, chunk
executor, holds) on a :class:`PipeSource`, a chunk source whose ``request`` sends the observation window to the
learner process and waits for the chunk. So the learner batches the requests of all workers into one forward pass,
and sees, with each request, the reward and the env steps since the previous one. Messages are msgpack frames of
the wire protocol (:mod:`manip.real.client.protocol`), never pickle.

Learner → worker: ``{"type": "reset", "seed": s}`` (start an episode), ``{"type": "chunk", "chunk": (H, A)}``
(answer a request) or ``{"type": "stop"}``. Worker → learner: ``{"type": "request", "obs", "reward", "steps"}``,
``{"type": "end", "obs", "reward", "steps", "success"}`` (the episode ended: success or time-up) or
``{"type": "error", "message"}``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import traceback

import numpy as np

from manip.core.errors import ManipError
from manip.real.client.protocol import pack, unpack
from manip.real.client.sources import SourceMetadata


class StopWorker(Exception):
    """The learner asked the worker to stop (possibly in the middle of an episode)."""


class PipeSource:
    """A :class:`~manip.real.client.sources.ChunkSource` answered by the learner over a pipe."""

    def __init__(self, conn, metadata: SourceMetadata):
        self.conn, self.metadata = conn, metadata
        self.reward, self.steps = 0.0, 0

    def receive(self) -> dict:
        message = unpack(self.conn.recv_bytes())
        if message.get("type") == "stop":
            raise StopWorker
        return message

    def report(self, kind: str, obs: dict, **extra) -> None:
        """Send a request or an episode end with the reward and steps gathered since the last report."""
        self.conn.send_bytes(
            pack({"type": kind, "obs": obs, "reward": self.reward, "steps": self.steps, **extra})
        )
        self.reward, self.steps = 0.0, 0

    def request(self, obs, t_obs, prefix=None, instruction=None) -> np.ndarray:
        self.report("request", obs)
        return np.asarray(self.receive()["chunk"], dtype=np.float32)


def worker_main(conn, task: str, metadata: dict, horizon: int | None) -> None:
    """A worker process: build the env once, then run episodes until told to stop."""
    from manip.sim.env import make_env_for
    from manip.sim.tasks import controller_for

    env = None
    try:
        source = PipeSource(conn, SourceMetadata.from_json(metadata))
        env = make_env_for(source.metadata.obs_spec, task, horizon=horizon)
        controller = controller_for(source, env.task)
        while True:
            seed = int(source.receive()["seed"])
            obs, success = env.reset(seed=seed), False
            controller.reset()
            for step in range(env.horizon):
                decided = controller.act(obs, step * env.dt)
                obs, _reward, terminated, truncated, _info = env.step(decided.action)
                source.steps += 1
                if terminated:  # the task's sparse reward: 1 on success, which ends the episode
                    source.reward += 1.0
                    success = True
                    break
                if truncated:
                    break
            controller.history.push(obs)
            source.report("end", controller.history.window(), success=success)
    except StopWorker:
        pass
    except Exception as exc:  # reported to the learner, which raises it as one line
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        with contextlib.suppress(OSError):
            conn.send_bytes(pack({"type": "error", "message": detail}))
    finally:
        if env is not None:
            env.close()
        conn.close()


class EnvPool:
    """``workers`` spawned worker processes (never forked) and their pipes."""

    def __init__(self, task: str, metadata: SourceMetadata, workers: int, horizon: int | None = None):
        if workers < 1:
            raise ManipError(f"--workers must be >= 1, got {workers}")
        context = multiprocessing.get_context("spawn")
        self.conns, self.processes = [], []
        for _ in range(workers):
            parent, child = context.Pipe()
            process = context.Process(
                target=worker_main, args=(child, task, metadata.to_json(), horizon), daemon=True
            )
            process.start()
            child.close()
            self.conns.append(parent)
            self.processes.append(process)

    def __len__(self) -> int:
        return len(self.conns)

    def send(self, worker: int, message: dict) -> None:
        self.conns[worker].send_bytes(pack(message))

    def receive(self, worker: int) -> dict:
        try:
            message = unpack(self.conns[worker].recv_bytes())
        except EOFError:
            raise ManipError(f"steer: simulation worker {worker} exited unexpectedly") from None
        if message.get("type") == "error":
            raise ManipError(f"steer: simulation worker {worker} failed: {message.get('message')}")
        return message

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send_bytes(pack({"type": "stop"}))
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
        for conn in self.conns:
            conn.close()
