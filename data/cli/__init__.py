"""The ``manip`` command line: one dispatcher, one plugin per verb (see ``pyproject.toml`` entry points)."""

from manip.cli.verb import Verb

__all__ = ["Verb"]
