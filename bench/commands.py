"""`manip bench TARGET [--json] [--out FILE] [target options]`: run a benchmark, print its figures.

Each target is a module ``bench/<target>.py`` exposing ``run(args) -> dict`` (prints a table unless
``args.json``; returns JSON-ready figures) and optionally ``configure(parser)`` for its own options. The
dispatcher adds ``--json`` (print the figures as JSON instead of the table) and ``--out FILE`` (also write
them to FILE).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from manip.cli.verb import Verb
from manip.core.errors import ManipError
from manip.core.provenance import code_provenance
from manip.core.registry import Registry

TARGETS = ("data", "train", "inference", "server", "sim")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=TARGETS, metavar="TARGET", help=f"one of {', '.join(TARGETS)}")
    parser.add_argument(
        "options",
        nargs=argparse.REMAINDER,
        metavar="...",
        help="--json, --out FILE and the target's own options (manip bench TARGET --help)",
    )


def machine() -> dict:
    """Where a benchmark's figures come from (every target's JSON carries it; add its own fields on top)."""
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        **code_provenance(),
    }


BENCHMARKS = Registry("benchmark", {target: f"manip.bench.{target}:run" for target in TARGETS})


def _load(target: str):
    """The target's module (it holds ``run`` and optionally ``configure``)."""
    return sys.modules[BENCHMARKS.get(target).cls.__module__]


def target_parser(target: str, module) -> argparse.ArgumentParser:
    """The parser of one target: the shared ``--json``/``--out`` plus the target's ``configure``."""
    from manip.cli.main import OneLineParser

    doc = (module.__doc__ or "").strip().splitlines()
    parser = OneLineParser(prog=f"manip bench {target}", description=doc[0] if doc else None)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (no table)")
    parser.add_argument("--out", type=Path, default=None, metavar="FILE", help="also write the JSON to FILE")
    if hasattr(module, "configure"):
        module.configure(parser)
    return parser


def run(args: argparse.Namespace) -> int:
    module = _load(args.target)
    target_args = target_parser(args.target, module).parse_args(args.options)
    if target_args.out is not None and not target_args.out.parent.is_dir():
        raise ManipError(f"{target_args.out.parent}: no such directory for --out")
    if target_args.out is not None and target_args.out.is_dir():
        raise ManipError(f"{target_args.out}: is a directory; --out takes a file name")
    figures = module.run(target_args)
    text = json.dumps(figures, indent=2)
    if target_args.json:
        print(text)
    if target_args.out is not None:
        target_args.out.write_text(text + "\n")
    return 0


def standalone(target: str, argv: list[str] | None = None) -> int:
    """``python -m bench.TARGET [options]``: the same as ``manip bench TARGET [options]``."""
    from manip.cli.main import main

    return main(["bench", target, *(sys.argv[1:] if argv is None else argv)])


VERB = Verb(help="run a benchmark and print its figures", configure=configure, run=run)
