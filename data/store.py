"""EpisodeStore: demonstrations in a Zarr store with Diffusion Policy's layout, appended commit-last.

Layout (compatible with Diffusion Policy's ``ReplayBuffer``)::

    root/
      data/<key>            (T_total, ...) every per-step feature, episodes concatenated along axis 0
      meta/episode_ends     (N,) int64, cumulative end index of each episode: THE commit record
      meta/episode_meta     (N,) str, one JSON object per episode (task, instruction, success, source, seed, ...)

``meta/episode_ends`` is the only thing a reader trusts: an episode exists once its end index is in it. An
append writes the episode's steps past the committed end, then its metadata, then grows ``episode_ends`` by
one element in a single atomic metadata write (the new element's chunk is written before the shape grows).
A process killed at any point therefore leaves every committed episode intact; steps past the last committed
end are an uncommitted tail, ignored by readers and overwritten by the next append. Committed steps are never
rewritten with different values.

Stores written by Diffusion Policy (Zarr format 2, a directory or a ``.zarr.zip``) open as they are, read-only
or appendable; appends to a ``.zarr.zip`` are staged beside it and republished atomically after each commit
(:mod:`manip.data.zipped`; call :meth:`EpisodeStore.close` when done).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from manip.core.errors import ManipError, require
from manip.data import layout, zipped

EPISODE_ENDS = "meta/episode_ends"
EPISODE_META = "meta/episode_meta"
META_CHUNK = 1024
LAYOUT_ATTR = "manip_layout"


def _zarr():
    return require("zarr", "data")


def is_zip(path: Path) -> bool:
    """True for a zipped store (``.zip`` suffix, e.g. Diffusion Policy's ``.zarr.zip``)."""
    return path.suffix == ".zip"


def _register_image_codecs() -> None:
    """Make imagecodecs' numcodecs codecs (Jpeg2k, JpegXl, ... used by Diffusion Policy stores) readable."""
    try:
        import imagecodecs.numcodecs as image_numcodecs
    except ImportError:
        return
    image_numcodecs.register_codecs(verbose=False)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


CODEC_PACKAGES = {"zfpy": "zfpy", "pcodec": "pcodec", "blosc2": "blosc2", "bitround": "numcodecs"}
"""pip packages that register a numcodecs codec, by codec id (``imagecodecs_*`` ids come from imagecodecs)."""


def missing_codec(exc: BaseException) -> str | None:
    """The codec id an array needs but this environment lacks, when ``exc`` (or its cause) says so."""
    import re

    seen = exc
    while seen is not None:
        codec = getattr(seen, "codec_id", None)
        if isinstance(codec, str):
            return codec.strip("'\"")
        match = re.search(r"(?:codec not available|Unknown codec)\W+([\w.\-]+)", str(seen))
        if match:
            return match.group(1).rsplit(".", 1)[-1]
        seen = seen.__cause__ or seen.__context__
    return None


def codec_hint(codec: str) -> str:
    """A one-line install hint for the numcodecs codec ``codec``."""
    package = "imagecodecs" if codec.startswith("imagecodecs") else CODEC_PACKAGES.get(codec)
    install = f"pip install {package}" if package else "install the package that registers it with numcodecs"
    return f"needs the codec {codec}, which this environment lacks: {install}"


def _zip_folder_hint(path: Path) -> str:
    """A hint when the zip ``path`` holds the store inside a folder instead of at its root (else "")."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return ""
    roots = sorted(
        {n.rsplit("/", 1)[0] for n in names if n.endswith(("/zarr.json", "/.zgroup")) and n.count("/") == 1}
    )
    if not roots:
        return ""
    return (
        f"; the zip holds the store in the folder '{roots[0]}/': zip the folder's contents instead "
        f"(cd {roots[0]} && zip -r0 ../{path.name} .) or unzip it and pass {roots[0]}"
    )


def open_root(path: Path, mode: str):
    """Open the root Zarr group at ``path`` (directory or zip); one-line :class:`ManipError` on failure."""
    zarr = _zarr()
    if not path.exists():
        raise ManipError(f"{path}: no such store")
    if is_zip(path):
        if mode != "r":
            raise ManipError(f"{path}: open a zipped store for appending with EpisodeStore.open(path, 'a')")
        import zipfile

        if not zipfile.is_zipfile(path):
            raise ManipError(f"{path}: not a readable zip file (truncated, or not a zip)")
        try:
            store = zarr.storage.ZipStore(path, mode="r")
        except Exception as exc:
            raise ManipError(f"{path}: not a readable zip file ({_describe(exc)})") from None
    else:
        if not path.is_dir():
            raise ManipError(f"{path}: not a Zarr store (expected a directory or a .zarr.zip file)")
        store = zarr.storage.LocalStore(path, read_only=(mode == "r"))
    _register_image_codecs()
    try:
        return zarr.open_group(store, mode="r" if mode == "r" else "r+", use_consolidated=False)
    except FileNotFoundError:
        hint = _zip_folder_hint(path) if is_zip(path) else ""
        raise ManipError(f"{path}: not a Zarr store (no zarr.json or .zgroup at its root){hint}") from None
    except Exception as exc:
        raise ManipError(f"{path}: cannot read the Zarr metadata ({_describe(exc)})") from None


def open_array(root, key: str, where: Path):
    """Open array ``key`` of ``root``; unreadable metadata or an unknown codec become one-line errors."""
    try:
        node = root[key]
    except KeyError:
        raise ManipError(f"{where}: missing array '{key}'") from None
    except Exception as exc:
        raise ManipError(f"{where}/{key}: cannot open ({_describe(exc)})") from None
    if not hasattr(node, "shape"):
        raise ManipError(f"{where}/{key}: is a group, expected an array")
    return node


def _member_names(root, group: str, where: Path) -> list[str]:
    """Names directly under ``group``, listed from the store without parsing their metadata."""
    from zarr.core.sync import sync

    async def collect() -> list[str]:
        prefix = f"{root.path}/{group}".strip("/")
        return [name async for name in root.store.list_dir(prefix)]

    try:
        entries = sync(collect())
    except Exception as exc:
        raise ManipError(f"{where}/{group}: cannot list arrays ({_describe(exc)})") from None
    skip = {"zarr.json", ".zgroup", ".zattrs", ".zarray", ".zmetadata"}
    return sorted(
        n.strip("/") for n in entries if n.strip("/") and n.strip("/") not in skip and not n.startswith(".")
    )


def _writing_every_chunk(array):
    """``array`` configured to store chunks equal to the fill value too (zarr skips them by default), so that
    every chunk of a committed episode exists on disk and a missing chunk file always means damage."""
    return array.with_config({"write_empty_chunks": True})


def _json_meta(meta: Mapping[str, Any], where: str) -> str:
    try:
        return json.dumps(dict(meta), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ManipError(f"{where}: episode metadata is not JSON-serializable ({exc})") from None


class EpisodeStore:
    """Episodes of per-step arrays in one Zarr store. Use :meth:`create` or :meth:`open`, not the constructor."""

    def __init__(self, root, path: Path, mode: str, skip_unreadable: bool = False):
        self._root = root
        self.path = path
        self.mode = mode
        self._skip_unreadable = skip_unreadable
        self.unreadable: dict[str, str] = {}
        """Arrays left out because this environment lacks their codec (``skip_unreadable``): key → reason."""
        self.zarr_format = int(root.metadata.zarr_format)
        self._ends_array = _writing_every_chunk(open_array(root, EPISODE_ENDS, path))
        try:
            ends = np.asarray(self._ends_array[:])
        except Exception as exc:
            raise ManipError(f"{path}/{EPISODE_ENDS}: unreadable ({_describe(exc)})") from None
        if ends.ndim != 1 or ends.dtype.kind not in "iu":
            raise ManipError(
                f"{path}/{EPISODE_ENDS}: expected a 1-D integer array, got {ends.dtype} {ends.shape}"
            )
        self._ends = ends.astype(np.int64)
        self._arrays = self._open_data_arrays()
        self._meta_cache: list[dict] | None = None
        self._meta_array_handle = None
        self._zip_staging: Path | None = None

    # ---- opening -------------------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, zarr_format: int = 3, *, overwrite: bool = False) -> EpisodeStore:
        """Create an empty store at ``path`` (Zarr v3 by default; ``zarr_format=2`` for Diffusion Policy tools)."""
        zarr = _zarr()
        path = Path(path)
        if zarr_format not in (2, 3):
            raise ManipError(f"{path}: zarr_format must be 2 or 3, got {zarr_format}")
        if is_zip(path):
            raise ManipError(f"{path}: cannot create a zipped store; use a directory path such as out.zarr")
        if path.exists() and not overwrite:
            raise ManipError(f"{path}: already exists (open it to append, or choose a new path)")
        root = zarr.open_group(zarr.storage.LocalStore(path), mode="w", zarr_format=zarr_format)
        root.attrs[LAYOUT_ATTR] = 1
        root.require_group("data")
        meta = root.require_group("meta")
        meta.create_array("episode_ends", shape=(0,), chunks=(META_CHUNK,), dtype="int64", fill_value=0)
        return cls(root, path, "a")

    @classmethod
    def open(cls, path: str | Path, mode: str = "r", *, skip_unreadable: bool = False) -> EpisodeStore:
        """Open an existing store read-only (``"r"``) or for appending (``"a"``).

        An array whose codec this environment lacks is an error naming the codec and its package; with
        ``skip_unreadable`` (read-only) it is left out instead and listed in :attr:`unreadable`.
        """
        path = Path(path)
        if skip_unreadable:
            if mode != "r":
                raise ManipError(f"{path}: skip_unreadable needs mode 'r'")
            return cls(open_root(path, mode), path, mode, skip_unreadable=True)
        if mode not in ("r", "a"):
            raise ManipError(f"{path}: mode must be 'r' or 'a', got '{mode}'")
        if mode == "a" and is_zip(path) and path.is_file():
            staging = zipped.unpack_for_append(path)
            try:
                store = cls(open_root(staging, mode), path, mode)
            except BaseException:
                zipped.discard(staging)
                raise
            store._zip_staging = staging
            return store
        return cls(open_root(path, mode), path, mode)

    def _open_data_arrays(self) -> dict:
        if "data" not in self._root:
            raise ManipError(f"{self.path}: not an episode store (no 'data' group)")
        names = _member_names(self._root, "data", self.path)
        arrays = {}
        for name in names:
            try:
                node = self._open_member(f"data/{name}")
            except ManipError as exc:
                if not self._skip_unreadable or "needs the codec" not in str(exc):
                    raise
                self.unreadable[name] = str(exc).split(": ", 1)[-1]
                continue
            if node is not None and hasattr(node, "shape"):
                if not node.shape:
                    raise ManipError(
                        f"{self.path}/data/{name}: a 0-d array; data/* arrays have time on axis 0"
                    )
                arrays[name] = _writing_every_chunk(node)
        return arrays

    def _open_member(self, key: str):
        try:
            return self._root[key]
        except KeyError:  # no metadata: a stray file (e.g. an interrupted write's temp file), not a member
            return None
        except Exception as exc:
            codec = missing_codec(exc)
            if codec:
                raise ManipError(f"{self.path}/{key}: {codec_hint(codec)}") from None
            raise ManipError(f"{self.path}/{key}: cannot open ({_describe(exc)})") from None

    def close(self) -> None:
        """Release the underlying Zarr store (needed for zip stores)."""
        self._root.store.close()
        if self._zip_staging is not None:
            zipped.discard(self._zip_staging)
            self._zip_staging = None

    def __enter__(self) -> EpisodeStore:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # ---- reading -------------------------------------------------------------------------------------------

    @property
    def num_episodes(self) -> int:
        return len(self._ends)

    @property
    def num_steps(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    @property
    def keys(self) -> list[str]:
        """Names of the per-step arrays under ``data/``."""
        return list(self._arrays)

    @property
    def episode_ends(self) -> np.ndarray:
        return self._ends.copy()

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(self._ends, prepend=0)

    def _check_index(self, i: int) -> int:
        n = self.num_episodes
        if not -n <= i < n:
            raise ManipError(f"{self.path}: episode {i} out of range (store has {n} episodes)")
        return i % n

    def episode_slice(self, i: int) -> slice:
        """Steps of episode ``i`` along axis 0 of every ``data/*`` array."""
        i = self._check_index(i)
        start = int(self._ends[i - 1]) if i > 0 else 0
        return slice(start, int(self._ends[i]))

    def array(self, key: str):
        """The Zarr array ``data/<key>`` (all committed steps are ``[:num_steps]``)."""
        if key not in self._arrays:
            raise ManipError(f"{self.path}: no key '{key}' (keys: {', '.join(self.keys) or 'none'})")
        return self._arrays[key]

    def read(self, key: str, start: int, stop: int) -> np.ndarray:
        """Steps ``[start, stop)`` of ``key``; an unreadable chunk is a one-line error naming the array."""
        try:
            return np.asarray(self.array(key)[start:stop])
        except ManipError:
            raise
        except Exception as exc:
            raise ManipError(
                f"{self.path}/data/{key}: unreadable steps {start}:{stop} ({_describe(exc)})"
            ) from None

    def missing_chunks(self, key: str) -> list[int]:
        """First steps of the stored chunks (shards in Zarr v3) of ``key``'s committed steps that are missing on
        disk. Every chunk is written when an episode is committed, so a missing one means damage: it would
        silently read as fill values."""
        from zarr.core.sync import sync

        array = self.array(key)
        shards = getattr(array, "shards", None)
        block = int(shards[0]) if shards else int(array.chunks[0])
        total = min(self.num_steps, int(array.shape[0]))
        missing = []
        for start in range(0, total, block):
            chunk = array.metadata.encode_chunk_key((start // block,) + (0,) * (array.ndim - 1))
            if not sync(array.store.exists(f"{array.path}/{chunk}")):
                missing.append(start)
        return missing

    def get_episode(self, i: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """All steps of episode ``i`` for ``keys`` (default: every key)."""
        span = self.episode_slice(i)
        return {key: self.read(key, span.start, span.stop) for key in (keys or self.keys)}

    def episode_meta_texts(self) -> list[str]:
        """The stored JSON text of every committed episode's metadata (``""`` where there is none)."""
        raw = [""] * self.num_episodes
        if self.num_episodes and self._has_episode_meta():
            stored = open_array(self._root, EPISODE_META, self.path)
            count = min(self.num_episodes, stored.shape[0])
            try:
                raw[:count] = [str(s) for s in stored[:count]]
            except Exception as exc:
                raise ManipError(f"{self.path}/{EPISODE_META}: unreadable ({_describe(exc)})") from None
        return raw

    def _has_episode_meta(self) -> bool:
        """Whether ``meta/episode_meta`` exists, decided from the listing (``in`` would parse its metadata and
        fail with a bare JSON error on a damaged one; :func:`open_array` reports that as one line)."""
        return "episode_meta" in _member_names(self._root, "meta", self.path)

    def _all_meta(self) -> list[dict]:
        if self._meta_cache is None:
            self._meta_cache = [self._parse_meta(i, text) for i, text in enumerate(self.episode_meta_texts())]
        return self._meta_cache

    def _parse_meta(self, i: int, text: str) -> dict:
        meta: dict = {}
        where = f"{self.path}/{EPISODE_META}: episode {i}"
        if text:
            try:
                meta = json.loads(text)
            except json.JSONDecodeError:
                raise ManipError(f"{where} metadata is not valid JSON") from None
        if not isinstance(meta, dict):
            raise ManipError(f"{where} metadata is not a JSON object")
        meta.setdefault("success", None)
        if meta["success"] not in (True, False, None):
            raise ManipError(f"{where} success is {meta['success']!r}, not true/false/null")
        return meta

    def episode_meta(self, i: int) -> dict:
        """Metadata of episode ``i`` (``success`` is always present: ``True``, ``False`` or ``None``)."""
        return dict(self._all_meta()[self._check_index(i)])

    @property
    def episode_success(self) -> list[bool | None]:
        return [m["success"] for m in self._all_meta()]

    @property
    def attrs(self) -> dict:
        """Dataset-level attributes (JSON), without manip's own layout marker."""
        return {k: v for k, v in self._root.attrs.asdict().items() if k != LAYOUT_ATTR}

    def set_attrs(self, **values: Any) -> None:
        """Set dataset-level attributes (JSON-able values)."""
        self._require_writable()
        _json_meta(values, f"{self.path}: attributes")
        self._root.attrs.update(values)

    def step_spec(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
        """Per-step shape and dtype of ``key``."""
        arr = self.array(key)
        return tuple(int(d) for d in arr.shape[1:]), np.dtype(arr.dtype)

    # ---- appending -----------------------------------------------------------------------------------------

    def add_episode(self, data: Mapping[str, np.ndarray], meta: Mapping[str, Any] | None = None) -> int:
        """Append one episode and commit it; return its index.

        ``data`` maps every key of the store (all keys, for the first episode) to an array of equal length T>=1.
        Nothing is visible to readers until the final write of ``meta/episode_ends``; a failure before it
        leaves the store as it was.
        """
        self._require_writable()
        try:
            length = self.stage_steps(0, data)
            return self.commit_staged(length, meta)
        except BaseException:
            self.discard_staged()
            raise

    def stage_steps(self, offset: int, data: Mapping[str, np.ndarray]) -> int:
        """Write steps ``offset..`` of the episode being appended (past the committed end); return their count.

        Staged steps are invisible until :meth:`commit_staged`. The :class:`~manip.data.recorder.Recorder` streams an
        episode through this so long image episodes need not fit in memory.
        """
        self._require_writable()
        where = f"{self.path}: episode {self.num_episodes}"
        arrays, length = self._check_steps(data, where, first_chunk=(offset == 0))
        start = self.num_steps + offset
        stop = start + length
        for key, value in arrays.items():
            target = self._arrays[key] if key in self._arrays else self._create_array(key, value)
            target.resize((stop, *target.shape[1:]))
            target[start:stop] = value
        return length

    def commit_staged(self, length: int, meta: Mapping[str, Any] | None = None) -> int:
        """Commit the ``length`` staged steps as a new episode with ``meta``; return its index."""
        self._require_writable()
        index = self.num_episodes
        where = f"{self.path}: episode {index}"
        stop = self.num_steps + int(length)
        short = [k for k, a in self._arrays.items() if a.shape[0] < stop]
        if length < 1 or not self._arrays or short:
            raise ManipError(f"{where}: nothing staged to commit ({length} steps; short arrays: {short})")
        meta = dict(meta or {})
        success = meta.get("success")
        if success is not None and not isinstance(success, (bool, np.bool_)):
            raise ManipError(f"{where}: success must be true, false or null, got {success!r}")
        if success is not None:
            meta["success"] = bool(success)
        meta_text = _json_meta(meta, where)
        meta_array = self._meta_array()
        meta_array.resize((index + 1,))
        meta_array[index] = meta_text
        self._append_end(stop)
        if self._zip_staging is not None:
            zipped.publish(self._zip_staging, self.path)
        if self._meta_cache is not None:
            self._meta_cache.append(self._parse_meta(index, meta_text))
        return index

    def discard_staged(self) -> None:
        """Drop staged (uncommitted) steps so every ``data/*`` array ends at the last committed step again."""
        self._require_writable()
        self.discard_staged_beyond(self.num_steps)

    def _require_writable(self) -> None:
        if self.mode == "r":
            raise ManipError(f"{self.path}: opened read-only; open it with mode='a' to append")

    def _check_steps(self, data: Mapping[str, np.ndarray], where: str, first_chunk: bool) -> tuple[dict, int]:
        if not isinstance(data, Mapping) or not data:
            raise ManipError(f"{where}: expected a non-empty dict of per-step arrays")
        arrays = {str(k): np.asarray(v) for k, v in data.items()}
        if self.num_episodes or not first_chunk:
            expected = set(self._arrays)
            if set(arrays) != expected:
                missing = sorted(expected - set(arrays))
                extra = sorted(set(arrays) - expected)
                parts = [f"missing key(s) {', '.join(missing)}"] * bool(missing)
                parts += [f"unknown key(s) {', '.join(extra)}"] * bool(extra)
                raise ManipError(f"{where}: {'; '.join(parts)} (store keys: {', '.join(sorted(expected))})")
        lengths = {k: (v.shape[0] if v.ndim else 0) for k, v in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ManipError(f"{where}: arrays have different lengths {lengths}")
        length = next(iter(lengths.values()))
        if length < 1:
            raise ManipError(f"{where}: an episode needs at least one step")
        for key, value in arrays.items():
            if value.dtype.kind not in "biuf":
                raise ManipError(
                    f"{where}: '{key}' has dtype {value.dtype}; expected a numeric or bool array"
                )
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                raise ManipError(f"{where}: '{key}' contains NaN or inf")
        if first_chunk and not self.num_episodes:
            self._drop_uncommitted_arrays(set(arrays))
        for key, value in arrays.items():
            if key in self._arrays:
                arrays[key] = self._conform(key, value, where)
        return arrays, length

    def _conform(self, key: str, value: np.ndarray, where: str) -> np.ndarray:
        shape, dtype = self.step_spec(key)
        if tuple(value.shape[1:]) != shape:
            raise ManipError(
                f"{where}: '{key}' has per-step shape {tuple(value.shape[1:])}, store has {shape}"
            )
        if value.dtype != dtype:
            if not np.can_cast(value.dtype, dtype, casting="same_kind"):
                raise ManipError(f"{where}: '{key}' has dtype {value.dtype}, store has {dtype}")
            value = value.astype(dtype)
        return value

    def _drop_uncommitted_arrays(self, keep: set[str]) -> None:
        """Before the first commit, arrays left by an interrupted first episode may not match: remove them."""
        for key in [k for k in self._arrays if k not in keep]:
            del self._root["data"][key]
            del self._arrays[key]

    def _create_array(self, key: str, value: np.ndarray):
        step_shape = tuple(value.shape[1:])
        kwargs = {}
        shards = layout.shard_shape(step_shape, value.dtype, self.zarr_format)
        if shards is not None:
            kwargs["shards"] = shards
        frame = layout.is_frame(step_shape, value.dtype)
        codec = layout.compressor(layout.IMAGE_CODEC if frame else layout.LOWDIM_CODEC, self.zarr_format)
        array = self._root["data"].create_array(
            key,
            shape=(0, *step_shape),
            chunks=layout.chunk_shape(step_shape, value.dtype),
            dtype=value.dtype,
            compressors=codec,
            fill_value=0,
            **kwargs,
        )
        self._arrays[key] = array = _writing_every_chunk(array)
        self._arrays = dict(sorted(self._arrays.items()))
        return array

    def _meta_array(self):
        if self._meta_array_handle is None:
            self._meta_array_handle = self._open_or_create_meta_array()
        return self._meta_array_handle

    def _open_or_create_meta_array(self):
        meta = self._root["meta"]
        if self._has_episode_meta():
            return _writing_every_chunk(open_array(self._root, EPISODE_META, self.path))
        array = _writing_every_chunk(
            meta.create_array("episode_meta", shape=(0,), chunks=(META_CHUNK,), dtype=str)
        )
        if self.num_episodes:  # a store written without metadata (e.g. by Diffusion Policy): empty entries
            array.resize((self.num_episodes,))
            array[:] = np.array([""] * self.num_episodes, dtype=object)
        return array

    def _append_end(self, end: int) -> None:
        """Commit: write the new end into its chunk, then grow ``episode_ends`` in one atomic metadata write."""
        from zarr.core.array import AsyncArray

        ends = self._ends_array
        n = len(self._ends)
        staged_meta = ends.metadata.update_shape((n + 1,))
        inner = ends._async_array
        staged = _zarr().Array(
            AsyncArray(metadata=staged_meta, store_path=inner.store_path, config=inner.config)
        )
        staged[n] = end
        ends.resize((n + 1,))
        self._ends = np.append(self._ends, np.int64(end))

    def recover_tail(self, meta: Mapping[str, Any] | None = None) -> int | None:
        """Commit the uncommitted tail left by an interrupted append as a new episode; return its index.

        Only steps present in every ``data/*`` array are kept, minus the last one (it may have been cut off
        between two arrays' writes). The episode is marked ``{"recovered": true}`` and ``success`` null.
        Returns ``None`` when there is nothing to recover.
        """
        self._require_writable()
        if not self._arrays:
            return None
        length = min(a.shape[0] for a in self._arrays.values()) - self.num_steps - 1
        if length < 1:
            self.discard_staged()
            return None
        self.discard_staged_beyond(self.num_steps + length)
        return self.commit_staged(length, {**dict(meta or {}), "recovered": True, "success": None})

    def discard_staged_beyond(self, stop: int) -> None:
        """Shrink every ``data/*`` array longer than ``stop`` (never below the committed steps)."""
        stop = max(stop, self.num_steps)
        for array in self._arrays.values():
            if array.shape[0] > stop:
                array.resize((stop, *array.shape[1:]))

    def uncommitted_steps(self) -> int:
        """Steps past the last committed end in the longest ``data/*`` array (an interrupted append's tail)."""
        longest = max((a.shape[0] for a in self._arrays.values()), default=0)
        return max(0, longest - self.num_steps)

    def __repr__(self) -> str:
        return (
            f"EpisodeStore({str(self.path)!r}, zarr_format={self.zarr_format}, episodes={self.num_episodes}, "
            f"steps={self.num_steps}, keys={self.keys})"
        )
