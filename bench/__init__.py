"""manip.bench: benchmarks that print figures and write JSON (``manip bench TARGET [--json]``)."""
