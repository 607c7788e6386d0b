"""Measure a scripted expert's success rate: ``python -m manip.sim.experts.measure TASK [--seeds N] [--start S]``.

Prints one line per episode and a JSON summary (success rate over seeds start..start+N-1)."""

from __future__ import annotations

import argparse
import json
import time

from manip.sim.env import make_env
from manip.sim.experts import make_expert, rollout


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("task")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--start", type=int, default=0)
    args = parser.parse_args(argv)
    env, expert = make_env(args.task), make_expert(args.task)
    started = time.perf_counter()
    failures, lengths = [], []
    for seed in range(args.start, args.start + args.seeds):
        success, steps = rollout(env, expert, seed)
        lengths.append(steps)
        if not success:
            failures.append(seed)
        print(f"{args.task} seed {seed}: {'ok' if success else 'FAIL'} in {steps} steps", flush=True)
    summary = {
        "task": args.task,
        "seeds": f"{args.start}..{args.start + args.seeds - 1}",
        "success_rate": 1 - len(failures) / args.seeds,
        "failed_seeds": failures,
        "mean_steps": sum(lengths) / len(lengths),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
