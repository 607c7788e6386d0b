"""The shape every ``manip`` verb plugin has."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verb:
    """A CLI verb.

    ``configure`` adds the verb's arguments to its sub-parser and must stay cheap (no torch, no robosuite);
    ``run`` does the work, importing heavy modules lazily, and returns the process exit code. Raise
    :class:`data.errors.ManipError` for bad input: the dispatcher prints it as one line.
    """

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None


def not_available_yet(help_text: str, issue: str) -> Verb:
    """A placeholder verb for work that has not landed: ``--help`` works, running it says so and exits 3."""

    def run(_args: argparse.Namespace) -> int:
        import sys

        print(f"manip: this verb is not available yet ({issue})", file=sys.stderr)
        return 3

    return Verb(help=help_text, configure=lambda _parser: None, run=run)
