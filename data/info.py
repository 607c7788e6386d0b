"""Summaries of an episode store: the contract's ``manip data info --json`` dict and a human-readable table."""

from __future__ import annotations

import numpy as np

from manip.data.store import EpisodeStore


def store_info(store: EpisodeStore) -> dict:
    """The ``manip data info --json`` object (see the contract): format, counts, keys, lengths, success labels;
    plus ``filter_keys`` ({name: episode count}) when the store has some and ``unreadable_keys`` ({key: reason})
    when it was opened with ``skip_unreadable`` and some arrays need a codec this environment lacks."""
    from manip.data.filter_keys import filter_keys

    keys = {}
    for key in store.keys:
        shape, dtype = store.step_spec(key)
        keys[key] = {"shape": list(shape), "dtype": str(dtype)}
    info = {
        "zarr_format": store.zarr_format,
        "num_episodes": store.num_episodes,
        "num_steps": store.num_steps,
        "keys": keys,
        "episode_lengths": [int(n) for n in store.episode_lengths],
        "episode_success": store.episode_success,
    }
    masks = filter_keys(store)
    if masks:
        info["filter_keys"] = {name: len(demos) for name, demos in masks.items()}
    if store.unreadable:
        info["unreadable_keys"] = dict(store.unreadable)
    return info


def _codec_names(array) -> str:
    codecs = [*(getattr(array, "filters", None) or ()), *(getattr(array, "compressors", None) or ())]
    names = []
    for codec in codecs:
        name = getattr(codec, "codec_id", None) or type(codec).__name__
        cname = getattr(codec, "cname", None)
        names.append(f"{name}/{getattr(cname, 'value', cname)}" if cname else str(name))
    return ",".join(names) or "none"


def format_info(store: EpisodeStore, info: dict) -> str:
    """A terminal summary of ``info`` (from :func:`store_info`) with chunking and codecs per key."""
    lengths = np.asarray(info["episode_lengths"])
    success = info["episode_success"]
    labelled = [s for s in success if s is not None]
    lines = [
        f"{store.path}  (zarr v{info['zarr_format']})",
        f"episodes: {info['num_episodes']}   steps: {info['num_steps']}",
    ]
    if len(lengths):
        lines.append(f"episode length: min {lengths.min()}  mean {lengths.mean():.1f}  max {lengths.max()}")
    lines.append(
        f"success: {sum(labelled)}/{len(labelled)} labelled episodes"
        + (f" ({len(success) - len(labelled)} unlabelled)" if len(labelled) < len(success) else "")
    )
    tail = store.uncommitted_steps()
    if tail:
        lines.append(f"uncommitted tail: {tail} step(s) after the last episode (ignored)")
    if info.get("filter_keys"):
        lines.append(
            "filter keys (data.filter_key): "
            + ", ".join(f"{name} ({count} demos)" for name, count in info["filter_keys"].items())
        )
    lines.append("keys:")
    width = max((len(k) for k in [*info["keys"], *info.get("unreadable_keys", {})]), default=0)
    for key, spec in info["keys"].items():
        array = store.array(key)
        shards = getattr(array, "shards", None)
        layout = f"chunks {tuple(array.chunks)}" + (f" shards {tuple(shards)}" if shards else "")
        shape = str(tuple(spec["shape"]))
        lines.append(f"  {key:<{width}}  {shape:<14} {spec['dtype']:<8} {layout}  {_codec_names(array)}")
    for key, reason in info.get("unreadable_keys", {}).items():
        lines.append(f"  {key:<{width}}  unreadable: {reason}")
    return "\n".join(lines)
