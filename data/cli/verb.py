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
    :class:`manip.core.errors.ManipError` for bad input: the dispatcher prints it as one line.
    """

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str | None = None
