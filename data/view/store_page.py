"""``manip data view STORE --out DIR``: static pages to browse a store's episodes.

``DIR/index.html`` holds the episode table (length, success, task, source, intervention steps), each row linking
to ``DIR/episode_NNNN.html``: a video per camera key (``DIR/videos/``, H.264 MP4) and plots of the actions and
of each low-dim key over time, the steps where a teleoperator intervened shaded. Everything opens from disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from manip.core.errors import ManipError
from manip.core.progress import progress
from manip.data.exporters import control_rate
from manip.data.exporters.lerobot import is_camera
from manip.data.recorder import INTERVENTION
from manip.data.store import EpisodeStore
from manip.data.video import write_video
from manip.data.view.html import escape, link, table, video, write_page
from manip.data.view.svg import line_plot

MAX_LINES = 10
DEFAULT_FPS = 20.0


def true_spans(flags: np.ndarray) -> list[tuple[int, int]]:
    """The [start, stop) runs where ``flags`` is true."""
    padded = np.concatenate([[False], np.asarray(flags, bool).reshape(-1), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _series(values: np.ndarray, key: str) -> dict[str, np.ndarray]:
    flat = values.reshape(len(values), -1)[:, :MAX_LINES]
    if flat.shape[1] == 1:
        return {key: flat[:, 0]}
    return {f"{key}[{j}]": flat[:, j] for j in range(flat.shape[1])}


def _episode_page(store: EpisodeStore, i: int, out: Path, fps: float) -> dict:
    data, meta = store.get_episode(i), store.episode_meta(i)
    spans = true_spans(data[INTERVENTION]) if INTERVENTION in data else []
    parts = []
    for key, values in data.items():
        shape, dtype = values.shape[1:], values.dtype
        if is_camera(shape, dtype):
            name = f"videos/episode_{i:04d}_{key}.mp4"
            write_video(out / name, values, fps)
            parts.append(video(name, key))
    plots = []
    for key, values in data.items():
        if (
            key == INTERVENTION
            or is_camera(values.shape[1:], values.dtype)
            or values.dtype.kind not in "biuf"
        ):
            continue
        if values[0].size > 64:  # depth maps and other large arrays are not plotted
            continue
        plots.append(
            (0 if key == "action" else 1, key, line_plot(key, _series(values.astype(np.float64), key), spans))
        )
    parts += [svg for _order, _key, svg in sorted(plots, key=lambda p: p[:2])]
    details = table(
        ["field", "value"], [[escape(k), f'<span class="text">{escape(v)}</span>'] for k, v in meta.items()]
    )
    note = (
        f'<p class="note">intervention steps shaded: {sum(b - a for a, b in spans)} in {len(spans)} span(s)</p>'
        if spans
        else ""
    )
    body = f"<p>{link('index.html', 'all episodes')}</p>{details}{note}<div>{''.join(parts)}</div>"
    write_page(out / f"episode_{i:04d}.html", f"Episode {i} of {store.path.name}", body)
    return {"spans": spans, "interventions": sum(b - a for a, b in spans) if INTERVENTION in data else None}


def write_store_page(
    path: str | Path, out: str | Path, *, max_episodes: int | None = None, quiet: bool = True
) -> Path:
    """Write ``out/index.html`` and one page per episode for the store at ``path``; return the index path."""
    path, out = Path(path), Path(out)
    if out.exists() and not out.is_dir():
        raise ManipError(f"{out}: exists and is not a directory")
    with EpisodeStore.open(path) as store:
        if store.num_episodes == 0:
            raise ManipError(f"{path}: has no episodes to show")
        fps = control_rate(store) or DEFAULT_FPS
        count = store.num_episodes if max_episodes is None else max(0, min(max_episodes, store.num_episodes))
        rows, classes = [], []
        for i in progress(range(count), desc="view", total=count, quiet=quiet, unit="ep"):
            found = _episode_page(store, i, out, fps)
            meta = store.episode_meta(i)
            success = meta.get("success")
            interventions = (
                "" if found["interventions"] is None else f"{found['interventions']} ({len(found['spans'])})"
            )
            rows.append(
                [
                    link(f"episode_{i:04d}.html", i),
                    str(int(store.episode_lengths[i])),
                    {True: "yes", False: "no", None: "–"}[success],
                    f'<span class="text">{escape(meta.get("task") or meta.get("instruction") or "")}</span>',
                    f'<span class="text">{escape(meta.get("source") or "")}</span>',
                    interventions,
                ]
            )
            classes.append({True: "ok", False: "fail", None: ""}[success])
        labelled = [s for s in store.episode_success[:count] if s is not None]
        summary = (
            f"<p>{store.num_episodes} episodes, {store.num_steps} steps, keys: {escape(', '.join(store.keys))}; "
            f"success {sum(labelled)}/{len(labelled)} labelled"
            + (f"; showing the first {count}" if count < store.num_episodes else "")
            + "</p>"
        )
        headers = ["episode", "length", "success", "task", "source", "intervention steps (spans)"]
        return write_page(out / "index.html", f"{path.name}", summary + table(headers, rows, classes))
