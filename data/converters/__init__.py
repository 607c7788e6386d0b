"""`manip data convert`: a small registry of converters into manip's Zarr episode store, picked by SRC.

Each entry names how to recognise a source (a cheap predicate on the path: suffix or a marker file, no heavy
imports) and where its converter function lives (imported only when used). A converter module exposes::

    def convert(src: pathlib.Path, store: manip.data.store.EpisodeStore, *, quiet: bool = True) -> None

which appends every episode of ``src`` to the freshly created, empty ``store`` (``store.add_episode`` or a
``manip.data.recorder.Recorder``) and may call ``store.set_attrs(...)`` for dataset-level metadata. The dispatcher creates the
store in a temporary directory beside DST and renames it into place only when the converter returns, so a
failed conversion leaves nothing behind.

A converter is a :class:`Converter` registered in :data:`CONVERTERS`: built-ins here, others through the
``manip.converters`` entry-point group, whose value names a module attribute holding a :class:`Converter`
(rosbag2 / MCAP: ``rosbag2 = "manip.real.rosbag:CONVERTER"`` in ``pyproject.toml``).

The first converter whose predicate matches SRC wins.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from manip.core.errors import ManipError
from manip.core.registry import Registry
from manip.data.lerobot_v3 import is_lerobot_v3

Matcher = Callable[[Path], bool]
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def by_suffix(*suffixes: str) -> Matcher:
    """Match paths ending in any of ``suffixes`` (case-insensitive)."""
    return lambda path: path.name.lower().endswith(tuple(s.lower() for s in suffixes))


def dir_with(*names: str) -> Matcher:
    """Match directories holding any of the files ``names``."""
    return lambda path: path.is_dir() and any((path / n).exists() for n in names)


def file_starting_with(magic: bytes) -> Matcher:
    """Match files whose first bytes are ``magic``."""

    def match(path: Path) -> bool:
        if not path.is_file():
            return False
        with path.open("rb") as f:
            return f.read(len(magic)) == magic

    return match


def any_of(*matchers: Matcher) -> Matcher:
    """Match when any of ``matchers`` does."""
    return lambda path: any(m(path) for m in matchers)


@dataclass(frozen=True)
class Converter:
    """A source format: ``name``, its converter function ``function`` (``"module:attr"``, imported when used),
    the path predicate ``matches`` and a ``description``."""

    name: str
    function: str
    matches: Matcher
    description: str

    def load(self) -> Callable:
        module_name, _, attr = self.function.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise ManipError(
                f"the {self.name} converter needs the Python module '{exc.name}': pip install 'manip[all]'"
            ) from None
        return getattr(module, attr)


CONVERTERS = Registry("converter", group="manip.converters")
"""Built-in converters below; others come from the ``manip.converters`` entry-point group (rosbag2 lives with
the robot code, :mod:`manip.real.rosbag`)."""
for _converter in (
    Converter(
        "robomimic",
        "manip.data.converters.robomimic:convert",
        any_of(by_suffix(".hdf5", ".h5"), file_starting_with(HDF5_MAGIC)),
        "robomimic HDF5 file",
    ),
    Converter(
        "lerobot",
        "manip.data.converters.lerobot:convert",
        is_lerobot_v3,
        "LeRobot v3.x dataset directory (meta/info.json) or hub snapshot",
    ),
    Converter(
        "zarr",
        "manip.data.converters.zarr_store:convert",
        any_of(by_suffix(".zip"), dir_with("zarr.json", ".zgroup")),
        "Zarr episode store (Diffusion Policy v2, dir or .zarr.zip; or v3)",
    ),
):
    CONVERTERS.register(_converter.name)(_converter)


def converters() -> list[Converter]:
    """Every available converter, built-ins first (one whose plug-in cannot be imported is left out)."""
    found = []
    for name in CONVERTERS.names():
        try:
            found.append(CONVERTERS.load(name))
        except ImportError:
            continue
    return found


def find_converter(src: Path) -> Converter:
    """The first registered converter whose predicate matches ``src`` (one-line error when none does)."""
    if not src.exists():
        raise ManipError(f"{src}: no such file or directory")
    available = converters()
    for converter in available:
        if converter.matches(src):
            return converter
    known = "; ".join(f"{c.name}: {c.description}" for c in available)
    raise ManipError(f"{src}: not a format manip can convert ({known})")


def convert(src: str | Path, dst: str | Path, *, zarr_format: int = 3, quiet: bool = True) -> Converter:
    """Convert ``src`` into a new episode store at ``dst``; return the converter used. DST must not exist."""
    from manip.data.new_store import check_new_store_path, write_new_store

    src, dst = Path(src), Path(dst)
    converter = find_converter(src)
    check_new_store_path(dst, [src])
    run = converter.load()
    write_new_store(dst, lambda store: run(src, store, quiet=quiet), inputs=[src], zarr_format=zarr_format)
    return converter
