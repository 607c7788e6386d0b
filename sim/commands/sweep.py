"""`manip sweep`: run a sweep of tasks x checkpoints x seeds x settings

Prints the summary table at the end (also after Ctrl-C). Exit status: 0 when every cell ran, 1 when a cell
failed (its error is in the table; it runs again next time), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse

from manip.cli.verb import Verb


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep", metavar="SWEEP.yaml", help="sweep file (see configs/sweeps/)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override sweep-file keys")
    parser.add_argument("--out", required=True, help="output directory (cells/, summary.md/.csv/.png)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="dispatch cells to a Ray cluster at HOST:PORT ('local': start one here), at most workers: cells at a time",
    )
    where.add_argument(
        "--slurm",
        action="store_true",
        help="dispatch cells to SLURM through submitit (without SLURM, submitit runs them as local processes)",
    )
    parser.add_argument("--slurm-partition", help="SLURM partition (with --slurm)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from manip.sim.sweep import load_sweep, run_sweep

    config = load_sweep(args.sweep, args.overrides)
    slurm = None
    if args.slurm:
        slurm = {"slurm_partition": args.slurm_partition} if args.slurm_partition else {}
    report = run_sweep(config, args.out, ray_address=args.ray, slurm=slurm, quiet=args.quiet)
    print(report["table"])
    failed, stopped = report["failed"], report["interrupted"]
    print(
        f"sweep: {len(report['rows'])} cell(s), ran {report['ran']}, skipped {report['skipped']} finished"
        f"{f', {failed} failed' if failed else ''}{' (interrupted)' if stopped else ''}"
        f" → {Path(args.out) / 'summary.md'}"
    )
    if stopped:
        return 130
    return 1 if failed else 0


VERB = Verb(help="run a sweep of tasks x checkpoints x seeds x settings", configure=configure, run=run)
