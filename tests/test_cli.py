"""The CLI shell: every verb has --help, bad arguments give one line on stderr and a non-zero exit."""

from __future__ import annotations

import pytest

from tests.cli import manip

VERBS = ["demo", "data", "collect", "train", "eval", "sweep", "serve", "bench"]


def test_top_level_help_lists_every_verb():
    result = manip("--help")
    assert result.returncode == 0
    for verb in VERBS:
        assert verb in result.stdout


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_has_help(verb):
    result = manip(verb, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: manip" in result.stdout


def test_unknown_verb_is_one_line_error():
    result = manip("frobnicate")
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unknown_option_is_one_line_error():
    result = manip("eval", "--no-such-option")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no-such-option" in result.stderr
