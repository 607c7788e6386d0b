"""Suite-wide rules: under CI (``CI`` set) a skipped test is a failure, since CI installs every dependency
(``bash .ci/setup.sh --ros``) and a skip there would hide a missing install step."""

from __future__ import annotations

import os

import pytest


def under_ci() -> bool:
    """True when the ``CI`` environment variable is set to anything but empty, ``0`` or ``false``."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.skipped and under_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, which must install everything: {reason}"
