"""Fixtures for the serving tests: real ``manip serve`` processes on 127.0.0.1 with free ports."""

from __future__ import annotations

import pytest

from real.launch import ServerProcess, start_server


@pytest.fixture(scope="module")
def lowdim_server():
    """``manip serve --synthetic lowdim`` with 50 ms of simulated model time (so requests overlap and batch)."""
    with start_server(
        ["--synthetic", "lowdim", "--port", "0", "--synthetic-ms", "50", "--batch-wait-ms", "20"]
    ) as srv:
        yield srv


@pytest.fixture
def server_factory():
    """Start servers with any arguments; all are stopped at the end of the test."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict | None = None) -> ServerProcess:
        srv = start_server(list(args), env=env)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
