"""robomimic HDF5 → manip store.

robomimic files hold ``data/demo_<i>/`` groups with ``actions`` (T, A), ``obs/<key>`` (T, ...), usually
``rewards``, ``dones`` and ``states``, ``next_obs/<key>`` and per-demo attributes (``num_samples``,
``model_file``, ``ep_meta``, ...). Each demo (in numeric order) becomes one episode:

- ``actions`` → ``data/action``; ``obs/<key>`` → ``data/<key>``; ``rewards``/``dones``/``states`` →
  ``data/reward``/``data/done``/``data/state``; any other per-step dataset keeps its name;
- ``next_obs`` is not copied: it is ``obs`` shifted by one step (a redundant copy that would double the images);
- the demo's attributes go into the episode metadata (with ``demo``, ``source`` and ``task`` from ``env_args``);
- ``data`` attributes (``env_args``, ``total``) and the ``mask/*`` demo lists go into the store attributes.

Values and dtypes are copied exactly (lossless).
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


def _episode_arrays(demo, where: str) -> dict[str, np.ndarray]:
    h5py = require("h5py", "data")
    arrays: dict[str, np.ndarray] = {}
    for name, node in demo.items():
        if name in SKIPPED_GROUPS:
            continue
        if isinstance(node, h5py.Group):
            if name != "obs":
                continue
            for key, dataset in node.items():
                if isinstance(dataset, h5py.Dataset):
                    arrays[key] = _read(dataset, f"{where}/obs")
        elif isinstance(node, h5py.Dataset):
            arrays[RENAMES.get(name, name)] = _read(node, where)
    if "action" not in arrays:
        raise ManipError(f"{where}: no 'actions' dataset")
    clash = set(RENAMES.values()) & {k for k in demo.get("obs", {})}
    if clash:
        raise ManipError(f"{where}: obs key(s) {', '.join(sorted(clash))} clash with renamed datasets")
    length = len(arrays["action"])
    bad = {k: v.shape for k, v in arrays.items() if v.ndim == 0 or len(v) != length}
    if bad:
        raise ManipError(f"{where}: datasets not of length {length} (the actions): {bad}")
    return arrays


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
        for name in progress(demos, desc="convert", total=len(demos), quiet=quiet, unit="demo"):
            arrays = _episode_arrays(data[name], f"{src}: data/{name}")
            meta = {k: _plain(v) for k, v in data[name].attrs.items()}
            meta.update(demo=name, source=f"robomimic:{src.name}")
            if task and "task" not in meta:
                meta["task"] = task
            store.add_episode(arrays, meta)
