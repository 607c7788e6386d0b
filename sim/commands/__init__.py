"""CLI verb plugins (see the manip.verbs entry points in pyproject.toml)."""

from __future__ import annotations

import argparse

from manip.core.errors import ManipError


def task_help() -> str:
    """The ``--task`` help: every robosuite task by name, and Meta-World's env names."""
    from manip.sim.tasks import robosuite_task_names

    return (
        f"task: robosuite {', '.join(robosuite_task_names())}; or a Meta-World env name (pick-place-v3, ...)"
    )


def require_options(args: argparse.Namespace, *names: str) -> None:
    """One-line error naming the missing required options.

    Checked here rather than with argparse's ``required=True`` so that a misspelled option is reported by name
    (argparse reports missing required options first, hiding the typo).
    """
    missing = [f"--{name.replace('_', '-')}" for name in names if getattr(args, name) is None]
    if missing:
        raise ManipError(f"missing required option(s) {', '.join(missing)} (see --help)")
