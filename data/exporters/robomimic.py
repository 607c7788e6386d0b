"""manip store → robomimic HDF5 (the layout robomimic's ``SequenceDataset`` reads).

::

    data/                 attrs: total (steps), env_args (JSON string)
      demo_<i>/           attrs: num_samples, and the episode's metadata (dicts and lists as JSON strings)
        actions (T, A)    from data/action; rewards, dones, states from data/reward, done, state
        obs/<key> (T, ...)  every other key, values and dtypes exactly
        next_obs/<key>    obs shifted by one step (the last step repeated), as robomimic's files hold it
    mask/<filter_key>     demo names (bytes), from the masks a robomimic conversion kept

Demo names are the episodes' ``demo`` metadata when they came from robomimic, else ``demo_<index>``.
``env_args`` is the one the source file had, or one naming the episodes' task and the control rate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from manip.core.errors import ManipError, require
from manip.core.progress import progress
from manip.data.store import EpisodeStore

TOP_LEVEL = {"action": "actions", "reward": "rewards", "done": "dones", "state": "states"}


def _attr(value):
    """An episode-metadata value as an HDF5 attribute (JSON text for containers)."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def _env_args(store: EpisodeStore, fps: float) -> dict:
    source = store.attrs.get("source_attrs")
    if isinstance(source, dict) and isinstance(source.get("env_args"), dict):
        return source["env_args"]
    task = store.episode_meta(0).get("task") if store.num_episodes else None
    return {"env_name": task or "unknown", "type": 1, "env_kwargs": {"control_freq": fps}}


def _demo_names(store: EpisodeStore) -> list[str]:
    names = [store.episode_meta(i).get("demo") for i in range(store.num_episodes)]
    if all(isinstance(n, str) for n in names) and len(set(names)) == len(names):
        return names
    return [f"demo_{i}" for i in range(store.num_episodes)]


def export(store: EpisodeStore, out: Path, *, fps: float, quiet: bool = True, next_obs: bool = True) -> dict:
    """Write every episode of ``store`` as a robomimic HDF5 file at ``out``; return counts."""
    h5py = require("h5py", "data")
    if "action" not in store.keys:
        raise ManipError(f"{store.path}: no 'action' key (robomimic needs actions)")
    names = _demo_names(store)
    with h5py.File(out, "w") as file:
        data = file.create_group("data")
        for i in progress(
            range(store.num_episodes), desc="export", total=store.num_episodes, quiet=quiet, unit="ep"
        ):
            demo = data.create_group(names[i])
            obs = demo.create_group("obs")
            following = demo.create_group("next_obs") if next_obs else None
            for key, values in store.get_episode(i).items():
                if key in TOP_LEVEL:
                    demo.create_dataset(TOP_LEVEL[key], data=values)
                    continue
                obs.create_dataset(key, data=values)
                if following is not None:
                    following.create_dataset(key, data=np.concatenate([values[1:], values[-1:]]))
            meta = store.episode_meta(i)
            for key, value in meta.items():
                if value is not None and key != "demo":
                    demo.attrs[key] = _attr(value)
            demo.attrs["num_samples"] = int(store.episode_lengths[i])
        data.attrs["total"] = int(store.num_steps)
        data.attrs["env_args"] = json.dumps(_env_args(store, fps))
        masks = store.attrs.get("masks") or {}
        known = set(names)
        for key, demos in masks.items():
            kept = [d for d in demos if d in known]
            file.create_dataset(f"mask/{key}", data=np.array(kept, dtype="S"))
    return {"episodes": store.num_episodes, "frames": int(store.num_steps)}
