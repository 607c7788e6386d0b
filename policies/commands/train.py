"""`manip train CONFIG.yaml [key=value ...] --out RUN_DIR`: train a policy from a YAML config."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from data.cli.verb import Verb


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.yaml", help="training config (see configs/)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override config keys (dots nest)")
    parser.add_argument(
        "--out", required=True, metavar="RUN_DIR", help="run directory (checkpoint/, state/, tb/)"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR exactly")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def sim_rollout(task: str, out_dir: Path, episodes: int, seed: int, workers: int):
    """A rollout callback for the trainer: evaluate the policy in sim with ``sim.eval`` (imported lazily)."""

    def rollout(policy, step: int) -> dict:
        from sim.eval import SourceSpec, evaluate

        checkpoint = out_dir / "rollout_checkpoint"
        policy.save_pretrained(checkpoint)
        source = SourceSpec("checkpoint", path=str(checkpoint.resolve()))
        return evaluate(
            source, task, episodes, out_dir / "rollouts" / f"step_{step:07d}", seed, workers, quiet=True
        )

    return rollout


def run(args: argparse.Namespace) -> int:
    from policies.train_config import load_train_config
    from policies.training import run_training

    config = load_train_config(args.config, args.overrides)
    out = Path(args.out)
    rollout = None
    if config.trainer.rollout_every:
        r = config.rollout
        rollout = sim_rollout(config.task, out, r.episodes, r.seed, r.workers)
    started = time.perf_counter()
    checkpoint = run_training(config, out, resume=args.resume, rollout=rollout, quiet=args.quiet)
    print(
        f"trained {config.trainer.steps} steps in {time.perf_counter() - started:.0f} s → {checkpoint}",
        file=sys.stderr,
    )
    print(checkpoint)
    return 0


VERB = Verb(help="train a policy from a YAML config", configure=configure, run=run)
