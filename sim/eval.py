"""Parallel evaluation: Env → ChunkSource → ChunkExecutor → Env, one episode per seed, ``results.json``.

Episodes run in the process's warm worker pool (:mod:`manip.sim.workers`: spawn, never fork), each worker with
its own envs and render contexts, reused across the episodes, tasks and evaluations it serves. Episode ``i`` uses
seed ``seed + i``. A worker that crashes (segfault, killed, exception) marks its episode failed-with-error and is
replaced; the others go on. The first ``video`` episodes are saved as mp4.
"""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

from manip.core.errors import ManipError
from manip.core.progress import progress
from manip.core.provenance import code_provenance
from manip.sim.stats import percentiles_ms, wilson_interval
from manip.sim.tasks import controller_for

CRASH_ENV = "MANIP_EVAL_CRASH_SEEDS"  # testing hook: comma-separated seeds whose worker process dies
VIDEO_SIZE = 128


@dataclass(frozen=True)
class SourceSpec:
    """How a worker builds its chunk source (plain data, so it crosses the spawn boundary).

    ``kind``: ``expert`` (the task's scripted expert), ``checkpoint`` (``path``: CKPT dir, loaded with
    ``manip.policies.serving.LocalPolicySource``) or ``server`` (``url``: ws://HOST:PORT, ``token``).
    """

    kind: str
    path: str = ""
    url: str = ""
    token: str | None = None

    def label(self) -> str:
        return {"expert": "expert", "checkpoint": self.path, "server": self.url}.get(self.kind, self.kind)


@dataclass(frozen=True)
class EpisodeJob:
    task: str
    seed: int
    source: SourceSpec
    video_path: str = ""
    horizon: int | None = None
    executor: tuple[tuple[str, object], ...] = ()
    """:class:`manip.real.client.executor.ExecutorConfig` fields that override the checkpoint's (``n_action_steps``, ``mode``)."""
    delay_ms: float = 0.0
    """Injected delay per chunk request (simulated time), see :class:`manip.real.client.latency.InjectedDelay`."""
    jitter_ms: float = 0.0
    """Uniform jitter in ``[0, jitter_ms]`` added to ``delay_ms`` (seeded by the episode's seed)."""


# -- worker side ------------------------------------------------------------------------------------------------
CACHE_SIZE = 4
"""Envs (with their render contexts) and policy sources a process keeps warm, least recently used closed first."""


class _Lru:
    """At most :data:`CACHE_SIZE` values by key; ``close`` is called on the ones pushed out."""

    def __init__(self, close):
        self.entries: OrderedDict = OrderedDict()
        self.close = close

    def get(self, key, build):
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key]
        while len(self.entries) >= CACHE_SIZE:
            self.close(self.entries.popitem(last=False)[1])
        self.entries[key] = build()
        return self.entries[key]

    def clear(self) -> None:
        while self.entries:
            self.close(self.entries.popitem(last=False)[1])


def _close_source(source) -> None:
    if hasattr(source, "close"):
        source.close()


_ENVS = _Lru(lambda pair: pair[0].close())  # (task, obs spec, horizon) -> (env, expert source or None)
_SOURCES = _Lru(_close_source)  # SourceSpec of a checkpoint or server -> its source


def _source_and_env(job: EpisodeJob):
    """The source and an env whose observations match its spec, built once per process and kept warm.

    Envs are kept per (task, observation spec, horizon) and sources per :class:`SourceSpec`, each in a small LRU
    (:data:`CACHE_SIZE`), so one process serves several tasks, policies and settings without rebuilding envs or
    render contexts.
    """
    from manip.sim.env import make_env, make_env_for

    spec = job.source
    if spec.kind == "expert":
        from manip.sim.experts.source import ExpertSource

        def expert_env():
            env = make_env(job.task, offscreen=True, horizon=job.horizon)
            return env, ExpertSource(env)

        env, expert = _ENVS.get((job.task, "expert", job.horizon), expert_env)
        return expert, env
    source = _SOURCES.get(spec, lambda: _make_source(spec))
    obs_spec = source.metadata.obs_spec
    key = (job.task, json.dumps(obs_spec.to_json(), sort_keys=True), job.horizon)
    env, _ = _ENVS.get(
        key, lambda: (make_env_for(obs_spec, job.task, offscreen=True, horizon=job.horizon), None)
    )
    return source, env


def _make_source(spec: SourceSpec):
    if spec.kind == "checkpoint":
        from manip.policies.serving import LocalPolicySource

        return LocalPolicySource.from_checkpoint(spec.path)
    if spec.kind == "server":
        from manip.real.client.connection import PolicyClient

        return PolicyClient(spec.url, token=spec.token)
    raise ManipError(f"unknown source kind '{spec.kind}'")


def cached_envs() -> list[list]:
    """``[task, horizon]`` of every env this process keeps warm, least recently used first."""
    return [[task, horizon] for task, _spec, horizon in _ENVS.entries]


def release_worker_resources() -> None:
    """Close this process's cached envs (their render contexts) and sources; the next episode builds them again."""
    _ENVS.clear()
    _SOURCES.clear()


def run_episode(job: EpisodeJob) -> dict:
    """Run one episode; returns its per-episode record plus the policy's request times (seconds)."""
    if str(job.seed) in os.environ.get(CRASH_ENV, "").split(","):
        os._exit(3)  # simulate a hard worker crash (testing hook)
    source, env = _source_and_env(job)
    obs = env.reset(seed=job.seed)
    if hasattr(source, "start_episode"):
        source.start_episode(job.seed)
    delay = None
    if job.delay_ms or job.jitter_ms:
        from manip.real.client.latency import InjectedDelay

        delay = InjectedDelay(job.delay_ms / 1e3, job.jitter_ms / 1e3, seed=job.seed)
    controller = controller_for(source, env.task, delay, **dict(job.executor))
    frames = []
    success, steps, held = False, 0, 0
    for step in range(env.horizon):
        if job.video_path:
            frames.append(env.render("agentview", VIDEO_SIZE))
        decided = controller.act(obs, step * env.dt)
        held += bool(decided.held)
        obs, _reward, terminated, truncated, _info = env.step(decided.action)
        steps = step + 1
        if terminated:
            success = True
            break
        if truncated:
            break
    if job.video_path:
        from manip.sim.video import write_mp4

        frames.append(env.render("agentview", VIDEO_SIZE))
        write_mp4(job.video_path, frames, fps=env.control_rate)
    return {
        "seed": job.seed,
        "success": success,
        "steps": steps,
        "held_ticks": held,
        "chunks": len(controller.request_seconds),
        "request_s": controller.request_seconds,
        "checkpoint_id": source.metadata.checkpoint_id or None,
    }


def _safe_episode(job: EpisodeJob) -> dict:
    try:
        return run_episode(job)
    except Exception as exc:  # a failing episode is recorded, not fatal
        return _error_record(job, f"{type(exc).__name__}: {exc}")


def _error_record(job: EpisodeJob, error: str) -> dict:
    return {
        "seed": job.seed, "success": False, "steps": 0, "held_ticks": 0, "chunks": 0, "error": error, "request_s": [],
    }  # fmt: skip


def episode_call(job: dict, crash_seeds: str = "") -> dict:
    """One episode in a pool worker (:mod:`manip.sim.workers`): ``job`` is an :class:`EpisodeJob` as JSON.

    ``crash_seeds`` carries the parent's :data:`CRASH_ENV` (a warm worker started before it was set)."""
    if crash_seeds:
        os.environ[CRASH_ENV] = crash_seeds
    else:
        os.environ.pop(CRASH_ENV, None)
    return _safe_episode(_job_from_json(job))


def _job_to_json(job: EpisodeJob) -> dict:
    return {**asdict(job), "executor": [list(item) for item in job.executor]}


def _job_from_json(raw: dict) -> EpisodeJob:
    fields = {**raw, "source": SourceSpec(**raw["source"])}
    return EpisodeJob(**{**fields, "executor": tuple(tuple(item) for item in raw["executor"])})


# -- parent side ------------------------------------------------------------------------------------------------
def _spawn_pool(workers: int):
    """This process's warm pool (:func:`manip.sim.workers.shared_pool`) with at least ``workers`` workers."""
    from manip.sim.workers import shared_pool

    pool = shared_pool()
    pool.ensure(workers)
    return pool


def _run_parallel(jobs: list[EpisodeJob], workers: int, quiet: bool) -> list[dict]:
    """Run ``jobs`` on the warm pool; a worker that dies marks only its episode failed-with-error."""
    from manip.sim.workers import Call

    pool = _spawn_pool(workers)
    crash_seeds = os.environ.get(CRASH_ENV, "")
    calls = [
        Call("manip.sim.eval:episode_call", {"job": _job_to_json(j), "crash_seeds": crash_seeds})
        for j in jobs
    ]
    records: dict[int, dict] = {}
    finished = pool.run(calls, workers)
    try:
        for index, outcome in progress(finished, desc="eval", total=len(jobs), quiet=quiet, unit="ep"):
            job = jobs[index]
            records[job.seed] = outcome.value if not outcome.error else _error_record(job, outcome.error)
    except BaseException:
        pool.stop_busy()
        raise
    return [records[job.seed] for job in jobs]


def evaluate(
    source: SourceSpec,
    task: str,
    episodes: int,
    out: str | Path,
    seed: int = 0,
    workers: int = 1,
    video: int = 0,
    horizon: int | None = None,
    quiet: bool = False,
    action_steps: int | None = None,
    executor_mode: str | None = None,
    ensemble_every: int | None = None,
    delay_ms: float = 0.0,
    jitter_ms: float = 0.0,
) -> dict:
    """Evaluate ``source`` on ``task`` for ``episodes`` seeds; write ``out/results.json`` (+ videos); return it.

    ``action_steps`` overrides the checkpoint's ``n_action_steps`` (actions executed per chunk) for this run;
    ``executor_mode`` the chunk executor's mode (:data:`manip.real.client.executor.MODES`, default ``receding``) and
    ``ensemble_every`` how often ``ensemble`` mode requests a chunk (ticks). ``delay_ms`` (+ uniform
    ``jitter_ms``) delays every chunk in simulated time: the robot holds (``receding``) or keeps executing the
    previous chunk (``ensemble``, ``async``, ``rtc``) until it arrives.
    """
    executor = check_eval_options(
        task, episodes, workers, action_steps, executor_mode, ensemble_every, delay_ms, jitter_ms
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if video:
        (out / "videos").mkdir(exist_ok=True)
    jobs = [
        EpisodeJob(
            task, seed + i, source, str(out / "videos" / f"episode_{i:03d}_seed{seed + i}.mp4") if i < video else "",
            horizon, tuple(sorted(executor.items())), float(delay_ms), float(jitter_ms),
        )
        for i in range(episodes)
    ]  # fmt: skip
    provenance = code_provenance()  # the code as the run starts (the tree may change while it runs)
    started = time.perf_counter()
    if workers == 1 and not os.environ.get(CRASH_ENV):
        ticks = progress(jobs, desc="eval", total=len(jobs), quiet=quiet, unit="ep")
        records = [_safe_episode(job) for job in ticks]
    else:
        records = _run_parallel(jobs, min(workers, episodes), quiet)
    wall = time.perf_counter() - started
    request_s = [t for r in records for t in r.pop("request_s")]
    served_ids = {r.pop("checkpoint_id", None) for r in records} - {None}
    results = {
        **episode_summary(task, [job.seed for job in jobs], records),
        "latency_ms": percentiles_ms(request_s),
        "delay_ms": float(delay_ms),
        "jitter_ms": float(jitter_ms),
        "held_fraction": sum(r["held_ticks"] for r in records) / max(1, sum(r["steps"] for r in records)),
        "source": source.label(),
        "errors": sum("error" in r for r in records),
        "workers": workers,
        "wall_s": round(wall, 3),
        **provenance,
        "checkpoint_id": None if source.kind == "expert" else next(iter(sorted(served_ids)), None),
    }
    if action_steps is not None:
        results["action_steps"] = action_steps
    if executor_mode is not None:  # (--ensemble-every needs it)
        results["executor"] = {k: v for k, v in executor.items() if k != "n_action_steps"}
    write_results(out, results, latencies_ms=[t * 1000 for t in request_s])
    return results


def episode_summary(task: str, seeds: list[int], records: list[dict]) -> dict:
    """The success part of results.json from per-episode records (``success`` each): task, episodes,
    successes, success_rate, ci95 (Wilson), seeds, per_episode."""
    successes = sum(bool(r["success"]) for r in records)
    low, high = wilson_interval(successes, len(records))
    return {
        "task": task,
        "episodes": len(records),
        "successes": successes,
        "success_rate": successes / max(1, len(records)),
        "ci95": [low, high],
        "seeds": list(seeds),
        "per_episode": records,
    }


def write_results(out: str | Path, results: dict, latencies_ms: list[float] | None = None) -> None:
    """Write ``out/results.json`` and the page beside it (``report.html``: success, per-episode rows linked
    to their videos, the latency histogram from ``latencies_ms``)."""
    from manip.sim.report import write_report

    (Path(out) / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_report(out, results, latencies_ms)


def check_eval_options(
    task: str,
    episodes: int,
    workers: int = 1,
    action_steps: int | None = None,
    executor_mode: str | None = None,
    ensemble_every: int | None = None,
    delay_ms: float = 0.0,
    jitter_ms: float = 0.0,
) -> dict[str, object]:
    """Check :func:`evaluate`'s options (one-line errors naming the option); returns the executor overrides."""
    from manip.sim.tasks import get_task

    get_task(task)
    if episodes < 1:
        raise ManipError(f"--episodes must be >= 1, got {episodes}")
    executor = executor_overrides(action_steps, executor_mode, ensemble_every)
    if workers < 1:
        raise ManipError(f"--workers must be >= 1, got {workers}")
    for option, value in (("--delay-ms", delay_ms), ("--jitter-ms", jitter_ms)):
        if not value >= 0:
            raise ManipError(f"{option} must be >= 0, got {value}")
    return executor


def executor_overrides(
    action_steps: int | None, mode: str | None, ensemble_every: int | None
) -> dict[str, object]:
    """The executor fields an eval overrides, checked (one-line errors naming the option)."""
    from manip.real.client.executor import MODES

    overrides: dict[str, object] = {}
    if action_steps is not None:
        if action_steps < 1:
            raise ManipError(f"--action-steps must be >= 1, got {action_steps}")
        overrides["n_action_steps"] = action_steps
    if mode is not None:
        if mode not in MODES:
            raise ManipError(f"--executor must be one of {', '.join(MODES)}, got '{mode}'")
        overrides["mode"] = mode
    if ensemble_every is not None:
        if ensemble_every < 1:
            raise ManipError(f"--ensemble-every must be >= 1, got {ensemble_every}")
        if overrides.get("mode") != "ensemble":
            raise ManipError("--ensemble-every applies only with --executor ensemble")
        overrides["ensemble_every"] = ensemble_every
    return overrides


def summary_line(results: dict, out: str | Path) -> str:
    """The one-line summary ``manip eval`` prints."""
    low, high = results["ci95"]
    errors = f", {results['errors']} error(s)" if results.get("errors") else ""
    return (
        f"{results['task']}: {results['successes']}/{results['episodes']} succeeded "
        f"({100 * results['success_rate']:.1f} %, CI95 {100 * low:.1f}–{100 * high:.1f} %{errors}); "
        f"policy latency p50 {results['latency_ms']['p50']:.2f} ms → {Path(out) / 'results.json'}"
    )


def source_spec_from_args(
    checkpoint: str | None, expert: bool, server: str | None, token_file: str | None
) -> SourceSpec:
    """Turn ``manip eval``'s source flags into a :class:`SourceSpec` (one-line errors for bad combinations).

    ``--server`` evaluates whatever the server at that URL serves (``--checkpoint`` then only names it).
    """
    if not (checkpoint or expert or server):
        raise ManipError("pass --checkpoint CKPT, --expert or --server ws://HOST:PORT")
    if expert and (checkpoint or server):
        raise ManipError("--expert cannot be combined with --checkpoint or --server")
    token = None
    if token_file:
        path = Path(token_file)
        if not path.is_file():
            raise ManipError(f"{path}: no such token file")
        token = path.read_text().strip()
    if server:
        if not server.startswith(("ws://", "wss://")):
            raise ManipError(f"--server '{server}' must look like ws://HOST:PORT")
        return SourceSpec("server", url=server, token=token)
    if checkpoint:
        if not (Path(checkpoint) / "config.json").is_file():
            raise ManipError(f"{checkpoint}: not a checkpoint directory (no config.json)")
        return SourceSpec("checkpoint", path=str(Path(checkpoint).resolve()))
    return SourceSpec("expert")
