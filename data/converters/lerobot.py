"""LeRobot v3 dataset (a local directory or a hub snapshot) → manip store.

Each LeRobot episode (in ``episode_index`` order) becomes one episode:

- every per-frame feature except LeRobot's bookkeeping columns (timestamp, frame_index, episode_index, index,
  task_index) becomes ``data/<name>`` with its dtype and shape (a ``(1,)`` feature stays ``(T, 1)``); numbers are
  copied exactly;
- ``video`` features are decoded with PyAV (the frames shown at each row's timestamp, (T, H, W, 3) uint8) and
  ``image`` features (PNG in the parquet rows) are decoded losslessly;
- the episode's task string becomes ``task`` and ``instruction`` in its metadata (``tasks`` when several); its
  ``success`` comes from an episodes-table ``success`` column or, failing that, from a ``next.success`` feature
  (true when any frame is);
- datasets exported by manip (``manip data export --format lerobot``) get their key names, episode metadata and
  store attributes back exactly (kept in ``info.json`` and the episodes table).

``fps`` becomes the store's ``control_rate``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from manip.core.errors import ManipError, require
from manip.core.progress import progress
from manip.data import lerobot_v3 as v3
from manip.data.store import EpisodeStore
from manip.data.video import FrameCursor


def _column_array(column, shape: tuple[int, ...], dtype: np.dtype, where: str) -> np.ndarray:
    """A parquet column of ``n`` rows as a numpy array ``(n, *shape)`` of ``dtype`` (exact values)."""
    pa = v3.pyarrow()
    if column.null_count:
        raise ManipError(f"{where}: {column.null_count} empty value(s)")
    values = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    while (
        pa.types.is_list(values.type)
        or pa.types.is_fixed_size_list(values.type)
        or pa.types.is_large_list(values.type)
    ):
        values = values.flatten()
    flat = values.to_numpy(zero_copy_only=False)
    per_row = int(np.prod(shape))
    if flat.size != len(column) * per_row:
        raise ManipError(
            f"{where}: {flat.size} values for {len(column)} frames, but info.json gives shape {list(shape)}"
        )
    if flat.dtype != dtype:
        if not np.can_cast(flat.dtype, dtype, casting="same_kind"):
            raise ManipError(f"{where}: values are {flat.dtype}, info.json says {dtype}")
        flat = flat.astype(dtype)
    return flat.reshape(len(column), *shape)


def _png_frames(column, where: str) -> np.ndarray:
    """An ``image`` feature column (structs of PNG ``bytes``) decoded to (n, H, W, C) uint8."""
    import io

    image = require("PIL.Image", "sim")
    frames = []
    for i, cell in enumerate(column.to_pylist()):
        data = cell.get("bytes") if isinstance(cell, dict) else None
        if not data:
            raise ManipError(f"{where}: frame {i} has no image bytes")
        try:
            frames.append(np.asarray(image.open(io.BytesIO(data)).convert("RGB")))
        except OSError as exc:
            raise ManipError(f"{where}: frame {i} is not a readable image ({exc})") from None
    return np.stack(frames)


def _frame_size(feature: dict) -> tuple[int, int]:
    """(height, width) of a video feature (its shape is (H, W, C), or (C, H, W) when its names say so)."""
    shape, names = list(feature["shape"]), feature.get("names") or []
    return (shape[1], shape[2]) if names[:1] == ["channels"] else (shape[0], shape[1])


def _read_tasks(root: Path) -> dict[int, str]:
    """``task_index`` → task string from ``meta/tasks.parquet`` (the task is the pandas index column)."""
    path = root / v3.TASKS_PATH
    if not path.exists():
        return {}
    table = v3.read_table(path)
    names = table.column_names
    if "task_index" not in names:
        raise ManipError(f"{path}: no 'task_index' column")
    text = next((n for n in ("task", "__index_level_0__", *names) if n in names and n != "task_index"), None)
    if text is None:
        raise ManipError(f"{path}: no task text column")
    return dict(
        zip(table.column("task_index").to_pylist(), map(str, table.column(text).to_pylist()), strict=True)
    )


def _read_episodes(root: Path) -> list[dict]:
    """Rows of every ``meta/episodes/*/*.parquet`` file, sorted by ``episode_index``."""
    files = sorted((root / v3.EPISODES_DIR).glob("*/*.parquet"))
    if not files:
        raise ManipError(f"{root / v3.EPISODES_DIR}: no episodes parquet files")
    rows = []
    for path in files:
        table = v3.read_table(path)
        needed = {"episode_index", "length", "data/chunk_index", "data/file_index"}
        missing = sorted(needed - set(table.column_names))
        if missing:
            raise ManipError(f"{path}: missing column(s) {', '.join(missing)}")
        keep = [n for n in table.column_names if not n.startswith("stats/")]
        rows += [dict(row, _file=path) for row in table.select(keep).to_pylist()]
    rows.sort(key=lambda r: r["episode_index"])
    indices = [r["episode_index"] for r in rows]
    if len(set(indices)) != len(indices):
        raise ManipError(f"{root / v3.EPISODES_DIR}: episode_index repeats")
    return rows


class _DataFiles:
    """The frame rows of one episode, reading each ``data/*.parquet`` file once (episodes come in file order)."""

    def __init__(self, root: Path, info: dict):
        self.root = root
        self.pattern = info.get("data_path") or v3.DATA_PATH
        self._path: Path | None = None
        self._table = None
        self._episode_index: np.ndarray | None = None

    def rows(self, episode: dict):
        path = self.root / self.pattern.format(
            chunk_index=episode["data/chunk_index"], file_index=episode["data/file_index"]
        )
        if path != self._path:
            self._table = v3.read_table(path)
            if "episode_index" not in self._table.column_names:
                raise ManipError(f"{path}: no 'episode_index' column")
            self._episode_index = self._table.column("episode_index").to_numpy()
            self._path = path
        picked = np.flatnonzero(self._episode_index == episode["episode_index"])
        rows = self._table.take(picked)
        if "frame_index" in rows.column_names:
            rows = rows.take(np.argsort(rows.column("frame_index").to_numpy(), kind="stable"))
        return path, rows


def _episode_success(episode: dict, arrays: dict[str, np.ndarray], where: str) -> bool | None:
    value = episode.get("success")
    if value is None and "next.success" in arrays:
        value = bool(np.any(arrays["next.success"]))
    if value is None:
        return None
    if value not in (0, 1, True, False):
        raise ManipError(f"{where}: success is {value!r}, not true/false or 0/1")
    return bool(value)


def _episode_meta(episode: dict, tasks: dict[int, str], task_indices: np.ndarray, where: str) -> dict:
    stored = episode.get(v3.MANIP_META_COLUMN)
    if stored:
        try:
            return json.loads(stored)
        except ValueError:
            raise ManipError(f"{where}: {v3.MANIP_META_COLUMN} is not valid JSON") from None
    names = list(episode.get("tasks") or [])
    if not names:
        unknown = sorted({int(t) for t in task_indices} - set(tasks))
        if unknown:
            raise ManipError(f"{where}: task_index {unknown[0]} is not in {v3.TASKS_PATH}")
        names = [tasks[int(t)] for t in dict.fromkeys(task_indices.tolist())]
    meta: dict = {"episode_index": int(episode["episode_index"])}
    if names:
        meta.update(task=names[0], instruction=names[0])
    if len(names) > 1:
        meta["tasks"] = names
    return meta


def convert(src: Path, store: EpisodeStore, *, quiet: bool = True) -> None:
    """Append every episode of the LeRobot v3 dataset directory ``src`` to ``store``."""
    info = v3.read_info(src)
    features = info["features"]
    fps = float(info["fps"])
    kept = info.get(v3.MANIP_INFO) if isinstance(info.get(v3.MANIP_INFO), dict) else {}
    names = kept.get("keys") or {}
    tasks = _read_tasks(src)
    episodes = _read_episodes(src)
    store.set_attrs(
        **{
            **(kept.get("attrs") or {}),
            "control_rate": fps,
            "source": {"format": f"lerobot {info['codebase_version']}", "path": str(src)},
            "lerobot": {"robot_type": info.get("robot_type"), "fps": info["fps"]},
        }
    )
    videos = [k for k, f in features.items() if f["dtype"] == "video"]
    columns = [
        k for k, f in features.items() if k not in v3.FRAME_COLUMNS and f["dtype"] not in ("video", "string")
    ]
    data = _DataFiles(src, info)
    cursors: dict[Path, FrameCursor] = {}
    tolerance = 0.45 / fps
    video_pattern = info.get("video_path") or v3.VIDEO_PATH
    for episode in progress(episodes, desc="convert", total=len(episodes), quiet=quiet, unit="ep"):
        index = episode["episode_index"]
        where = f"{src}: episode {index}"
        path, rows = data.rows(episode)
        length = int(episode["length"])
        if rows.num_rows != length:
            raise ManipError(
                f"{path}: episode {index} has {rows.num_rows} frames, the episodes table says {length}"
            )
        if "frame_index" in rows.column_names and not np.array_equal(
            rows.column("frame_index").to_numpy(), np.arange(length)
        ):
            raise ManipError(f"{path}: episode {index} frame_index is not 0..{length - 1}")
        arrays = {}
        for key in columns:
            if key not in rows.column_names:
                raise ManipError(f"{path}: no column '{key}' (a feature in info.json)")
            feature, cell = features[key], f"{path}: episode {index} '{key}'"
            if feature["dtype"] == "image":
                arrays[key] = _png_frames(rows.column(key), cell)
            else:
                arrays[key] = _column_array(
                    rows.column(key), tuple(feature["shape"]), np.dtype(feature["dtype"]), cell
                )
        if videos:
            timestamps = (
                rows.column("timestamp").to_numpy().astype(np.float64)
                if "timestamp" in rows.column_names
                else np.arange(length) / fps
            )
        for key in videos:
            missing = [
                f"videos/{key}/{f}"
                for f in ("chunk_index", "file_index", "from_timestamp")
                if f"videos/{key}/{f}" not in episode
            ]
            if missing:
                raise ManipError(f"{episode['_file']}: episode {index} has no {missing[0]}")
            video = src / video_pattern.format(
                video_key=key,
                chunk_index=episode[f"videos/{key}/chunk_index"],
                file_index=episode[f"videos/{key}/file_index"],
            )
            if not video.is_file():
                raise ManipError(f"{video}: missing (episode {index} '{key}')")
            cursor = cursors.setdefault(video, FrameCursor(video))
            frames = cursor.take(
                episode[f"videos/{key}/from_timestamp"] + timestamps, tolerance, f"episode {index} '{key}'"
            )
            height, width = _frame_size(features[key])
            arrays[key] = np.ascontiguousarray(frames[:, :height, :width])
        meta = _episode_meta(
            episode,
            tasks,
            rows.column("task_index").to_numpy() if "task_index" in rows.column_names else np.zeros(0, int),
            where,
        )
        if episode.get(v3.MANIP_META_COLUMN) is None:  # not a manip export: success and source from LeRobot's
            meta.update(success=_episode_success(episode, arrays, where), source=f"lerobot:{src.name}")
        arrays = {names.get(k, k): v for k, v in arrays.items()}
        for key, shape in (kept.get("shapes") or {}).items():  # a manip export: per-step shapes as they were
            if key in arrays and int(np.prod(shape)) == int(np.prod(arrays[key].shape[1:])):
                arrays[key] = arrays[key].reshape(length, *shape)
        store.add_episode(arrays, meta)
