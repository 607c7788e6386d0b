"""robomimic HDF5 → manip store.

robomimic files hold ``data/demo_<i>/`` groups with ``actions`` (T, A), ``obs/<key>`` (T, ...), usually
``rewards``, ``dones`` and ``states``, ``next_obs/<key>`` and per-demo attributes (``num_samples``,
``model_file``, ``ep_meta``, ...). Each demo (in numeric order) becomes one episode:

- ``actions`` → ``data/action``; ``obs/<key>`` → ``data/<key>``; ``rewards``/``dones``/``states`` →
  ``data/reward``/``data/done``/``data/state``; any other per-step dataset keeps its name;
- ``next_obs`` is not copied: it is ``obs`` shifted by one step (a redundant copy that would double the images);
- the demo's attributes go into the episode metadata (with ``demo``, ``source`` and ``task`` from ``env_args``);
- ``data`` attributes (``env_args``, ``total``) and the ``mask/*`` demo lists (filter keys such as ``train``,
  ``valid``, ``20_percent``: training's ``data.filter_key``) go into the store attributes;
- other groups in a demo (e.g. MimicGen's ``datagen_info/``) are not copied; their names are kept in the store
  attribute ``skipped_groups`` and ``manip data convert`` reports them in one line.

Values are copied exactly (lossless). When demos store a key with different dtypes (float32 in some, float64 in
others) the store gets the wider one (numpy's promotion), never a downcast. ``success`` may be a bool or an
integer 0/1; ``num_samples`` must agree with the arrays. Errors name the demo (``data/demo_12``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from manip.core.errors import ManipError, require
from manip.core.progress import progress
from manip.data.store import EpisodeStore

RENAMES = {"actions": "action", "rewards": "reward", "dones": "done", "states": "state"}
SKIPPED_GROUPS = ("next_obs",)
EPISODE_PREFIX = re.compile(r"^.*?: episode \d+: ")


def _plain(value: Any) -> Any:
    """HDF5 attribute → JSON-able value (bytes decoded, numpy scalars/arrays to Python)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in "{[":
            try:
                return json.loads(stripped)
            except json.JSONDecodeError:
                return value
        return value
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _demo_order(names) -> list[str]:
    def number(name: str) -> tuple[int, str]:
        match = re.search(r"(\d+)$", name)
        return (int(match.group(1)) if match else -1, name)

    return sorted(names, key=number)


def _read(dataset, where: str) -> np.ndarray:
    """All of ``dataset``; a damaged chunk (HDF5 raises OSError) is a one-line error naming it."""
    try:
        return dataset[()]
    except OSError as exc:
        raise ManipError(f"{where}/{dataset.name.rsplit('/', 1)[-1]}: unreadable ({exc})") from None


def _datasets(demo) -> dict[str, tuple[object, str]]:
    """The per-step datasets of a demo: store key → (HDF5 dataset, its parent's path for errors)."""
    h5py = require("h5py", "data")
    found = {}
    for name, node in demo.items():
        if isinstance(node, h5py.Group) and name == "obs":
            found.update({key: (d, "obs") for key, d in node.items() if isinstance(d, h5py.Dataset)})
        elif isinstance(node, h5py.Dataset):
            found[RENAMES.get(name, name)] = (node, "")
    return found


def _extra_groups(demo) -> list[str]:
    """Groups of a demo that are not observations (``datagen_info``, ...): not copied."""
    h5py = require("h5py", "data")
    return [
        n for n, node in demo.items() if isinstance(node, h5py.Group) and n not in ("obs", *SKIPPED_GROUPS)
    ]


def promoted_dtypes(data, demos: list[str]) -> dict[str, np.dtype]:
    """Per store key, the dtype every demo fits in without loss (read from the HDF5 metadata only)."""
    dtypes: dict[str, np.dtype] = {}
    for name in demos:
        for key, (dataset, _parent) in _datasets(data[name]).items():
            dtype = np.dtype(dataset.dtype)
            dtypes[key] = np.result_type(dtypes[key], dtype) if key in dtypes else dtype
    return dtypes


def _episode_arrays(demo, where: str, dtypes: dict[str, np.dtype]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for key, (dataset, parent) in _datasets(demo).items():
        value = _read(dataset, f"{where}/{parent}".rstrip("/"))
        arrays[key] = value.astype(dtypes[key]) if key in dtypes and value.dtype != dtypes[key] else value
    if "action" not in arrays:
        raise ManipError(f"{where}: no 'actions' dataset")
    clash = set(RENAMES.values()) & {k for k in demo.get("obs", {})}
    if clash:
        raise ManipError(f"{where}: obs key(s) {', '.join(sorted(clash))} clash with renamed datasets")
    length = len(arrays["action"])
    bad = {k: v.shape for k, v in arrays.items() if v.ndim == 0 or len(v) != length}
    if bad:
        raise ManipError(f"{where}: datasets not of length {length} (the actions): {bad}")
    num_samples = demo.attrs.get("num_samples")
    if num_samples is not None and int(np.asarray(num_samples)) != length:
        raise ManipError(
            f"{where}: num_samples is {int(np.asarray(num_samples))} but the arrays have {length} steps"
        )
    return arrays


def _success(meta: dict, where: str) -> None:
    """``success`` as true/false/null: robomimic-style files may store it as an integer 0/1."""
    value = meta.get("success")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, (int, float)) and value in (0, 1):
        meta["success"] = bool(value)
        return
    raise ManipError(f"{where}: success is {value!r}, expected true/false or 0/1")


def _add_demo(store: EpisodeStore, arrays: dict, meta: dict, where: str) -> None:
    """Append one demo; a problem the store finds is reported against the demo, not an episode number."""
    try:
        store.add_episode(arrays, meta)
    except ManipError as exc:
        raise ManipError(f"{where}: {EPISODE_PREFIX.sub('', str(exc))}") from None


def convert(src: Path, store: EpisodeStore, *, quiet: bool = True) -> None:
    """Append every demo of the robomimic file ``src`` to ``store``."""
    h5py = require("h5py", "data")
    try:
        file = h5py.File(src, "r")
    except OSError as exc:
        raise ManipError(f"{src}: not a readable HDF5 file ({exc})") from None
    with file:
        if "data" not in file or not isinstance(file["data"], h5py.Group):
            raise ManipError(f"{src}: not a robomimic file (no 'data' group)")
        data = file["data"]
        data_attrs = {k: _plain(v) for k, v in data.attrs.items()}
        masks = {}
        if "mask" in file:
            masks = {
                k: [_plain(d) for d in v[()]] for k, v in file["mask"].items() if isinstance(v, h5py.Dataset)
            }
        store.set_attrs(
            source={"format": "robomimic", "path": str(src)}, source_attrs=data_attrs, masks=masks
        )
        env_args = data_attrs.get("env_args")
        task = env_args.get("env_name") if isinstance(env_args, dict) else None
        demos = _demo_order(k for k, v in data.items() if isinstance(v, h5py.Group))
        if not demos:
            raise ManipError(f"{src}: no demos under 'data'")
        dtypes = promoted_dtypes(data, demos)
        skipped: dict[str, None] = {}
        for name in progress(demos, desc="convert", total=len(demos), quiet=quiet, unit="demo"):
            where = f"{src}: data/{name}"
            arrays = _episode_arrays(data[name], where, dtypes)
            skipped.update(dict.fromkeys(_extra_groups(data[name])))
            meta = {k: _plain(v) for k, v in data[name].attrs.items()}
            meta.update(demo=name, source=f"robomimic:{src.name}")
            _success(meta, where)
            if task and "task" not in meta:
                meta["task"] = task
            _add_demo(store, arrays, meta, where)
        if skipped:
            store.set_attrs(skipped_groups=list(skipped))
