"""One lazy name → component registry for every plug-in point of manip.

A :class:`Registry` resolves a name to an object on first use, from one of three places:

- ``register``: a decorator in the module that defines the object (encoders, backbones, heads, policy types
  register their class with the config model of its parameters);
- built-ins: ``{name: "package.module"}`` (importing the module registers the name) or
  ``{name: "package.module:attr"}`` (the attribute is the object), imported only when the name is used;
- an entry-point ``group``: other distributions add names without touching manip (``pyproject.toml``:
  ``[project.entry-points."manip.verbs"]``).

Registries in manip: CLI verbs (``manip.verbs``), dataset converters (``manip.converters``), encoders, backbones,
heads and policy types, scripted experts, teleop devices and benchmarks. Unknown names fail with one line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import entry_points
from typing import Any

from manip.core.errors import ManipError


@dataclass(frozen=True)
class Entry:
    """A registered component: the object (usually a class) and, for configurable ones, its parameter model."""

    name: str
    cls: Any
    config_cls: type | None = None


class Registry:
    """Names of one ``kind`` of component (``kind`` names it in error messages)."""

    def __init__(self, kind: str, modules: dict[str, str] | None = None, group: str | None = None):
        self.kind = kind
        self._modules = dict(modules or {})
        self.group = group
        self._entries: dict[str, Entry] = {}

    @cached_property
    def _entry_points(self) -> dict:
        if self.group is None:
            return {}
        return {ep.name: ep for ep in entry_points(group=self.group)}

    def register(self, name: str, config_cls: type | None = None) -> Callable[[Any], Any]:
        """Decorator: register the decorated object under ``name`` (with its parameter model ``config_cls``)."""

        def decorate(obj: Any) -> Any:
            self._entries[name] = Entry(name, obj, config_cls)
            return obj

        return decorate

    def names(self) -> list[str]:
        """Every name this registry can resolve, built-ins in their given order first, then the rest sorted."""
        rest = sorted((set(self._entries) | set(self._entry_points)) - set(self._modules))
        return [*self._modules, *rest]

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._modules or name in self._entry_points

    def get(self, name: str) -> Entry:
        """The entry for ``name``, importing its module on first use; an unknown name fails with one line.

        A missing dependency of the module raises ``ImportError`` (callers name the extra to install).
        """
        if name not in self._entries:
            if name in self._modules:
                self._load_target(name, self._modules[name])
            elif name in self._entry_points:
                self._entries[name] = Entry(name, self._entry_points[name].load())
        if name not in self._entries:
            raise ManipError(f"unknown {self.kind} '{name}' (known: {', '.join(self.names())})")
        return self._entries[name]

    def load(self, name: str) -> Any:
        """The registered object for ``name`` (see :meth:`get`)."""
        return self.get(name).cls

    def _load_target(self, name: str, target: str) -> None:
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        if attr:
            self._entries[name] = Entry(name, getattr(module, attr))

    def parse_params(self, name: str, params: dict[str, Any], where: str):
        """Validate ``params`` against ``name``'s config model (unknown keys fail, naming ``where``)."""
        from manip.core.config import validate_config

        return validate_config(self.get(name).config_cls, dict(params), source=where)
