"""Start ``manip serve`` as a subprocess: :mod:`manip.cli.launch` (kept importable under this name)."""

from manip.cli.launch import READY, ServerProcess, start_server

__all__ = ["READY", "ServerProcess", "start_server"]
