"""Success rate vs. injected delay for each executor mode (sim in the loop, simulated time).

For every (mode, delay) pair the same seeds run through Env → ``manip.sim.tasks.controller_for`` (the checkpoint as a
local ``ChunkSource``, ``InjectedDelay(delay, jitter)``; holds keep the gripper command) → Env. The delay is simulated: a chunk requested at
tick ``t`` reaches the executor at ``t + delay`` of simulated time, while the robot holds (``receding``) or keeps
executing the previous chunk (``ensemble``, ``async``, ``rtc``). Writes ``sweep.json``, ``sweep.png`` and a
markdown table (``sweep.md``).

    python -m manip.sim.delay_sweep --checkpoint CKPT --task Lift --episodes 20 --delays-ms 0,100,200,400 --out DIR
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from manip.core.errors import ManipError
from manip.real.client.executor import MODES

_CACHE: dict = {}


@dataclass(frozen=True)
class SweepJob:
    """One episode of one (mode, delay) setting."""

    checkpoint: str
    task: str
    mode: str
    delay_ms: float
    jitter_ms: float
    seed: int
    horizon: int | None = None


def _source_and_env(checkpoint: str, task: str, horizon: int | None):
    """The policy and an env matching its observations, built once per worker process."""
    key = (checkpoint, task, horizon)
    if key not in _CACHE:
        from manip.policies.serving import LocalPolicySource
        from manip.sim.env import make_env_for

        source = LocalPolicySource.from_checkpoint(checkpoint, device="cpu")
        obs_spec = source.metadata.obs_spec
        env = make_env_for(obs_spec, task, offscreen=bool(obs_spec.of_kind("rgb")), horizon=horizon)
        _CACHE.clear()
        _CACHE[key] = (source, env)
    return _CACHE[key]


def run_job(job: SweepJob) -> dict:
    """Run one episode; returns success, steps and how many ticks the executor held."""
    from manip.real.client.latency import InjectedDelay
    from manip.sim.tasks import controller_for

    source, env = _source_and_env(job.checkpoint, job.task, job.horizon)
    delay = InjectedDelay(job.delay_ms / 1e3, job.jitter_ms / 1e3, seed=job.seed)
    controller = controller_for(source, env.task, delay, mode=job.mode)
    started = time.perf_counter()
    obs = env.reset(seed=job.seed)
    if hasattr(source, "start_episode"):
        source.start_episode(job.seed)  # the same sampling noise for a seed in every cell
    success, steps, held = False, 0, 0
    for step in range(env.horizon):
        decided = controller.act(obs, step * env.dt)
        held += decided.held
        obs, _reward, terminated, truncated, _info = env.step(decided.action)
        steps = step + 1
        if terminated or truncated:
            success = bool(terminated)
            break
    wall_s = round(time.perf_counter() - started, 2)
    return {**asdict(job), "success": success, "steps": steps, "held_ticks": held, "wall_s": wall_s}


def sweep(
    checkpoint: str,
    task: str,
    episodes: int,
    seed: int,
    modes: list[str],
    delays_ms: list[float],
    jitter_ms: float,
    workers: int,
    horizon: int | None = None,
) -> dict:
    """Run every (mode, delay) on seeds ``seed .. seed + episodes - 1``; return the summary rows."""
    from manip.sim.stats import wilson_interval

    jobs = [
        SweepJob(checkpoint, task, mode, delay, jitter_ms, seed + i, horizon)
        for mode in modes
        for delay in delays_ms
        for i in range(episodes)
    ]
    started = time.perf_counter()
    if workers > 1:
        import multiprocessing

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            records = list(pool.map(run_job, jobs, chunksize=max(1, episodes // 2)))
    else:
        records = []
        for job in jobs:
            records.append(run_job(job))
            if job.seed == seed + episodes - 1:  # one line per finished (mode, delay) cell
                wins = sum(r["success"] for r in records[-episodes:])
                print(
                    f"delay sweep: {job.mode} {job.delay_ms:g} ms: {wins}/{episodes}",
                    file=sys.stderr,
                    flush=True,
                )
    rows = []
    for mode in modes:
        for delay in delays_ms:
            mine = [r for r in records if r["mode"] == mode and r["delay_ms"] == delay]
            wins = sum(r["success"] for r in mine)
            low, high = wilson_interval(wins, len(mine))
            rows.append(
                {
                    "mode": mode,
                    "delay_ms": delay,
                    "jitter_ms": jitter_ms,
                    "episodes": len(mine),
                    "successes": wins,
                    "success_rate": wins / len(mine),
                    "ci95": [low, high],
                    "mean_steps": sum(r["steps"] for r in mine) / len(mine),
                    "held_fraction": sum(r["held_ticks"] for r in mine)
                    / max(1, sum(r["steps"] for r in mine)),
                }
            )
    return {
        "checkpoint": checkpoint,
        "task": task,
        "seeds": [seed + i for i in range(episodes)],
        "rows": rows,
        "episodes": records,
        "wall_s": round(time.perf_counter() - started, 1),
    }


def markdown_table(report: dict) -> str:
    """Success (CI95) per mode and delay as a markdown table."""
    delays = sorted({r["delay_ms"] for r in report["rows"]})
    modes = list(dict.fromkeys(r["mode"] for r in report["rows"]))
    cell = {(r["mode"], r["delay_ms"]): r for r in report["rows"]}
    lines = [
        "| mode | " + " | ".join(f"{d:g} ms" for d in delays) + " |",
        "|---|" + "---:|" * len(delays),
    ]
    for mode in modes:
        parts = []
        for d in delays:
            r = cell[(mode, d)]
            parts.append(
                f"{r['successes']}/{r['episodes']} ({100 * r['ci95'][0]:.0f}–{100 * r['ci95'][1]:.0f} %)"
            )
        lines.append(f"| {mode} | " + " | ".join(parts) + " |")
    return "\n".join(lines)


def plot(report: dict, path: Path) -> None:
    """Success rate vs delay, one line per mode, CI95 as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for mode in dict.fromkeys(r["mode"] for r in report["rows"]):
        rows = sorted((r for r in report["rows"] if r["mode"] == mode), key=lambda r: r["delay_ms"])
        x = [r["delay_ms"] for r in rows]
        y = [r["success_rate"] for r in rows]
        err = [
            [r["success_rate"] - r["ci95"][0] for r in rows],
            [r["ci95"][1] - r["success_rate"] for r in rows],
        ]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=mode)
    jitter = report["rows"][0]["jitter_ms"]
    ax.set_xlabel(f"injected delay (ms){f' + U(0, {jitter:g}) ms jitter' if jitter else ''}")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{report['task']}: success vs delay ({len(report['seeds'])} seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m manip.sim.delay_sweep", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--task", default="Lift")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=100_000)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--delays-ms", default="0,100,200,400")
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--horizon", type=int, default=None, help="override the task's episode length (steps)"
    )
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in MODES]
    if bad or args.episodes < 1:
        raise ManipError(f"unknown mode(s) {bad} (choose from {', '.join(MODES)}) or --episodes < 1")
    delays = [float(d) for d in args.delays_ms.split(",") if d]
    report = sweep(
        args.checkpoint,
        args.task,
        args.episodes,
        args.seed,
        modes,
        delays,
        args.jitter_ms,
        args.workers,
        args.horizon,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(report, indent=2) + "\n")
    table = markdown_table(report)
    (out / "sweep.md").write_text(table + "\n")
    plot(report, out / "sweep.png")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
