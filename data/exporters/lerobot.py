"""manip store → LeRobot v3 dataset directory (readable by ``lerobot.datasets.LeRobotDataset``).

Key names follow LeRobot's conventions so its policies find their inputs: ``action`` stays ``action``; camera
keys ((H, W, 3) uint8) become ``observation.images.<key>`` videos; ``reward``/``done`` become
``next.reward``/``next.done``; ``intervention`` stays; every other key becomes ``observation.<key>``. Numbers are
written exactly (parquet); camera frames are encoded with PyAV (:mod:`manip.data.video`), and the export measures
each camera's PSNR against the store by decoding the videos back. Each episode's task is its ``instruction`` (or
``task``); its ``success`` goes into the episodes table. What LeRobot has no place for (manip key names, the
episode metadata, store attributes) is kept in ``info.json`` and an episodes-table column, so ``manip data
convert`` restores the store exactly (up to the video loss).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from manip.core.progress import progress
from manip.data import lerobot_v3 as v3
from manip.data.layout import is_frame
from manip.data.store import EpisodeStore
from manip.data.video import VideoSettings, VideoWriter, iter_frames

RENAMES = {"action": "action", "reward": "next.reward", "done": "next.done", "intervention": "intervention"}


def is_camera(shape: tuple[int, ...], dtype) -> bool:
    """True for per-step (H, W, 3) uint8 frames (exported as video)."""
    return len(shape) == 3 and shape[-1] == 3 and np.dtype(dtype) == np.uint8 and is_frame(shape, dtype)


def lerobot_name(key: str, camera: bool) -> str:
    """The LeRobot feature name of the manip key ``key``."""
    if camera:
        return f"observation.images.{key}"
    return RENAMES.get(key, f"observation.{key}")


def _arrow_column(values: np.ndarray):
    """A per-frame array (n, ...) as a parquet column: scalars for (n,) or (n, 1), fixed-size lists otherwise."""
    pa = v3.pyarrow()
    if values.ndim == 1 or values.shape[1:] == (1,):
        return pa.array(values.reshape(len(values)))
    column = pa.array(values.reshape(-1))
    for size in reversed(values.shape[1:]):
        column = pa.FixedSizeListArray.from_arrays(column, size)
    return column


class _Stats:
    """Running min/max/mean/std per feature (cameras per channel in [0, 1], shaped (3, 1, 1) like LeRobot's)."""

    def __init__(self):
        self.sums: dict[str, list] = {}

    def add(self, name: str, values: np.ndarray, camera: bool) -> None:
        if camera:
            values = values.reshape(-1, 3) / 255.0
        values = values.astype(np.float64).reshape(len(values), -1)
        low, high = values.min(0), values.max(0)
        total = self.sums.setdefault(name, [0, 0.0, 0.0, low, high, camera])
        total[0] += len(values)
        total[1] = total[1] + values.sum(0)
        total[2] = total[2] + (values**2).sum(0)
        total[3], total[4] = np.minimum(total[3], low), np.maximum(total[4], high)

    def to_json(self, shapes: dict[str, tuple[int, ...]]) -> dict:
        out = {}
        for name, (count, s, s2, low, high, camera) in self.sums.items():
            shape = (3, 1, 1) if camera else shapes[name]
            mean = s / count
            std = np.sqrt(np.maximum(s2 / count - mean**2, 0))
            out[name] = {
                k: np.reshape(v, shape).tolist()
                for k, v in (("min", low), ("max", high), ("mean", mean), ("std", std))
            }
            out[name]["count"] = [int(count)]
        return out


class _Files:
    """Data parquet files and per-camera video files, each started anew when it reaches LeRobot's size limit."""

    def __init__(self, root: Path, fps: float, settings: VideoSettings):
        self.root, self.fps, self.settings = root, fps, settings
        self.data_index = (0, 0)
        self.pending: list = []
        self.pending_bytes = 0
        self.videos: dict[str, tuple[tuple[int, int], VideoWriter]] = {}
        self.closed_videos: list[tuple[str, Path]] = []

    def add_rows(self, table) -> tuple[int, int]:
        if self.pending and self.pending_bytes + table.nbytes > v3.DATA_FILE_MB * 2**20:
            self.flush_rows()
            self.data_index = _next_index(self.data_index)
        self.pending.append(table)
        self.pending_bytes += table.nbytes
        return self.data_index

    def flush_rows(self) -> None:
        if self.pending:
            pa = v3.pyarrow()
            path = self.root / v3.DATA_PATH.format(
                chunk_index=self.data_index[0], file_index=self.data_index[1]
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            pa.parquet.write_table(pa.concat_tables(self.pending), path)
            self.pending, self.pending_bytes = [], 0

    def video(self, name: str) -> tuple[tuple[int, int], VideoWriter]:
        index, writer = self.videos.get(name, ((0, -1), None))
        if writer is None or writer.path.stat().st_size > v3.VIDEO_FILE_MB * 2**20:
            if writer is not None:
                self.close_video(name)
            index = (0, 0) if writer is None else _next_index(index)
            path = self.root / v3.VIDEO_PATH.format(video_key=name, chunk_index=index[0], file_index=index[1])
            writer = VideoWriter(path, self.fps, self.settings)
            self.videos[name] = (index, writer)
        return index, writer

    def close_video(self, name: str) -> None:
        writer = self.videos[name][1]
        writer.close()
        self.closed_videos.append((name, writer.path))

    def close(self) -> None:
        self.flush_rows()
        for name in list(self.videos):
            self.close_video(name)


def _next_index(index: tuple[int, int]) -> tuple[int, int]:
    chunk, file = index
    return (chunk + 1, 0) if file == v3.CHUNKS_SIZE - 1 else (chunk, file + 1)


def _write_tasks(root: Path, tasks: dict[str, int]) -> None:
    """``meta/tasks.parquet`` as pandas writes LeRobot's tasks DataFrame (task strings as the index)."""
    pa = v3.pyarrow()
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": None,
                "field_name": "__index_level_0__",
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = pa.table(
        {
            "task_index": pa.array(list(tasks.values()), pa.int64()),
            "__index_level_0__": pa.array(list(tasks), pa.string()),
        }
    )
    table = table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
    path = root / v3.TASKS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    pa.parquet.write_table(table, path)


def _write_episodes(root: Path, rows: list[dict]) -> None:
    pa = v3.pyarrow()
    columns = {name: [row.get(name) for row in rows] for name in rows[0]}
    types = {"tasks": pa.list_(pa.string()), "success": pa.bool_(), v3.MANIP_META_COLUMN: pa.string()}
    table = pa.table({name: pa.array(values, types.get(name)) for name, values in columns.items()})
    path = root / v3.EPISODES_PATH.format(chunk_index=0, file_index=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pa.parquet.write_table(table, path)


def _measure_psnr(
    store: EpisodeStore,
    fps: float,
    videos: list[tuple[str, Path]],
    cameras: dict[str, str],
    episodes: list[dict],
) -> dict[str, float]:
    """Mean PSNR (dB) per camera of the written videos against the store's frames (decoding every video)."""
    error: dict[str, list[float]] = {}
    for name, path in videos:
        key = cameras[name]
        spans = [
            (round(e[f"videos/{name}/from_timestamp"] * fps), e["_index"])
            for e in episodes
            if e.get(f"_video_path/{name}") == path
        ]
        wanted = {
            start + t: (index, t) for start, index in spans for t in range(int(store.episode_lengths[index]))
        }
        cache: dict[int, np.ndarray] = {}
        for frame_number, (_time, frame) in enumerate(iter_frames(path)):
            if frame_number not in wanted:
                continue
            index, t = wanted[frame_number]
            if index not in cache:
                cache.clear()
                cache[index] = store.get_episode(index, [key])[key]
            reference = cache[index][t]
            decoded = frame[: reference.shape[0], : reference.shape[1]]
            mse = np.mean((reference.astype(np.float64) - decoded) ** 2)
            total = error.setdefault(name, [0.0, 0])
            total[0] += mse
            total[1] += 1
    return {
        cameras[n]: (float("inf") if s == 0 else float(10 * np.log10(255.0**2 / (s / c))))
        for n, (s, c) in error.items()
    }


def export(
    store: EpisodeStore,
    out: Path,
    *,
    fps: float,
    quiet: bool = True,
    video: VideoSettings = VideoSettings(),
    measure: bool = True,
) -> dict:
    """Write every episode of ``store`` as a LeRobot v3 dataset at ``out``; return counts and per-camera PSNR."""
    pa = v3.pyarrow()
    features, names, cameras, shapes, step_shapes = {}, {}, {}, {}, {}
    for key in store.keys:
        shape, dtype = store.step_spec(key)
        camera = is_camera(shape, dtype)
        name = lerobot_name(key, camera)
        names[name] = key
        step_shapes[key] = list(shape)
        if camera:
            cameras[name] = key
            features[name] = {
                "dtype": "video",
                "shape": list(shape),
                "names": ["height", "width", "channels"],
                "info": {
                    "video.height": shape[0],
                    "video.width": shape[1],
                    "video.codec": "h264" if video.codec == "libx264" else video.codec,
                    "video.pix_fmt": video.pix_fmt,
                    "video.is_depth_map": False,
                    "video.fps": round(fps),
                    "video.channels": 3,
                    "has_audio": False,
                },
            }
        else:
            shapes[name] = tuple(shape) or (1,)
            features[name] = {"dtype": str(dtype), "shape": list(shapes[name]), "names": None}
    for column, dtype in zip(v3.FRAME_COLUMNS, ("float32", "int64", "int64", "int64", "int64"), strict=True):
        features[column] = {"dtype": dtype, "shape": [1], "names": None}
    out.mkdir(parents=True)
    files = _Files(out, fps, video)
    stats = _Stats()
    tasks: dict[str, int] = {}
    episodes: list[dict] = []
    frames_so_far = 0
    for i in progress(
        range(store.num_episodes), desc="export", total=store.num_episodes, quiet=quiet, unit="ep"
    ):
        data, meta = store.get_episode(i), store.episode_meta(i)
        length = int(store.episode_lengths[i])
        task = str(meta.get("instruction") or meta.get("task") or "")
        task_index = tasks.setdefault(task, len(tasks))
        columns = {}
        row = {"episode_index": i, "tasks": [task], "length": length}
        for name, key in names.items():
            values = data[key]
            stats.add(name, values, name in cameras)
            if name in cameras:
                index, writer = files.video(name)
                start = writer.frames_written / fps
                writer.write(values)
                row.update(
                    {
                        f"videos/{name}/chunk_index": index[0],
                        f"videos/{name}/file_index": index[1],
                        f"videos/{name}/from_timestamp": start,
                        f"videos/{name}/to_timestamp": start + length / fps,
                        f"_video_path/{name}": writer.path,
                    }
                )
            else:
                columns[name] = _arrow_column(values)
        frame_index = np.arange(length, dtype=np.int64)
        timestamp = (frame_index / fps).astype(np.float32)
        columns.update(
            timestamp=pa.array(timestamp),
            frame_index=pa.array(frame_index),
            episode_index=pa.array(np.full(length, i, np.int64)),
            index=pa.array(frame_index + frames_so_far),
            task_index=pa.array(np.full(length, task_index, np.int64)),
        )
        for column in v3.FRAME_COLUMNS:
            stats.add(
                column, np.asarray(columns[column].to_numpy(zero_copy_only=False)).reshape(length, 1), False
            )
            shapes[column] = (1,)
        chunk, file = files.add_rows(pa.table(columns))
        row.update(
            {
                "data/chunk_index": chunk,
                "data/file_index": file,
                "dataset_from_index": frames_so_far,
                "dataset_to_index": frames_so_far + length,
                "meta/episodes/chunk_index": 0,
                "meta/episodes/file_index": 0,
                "success": meta.get("success"),
                v3.MANIP_META_COLUMN: json.dumps(meta, sort_keys=True),
                "_index": i,
            }
        )
        episodes.append(row)
        frames_so_far += length
    files.close()
    psnr = _measure_psnr(store, fps, files.closed_videos, cameras, episodes) if measure and cameras else {}
    _write_episodes(out, [{k: v for k, v in row.items() if not k.startswith("_")} for row in episodes])
    _write_tasks(out, tasks)
    info = {
        "codebase_version": v3.CODEBASE_VERSION,
        "robot_type": store.attrs.get("robot_type"),
        "total_episodes": store.num_episodes,
        "total_frames": frames_so_far,
        "total_tasks": len(tasks),
        "chunks_size": v3.CHUNKS_SIZE,
        "data_files_size_in_mb": v3.DATA_FILE_MB,
        "video_files_size_in_mb": v3.VIDEO_FILE_MB,
        "fps": round(fps),
        "splits": {"train": f"0:{store.num_episodes}"},
        "data_path": v3.DATA_PATH,
        "video_path": v3.VIDEO_PATH if cameras else None,
        "features": features,
        v3.MANIP_INFO: {"keys": names, "shapes": step_shapes, "attrs": store.attrs},
    }
    (out / v3.INFO_PATH).write_text(json.dumps(info, indent=4))
    (out / v3.STATS_PATH).write_text(json.dumps(stats.to_json(shapes), indent=4))
    return {
        "episodes": store.num_episodes,
        "frames": frames_so_far,
        "cameras": sorted(cameras.values()),
        "psnr_db": psnr,
    }
