"""Chunk-selection and streaming latency: ``python -m manip.bench.selection CKPT [--candidates 1,4,16] [--json]``.

Times ``predict_chunk`` on one observation of the checkpoint's spec for each candidate count N (the N candidates
drawn in one batched pass, then the selector), next to N separate single-candidate calls (what selection would cost
without batching); ``ratio`` is p50(N) / p50(1), which stays well below N when the batched pass amortizes. With
``--streaming`` a streaming checkpoint is also timed per control tick in ``full`` mode (a whole sampling loop per
tick) and in ``streaming`` mode (``steps_per_tick`` network evaluations). Min/p50/p99 over ``--repeats`` calls after
``--warmup``; cases are timed round-robin so load changes hit them alike; ``--clock cpu`` times the thread's CPU
time instead of wall time (one torch thread), which a loaded machine does not inflate.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from manip.sim.stats import percentiles_ms


def _observation(policy, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    obs = {}
    for name in policy.obs_spec.names:
        feature = policy.obs_spec[name]
        shape = (1, policy.n_obs_steps, *feature.shape)
        obs[name] = (
            rng.integers(0, 255, size=shape, dtype=np.uint8)
            if feature.kind in ("rgb", "depth")
            else rng.normal(size=shape).astype(np.float32)
        )
    return obs


def _time(cases: dict, repeats: int, warmup: int, clock=time.perf_counter) -> dict:
    for call in cases.values():
        for _ in range(warmup):
            call()
    seconds = {name: [] for name in cases}
    for _ in range(repeats):
        for name, call in cases.items():
            start = clock()
            call()
            seconds[name].append(clock() - start)
    return {name: {"min": round(min(s) * 1e3, 3), **percentiles_ms(s)} for name, s in seconds.items()}


def run(
    checkpoint: str, candidates: list[int], repeats: int, warmup: int, streaming: bool, clock: str = "wall"
) -> dict:
    from manip.policies import load_policy
    from manip.policies.sampling import with_sampling

    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="bench_selection_"))
    policies = {
        n: load_policy(with_sampling(checkpoint, root / f"n{n}", candidates=n, mode="full"))
        for n in candidates
    }
    obs = _observation(policies[candidates[0]])
    cases = {f"batched_n{n}": (lambda p=policy: p.predict_chunk(obs)) for n, policy in policies.items()}
    single = (
        policies[candidates[0]] if candidates[0] == 1 else load_policy(with_sampling(checkpoint, root / "n1"))
    )
    for n in candidates:
        if n > 1:
            cases[f"sequential_n{n}"] = lambda n=n: [single.predict_chunk(obs) for _ in range(n)]
    if streaming:
        stream = load_policy(with_sampling(checkpoint, root / "stream", candidates=1, mode="streaming"))
        full = load_policy(with_sampling(checkpoint, root / "full", candidates=1, mode="full"))
        stream.predict_chunk(obs)  # the first tick of an episode is a full sample; time the ticks after it
        cases["tick_streaming"] = lambda: stream.predict_chunk(obs)
        cases["tick_full"] = lambda: full.predict_chunk(obs)
    timings = _time(cases, repeats, warmup, time.thread_time if clock == "cpu" else time.perf_counter)
    base = timings[f"batched_n{candidates[0]}"]["p50"]
    for n in candidates:
        timings[f"batched_n{n}"]["ratio"] = round(timings[f"batched_n{n}"]["p50"] / base, 3)
    return {"checkpoint": str(checkpoint), "threads": 1, "clock": clock, "repeats": repeats, "cases": timings}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m manip.bench.selection", description=__doc__.splitlines()[0]
    )
    parser.add_argument("checkpoint")
    parser.add_argument("--candidates", default="1,4,16")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--streaming", action="store_true", help="also time a streaming checkpoint per tick")
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="wall",
        help="wall time, or this thread's CPU time (steady on a loaded machine)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.candidates.split(",")]
    result = run(args.checkpoint, counts, args.repeats, args.warmup, args.streaming, args.clock)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, t in result["cases"].items():
            extra = f"  x{t['ratio']}" if "ratio" in t else ""
            print(f"{name:16s} p50 {t['p50']:8.3f} ms  p99 {t['p99']:8.3f} ms{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
