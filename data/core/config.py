"""Typed configuration: pydantic models that reject unknown keys, loaded from YAML with ``key=value`` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from manip.core.errors import ManipError

C = TypeVar("C", bound="StrictConfig")


class StrictConfig(BaseModel):
    """Base for every config: unknown keys are an error, values are validated, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into ``(["a", "b", "c"], value)``; the value is parsed as YAML (numbers, lists, …)."""
    if "=" not in text:
        raise ManipError(f"override '{text}' is not of the form key=value")
    key, raw = text.split("=", 1)
    if not key or any(not part for part in key.split(".")):
        raise ManipError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Return a copy of ``raw`` with each ``key=value`` override set (nested keys with dots)."""
    result = _deep_copy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ManipError(f"override '{text}': '{part}' is not a section")
            node = child
        node[path[-1]] = value
    return result


def _deep_copy(value):
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with one-line errors for a missing file or bad YAML."""
    path = Path(path)
    if not path.is_file():
        raise ManipError(f"{path}: no such config file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ManipError(f"{path}:{where} is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ManipError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def validate_config(cls: type[C], raw: dict, source: str = "config") -> C:
    """Build ``cls`` from ``raw``; a validation failure becomes one line naming the key and the problem."""
    try:
        return cls.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{key}: {msg}")
        raise ManipError(f"{source}: " + "; ".join(problems)) from None


def load_config(cls: type[C], path: str | Path, overrides: list[str] | None = None) -> C:
    """Load ``path`` (YAML) into ``cls`` after applying ``key=value`` overrides; unknown keys fail."""
    raw = apply_overrides(read_yaml(path), overrides or [])
    return validate_config(cls, raw, source=str(path))
