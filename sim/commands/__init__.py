"""CLI verb plugins (see the manip.verbs entry points in pyproject.toml)."""
