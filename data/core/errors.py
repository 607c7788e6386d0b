"""Errors a user can act on.

Raise :class:`ManipError` (or a subclass) for bad input: the CLI prints its message as one line on stderr and
exits non-zero, with no traceback. The message should name the file, key or value at fault and, where it helps,
what to do about it.
"""

from __future__ import annotations


class ManipError(Exception):
    """Bad input or environment a user can fix; shown as one line by the CLI."""

    exit_code = 2


class ValidationFailed(ManipError):
    """A dataset or config failed validation; ``problems`` holds one line per problem."""

    exit_code = 1

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s): " + "; ".join(self.problems[:3]))


class MissingExtra(ManipError):
    """An optional dependency is not installed; the message names the pip extra that provides it."""

    def __init__(self, module: str, extra: str):
        super().__init__(
            f"this needs the Python module '{module}': pip install 'manip[{extra}]' (or run .ci/setup.sh)"
        )


def require(module: str, extra: str):
    """Import ``module`` or raise :class:`MissingExtra` naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name and module.split(".")[0] != exc.name.split(".")[0]:
            raise
        raise MissingExtra(module, extra) from None
