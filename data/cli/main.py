"""``manip``: the single entry point. Verbs are plugins registered under the ``manip.verbs`` entry-point group."""

from __future__ import annotations

import argparse
import os
import sys

from manip.cli.verb import Verb
from manip.core.errors import ManipError
from manip.core.registry import Registry

VERB_ORDER = ("demo", "data", "collect", "train", "eval", "sweep", "serve", "bench")
VERBS = Registry("verb", group="manip.verbs")


def verb_names() -> list[str]:
    """Every installed verb, the built-in ones in :data:`VERB_ORDER` first."""
    return sorted(VERBS.names(), key=lambda n: (*VERB_ORDER, n).index(n))


def _load(name: str) -> Verb:
    try:
        return VERBS.load(name)
    except ImportError as exc:  # a verb whose extra is not installed still shows up in --help
        missing = exc.name or str(exc)
        return Verb(
            help=f"(unavailable: missing module {missing})",
            configure=lambda _p: None,
            run=lambda _a: _fail(
                f"manip {name}: needs module '{missing}'; run .ci/setup.sh or pip install 'manip[all]'"
            ),
        )


def _fail(message: str, code: int = 2) -> int:
    print(message, file=sys.stderr)
    return code


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (the usage stays behind ``--help``)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the full parser; with ``only`` set, import just that verb's plugin (fast path for running it)."""
    parser = OneLineParser(
        prog="manip",
        description="Collect demonstrations, train chunked policies, evaluate them in robosuite and serve them to robots.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in verb_names():
        verb = _load(name) if only in (None, name) else None
        if verb is None:
            sub.add_parser(name)
            continue
        verb_parser = sub.add_parser(name, help=verb.help, description=verb.description or verb.help)
        verb.configure(verb_parser)
        verb_parser.set_defaults(_verb=verb)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``manip`` with ``argv``; return the exit code (bad input: one line on stderr, never a traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    only = first if first in VERBS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if getattr(args, "_verb", None) is None:
        parser.print_help()
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    try:
        return int(args._verb.run(args) or 0)
    except ManipError as exc:
        for line in getattr(exc, "problems", None) or [str(exc)]:
            print(f"manip {args.verb}: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"manip {args.verb}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal error still gets one line; MANIP_DEBUG=1 shows the traceback
        if os.environ.get("MANIP_DEBUG"):
            raise
        print(
            f"manip {args.verb}: internal error: {type(exc).__name__}: {exc} (set MANIP_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
