"""The LeRobot v3 dataset layout (``codebase_version`` ``v3.x``), shared by the importer and the exporter.

A LeRobot v3 dataset is a directory (a local copy or a Hugging Face hub snapshot)::

    meta/info.json                          fps, features {name: {dtype, shape, names, info}}, paths, totals
    meta/tasks.parquet                      one row per task string (the pandas index) with its task_index
    meta/episodes/chunk-XXX/file-YYY.parquet  one row per episode: episode_index, tasks, length,
                                            data/{chunk,file}_index, dataset_{from,to}_index,
                                            videos/<key>/{chunk_index,file_index,from_timestamp,to_timestamp}
    data/chunk-XXX/file-YYY.parquet         one row per frame: every non-video feature, timestamp, frame_index,
                                            episode_index, index, task_index
    videos/<key>/chunk-XXX/file-YYY.mp4     the frames of a camera, many episodes one after another

Per-frame numbers are exact in parquet; camera frames live in the videos (lossy) or, for ``dtype: image``, as
PNG bytes in the parquet rows (lossless).
"""

from __future__ import annotations

import json
from pathlib import Path

from manip.core.errors import ManipError, require

INFO_PATH = "meta/info.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
STATS_PATH = "meta/stats.json"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = EPISODES_DIR + "/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
CODEBASE_VERSION = "v3.0"
FRAME_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
CHUNKS_SIZE = 1000
DATA_FILE_MB = 100
VIDEO_FILE_MB = 200
MANIP_INFO = "manip"
"""Key of ``info.json`` where an export keeps what LeRobot has no place for (manip key names, store attrs)."""
MANIP_META_COLUMN = "manip_meta"
"""Episodes-table column holding each episode's manip metadata as JSON (exports only)."""


def codebase_version(path: Path) -> str | None:
    """The ``codebase_version`` of the LeRobot dataset directory ``path``; ``""`` when its ``meta/info.json`` is
    unreadable or names none; ``None`` when there is no ``meta/info.json``."""
    info = Path(path) / INFO_PATH
    if not info.is_file():
        return None
    try:
        version = json.loads(info.read_text()).get("codebase_version")
    except (OSError, ValueError, AttributeError):
        return ""
    return version if isinstance(version, str) else ""


def is_lerobot_v3(path: Path) -> bool:
    """True for a directory holding ``meta/info.json`` with ``codebase_version`` v3.x (cheap: reads one JSON);
    also when that file is unreadable, so the importer can say what is wrong with it."""
    version = codebase_version(path) if Path(path).is_dir() else None
    return version is not None and (version == "" or version.startswith("v3."))


def pyarrow():
    """The ``pyarrow`` module with ``pyarrow.parquet`` loaded (one-line error naming the extra if missing)."""
    pa = require("pyarrow", "data")
    require("pyarrow.parquet", "data")
    return pa


def read_info(root: Path) -> dict:
    """``meta/info.json`` of the dataset at ``root``, checked for what the importer needs."""
    path = root / INFO_PATH
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ManipError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(info, dict):
        raise ManipError(f"{path}: not a JSON object")
    for field, kind in (("fps", (int, float)), ("features", dict), ("codebase_version", str)):
        if not isinstance(info.get(field), kind):
            raise ManipError(f"{path}: '{field}' missing or of the wrong type")
    if not info["codebase_version"].startswith("v3."):
        raise ManipError(
            f"{path}: codebase_version {info['codebase_version']}; manip reads LeRobot v3.x "
            "(convert older datasets with LeRobot's v3 conversion script)"
        )
    for name, feature in info["features"].items():
        if not isinstance(feature, dict) or "dtype" not in feature or "shape" not in feature:
            raise ManipError(f"{path}: feature '{name}' needs 'dtype' and 'shape'")
    return info


def read_table(path: Path):
    """A parquet file as a pyarrow Table; one-line error naming the file when it is missing or damaged."""
    pa = pyarrow()
    if not path.is_file():
        raise ManipError(f"{path}: missing")
    try:
        return pa.parquet.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ManipError(f"{path}: not a readable parquet file ({text})") from None
