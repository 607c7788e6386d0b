"""Under CI a skipped test fails (tests/conftest.py); elsewhere it stays a skip."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SKIPPING_TEST = (
    'import pytest\n\ndef test_needs_a_module():\n    pytest.importorskip("no_such_module_for_manip")\n'
)


@pytest.mark.parametrize(("ci", "expected"), [("true", "1 failed"), ("", "1 skipped")])
def test_a_skip_for_a_missing_dependency_fails_under_ci(tmp_path, ci, expected):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_skipping.py").write_text(SKIPPING_TEST)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env={"CI": ci, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert expected in result.stdout, result.stdout
    if ci:
        assert "skipped under CI" in result.stdout
