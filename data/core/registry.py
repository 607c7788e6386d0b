"""Name → component registries, so encoders, backbones, heads and policy types plug in by name.

Each entry is a class plus the :class:`manip.core.config.StrictConfig` model of its parameters. A registry also knows
which module defines each built-in name and imports it on first use, so another engineer's module (for example
``manip.policies.encoders.image``) registers itself without this file importing it eagerly.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from manip.core.config import StrictConfig, validate_config
from manip.core.errors import ManipError


@dataclass(frozen=True)
class Entry:
    """A registered component: the class to build and the config model of its parameters."""

    name: str
    cls: type
    config_cls: type[StrictConfig]


class Registry:
    """A registry of one kind of component (``kind`` names it in error messages)."""

    def __init__(self, kind: str, modules: dict[str, str] | None = None):
        self.kind = kind
        self._modules = dict(modules or {})
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, config_cls: type[StrictConfig]) -> Callable[[type], type]:
        """Class decorator: register the class under ``name`` with its parameter model ``config_cls``."""

        def decorate(cls: type) -> type:
            self._entries[name] = Entry(name, cls, config_cls)
            return cls

        return decorate

    def names(self) -> list[str]:
        """Every name this registry can resolve (registered or importable built-ins)."""
        return sorted(set(self._entries) | set(self._modules))

    def get(self, name: str) -> Entry:
        """The entry for ``name``; imports its module on first use; unknown names fail with one line."""
        if name not in self._entries and name in self._modules:
            try:
                importlib.import_module(self._modules[name])
            except ModuleNotFoundError as exc:
                if exc.name != self._modules[name]:
                    raise
        if name not in self._entries:
            raise ManipError(f"unknown {self.kind} '{name}' (known: {', '.join(self.names())})")
        return self._entries[name]

    def parse_params(self, name: str, params: dict[str, Any], where: str) -> StrictConfig:
        """Validate ``params`` against ``name``'s config model (unknown keys fail, naming ``where``)."""
        return validate_config(self.get(name).config_cls, dict(params), source=where)
