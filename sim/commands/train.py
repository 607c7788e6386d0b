"""`manip train CONFIG.yaml [key=value ...] --out RUN_DIR`: train a policy from a YAML config."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from manip.cli.verb import Verb
from manip.core.errors import ManipError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG.yaml", help="training config (see configs/)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override config keys (dots nest)")
    parser.add_argument(
        "--out", required=True, metavar="RUN_DIR", help="run directory (checkpoint/, state/, tb/)"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR exactly")
    parser.add_argument(
        "--stop-at",
        type=int,
        metavar="STEP",
        help="train only up to this step, save the exact-resume state and export that checkpoint "
        "(split a long run over several jobs; continue with --resume)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def sim_rollout(task: str, out_dir: Path, episodes: int, seed: int, workers: int):
    """A rollout callback for the trainer: evaluate the policy in sim with ``manip.sim.eval`` (imported when a rollout runs)."""

    def rollout(policy, step: int) -> dict:
        from manip.sim.eval import SourceSpec, evaluate

        checkpoint = out_dir / "rollout_checkpoint"
        policy.save_pretrained(checkpoint)
        source = SourceSpec("checkpoint", path=str(checkpoint.resolve()))
        return evaluate(
            source, task, episodes, out_dir / "rollouts" / f"step_{step:07d}", seed, workers, quiet=True
        )

    return rollout


def run(args: argparse.Namespace) -> int:
    from manip.policies.train_config import load_train_config
    from manip.policies.training import run_training

    config = load_train_config(args.config, args.overrides)
    if args.stop_at is not None and not 0 < args.stop_at <= config.trainer.steps:
        raise ManipError(
            f"--stop-at {args.stop_at}: must be between 1 and trainer.steps ({config.trainer.steps})"
        )
    out = Path(args.out)
    rollout = None
    if config.trainer.rollout_every:
        r = config.rollout
        rollout = sim_rollout(config.task, out, r.episodes, r.seed, r.workers)
    started = time.perf_counter()
    checkpoint = run_training(
        config, out, resume=args.resume, rollout=rollout, stop_at=args.stop_at, quiet=args.quiet
    )
    reached = args.stop_at or config.trainer.steps  # checked above: at most trainer.steps
    elapsed = time.perf_counter() - started
    if reached < config.trainer.steps:
        print(
            f"stopped at step {reached} of {config.trainer.steps} after {elapsed:.0f} s → {checkpoint} "
            f"(continue: the same command with --resume)",
            file=sys.stderr,
        )
    else:
        print(f"trained {config.trainer.steps} steps in {elapsed:.0f} s → {checkpoint}", file=sys.stderr)
    print(checkpoint)
    return 0


VERB = Verb(help="train a policy from a YAML config", configure=configure, run=run)
