"""Checked settings without pydantic: frozen dataclasses that validate their fields on construction.

For settings that light, torch-free code needs (the chunk executor and safety filter run inside a ROS Python),
:class:`Checked` gives what :class:`manip.core.config.StrictConfig` gives heavier code: a one-line
:class:`~manip.core.errors.ManipError` for a value of the wrong type, outside its range or not among its
choices, and for unknown keys when built from a mapping (:meth:`Checked.from_dict`, e.g. a YAML file's
contents). Declare constraints with :func:`setting`::

    @dataclass(frozen=True)
    class Limits(Checked):
        rate: float = setting(20.0, gt=0)
        mode: str = setting("zero", choices=("zero", "repeat"))
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, get_args, get_origin, get_type_hints

from manip.core.errors import ManipError

_BOUNDS = {
    "gt": (lambda v, b: v > b, ">"),
    "ge": (lambda v, b: v >= b, ">="),
    "le": (lambda v, b: v <= b, "<="),
}


def setting(default: Any = dataclasses.MISSING, *, choices: tuple | None = None, **bounds: float) -> Any:
    """A dataclass field with optional ``choices`` and numeric bounds (``gt``, ``ge``, ``le``).

    A mutable default (list) is copied per instance.
    """
    unknown = set(bounds) - set(_BOUNDS)
    if unknown:
        raise TypeError(f"setting(): unknown bound(s) {sorted(unknown)}")
    metadata = {"choices": choices, "bounds": bounds}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class Checked:
    """Base of checked frozen dataclasses: validates and normalises every field in ``__post_init__``."""

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for field in dataclasses.fields(self):
            value = _coerce(getattr(self, field.name), hints[field.name], self._where(field.name))
            choices = field.metadata.get("choices")
            if choices is not None and value not in choices:
                raise ManipError(
                    f"{self._where(field.name)}: {value!r} is not one of {', '.join(map(str, choices))}"
                )
            for bound, limit in (field.metadata.get("bounds") or {}).items():
                test, sign = _BOUNDS[bound]
                for item in value if isinstance(value, list) else [value]:
                    if item is not None and not test(item, limit):
                        raise ManipError(f"{self._where(field.name)}: {item} must be {sign} {limit}")
            object.__setattr__(self, field.name, value)

    def _where(self, name: str) -> str:
        return f"{type(self).__name__}.{name}"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None, source: str = "") -> Checked:
        """Build from a mapping; unknown keys (and nested ones) are a one-line error naming ``source``."""
        if raw is not None and not isinstance(raw, Mapping):
            raise ManipError(f"{source or cls.__name__}: expected a mapping of settings, got {raw!r}")
        raw = dict(raw or {})
        hints = get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            where = f"{source}: " if source else ""
            raise ManipError(
                f"{where}unknown key(s) {', '.join(unknown)} for {cls.__name__} (known: {', '.join(sorted(names))})"
            )
        for name, value in raw.items():
            nested = _checked_class(hints[name])
            if nested is not None and isinstance(value, Mapping):
                raw[name] = nested.from_dict(value, f"{source}.{name}" if source else name)
        return cls(**raw)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (nested settings as dicts; lists copied)."""
        return dataclasses.asdict(self)


def _checked_class(hint) -> type[Checked] | None:
    return hint if isinstance(hint, type) and issubclass(hint, Checked) else None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` as the annotation ``hint`` says (int → float, tuple → list, dict → nested); else a one-line error."""
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(value, option, where)
            except ManipError as exc:
                errors.append(str(exc))
        raise ManipError(errors[-1] if errors else f"{where}: {value!r} is not allowed")
    if origin is typing.Literal:
        if value not in get_args(hint):
            raise ManipError(f"{where}: {value!r} is not one of {', '.join(map(str, get_args(hint)))}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ManipError(f"{where}: expected a list, got {value!r}")
        (item,) = get_args(hint) or (Any,)
        return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(float(value)):
            raise ManipError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ManipError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ManipError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ManipError(f"{where}: expected a string, got {value!r}")
        return value
    nested = _checked_class(hint)
    if nested is not None:
        if isinstance(value, Mapping):
            return nested.from_dict(value, where)
        if not isinstance(value, nested):
            raise ManipError(f"{where}: expected {nested.__name__} settings, got {value!r}")
    return value
