"""The ``manip`` command line: one dispatcher, one plugin per verb (see ``pyproject.toml`` entry points)."""

from data.cli.verb import Verb

__all__ = ["Verb"]
