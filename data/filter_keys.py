"""Filter keys: named subsets of a store's episodes, such as robomimic's ``mask/train``, ``mask/valid`` or
``mask/20_percent`` (kept by the robomimic converter in the store attribute ``masks`` as lists of demo names).

Training picks one with ``data.filter_key``; ``manip data info`` lists them.
"""

from __future__ import annotations

import numpy as np

from manip.core.errors import ManipError
from manip.data.store import EpisodeStore


def filter_keys(store: EpisodeStore) -> dict[str, list[str]]:
    """Every filter key of ``store`` with the demo names it selects (empty when the store has none)."""
    masks = store.attrs.get("masks")
    return {str(k): [str(d) for d in v] for k, v in masks.items()} if isinstance(masks, dict) else {}


def filter_key_mask(store: EpisodeStore, key: str) -> np.ndarray:
    """Boolean mask over the episodes of ``store`` selected by the filter key ``key``."""
    keys = filter_keys(store)
    if key not in keys:
        known = ", ".join(keys) if keys else "none: only robomimic conversions keep them"
        raise ManipError(f"data.filter_key '{key}': not a filter key of {store.path} (filter keys: {known})")
    wanted = set(keys[key])
    demos = [store.episode_meta(i).get("demo") for i in range(store.num_episodes)]
    mask = np.array([d in wanted for d in demos], dtype=bool)
    if not mask.any():
        raise ManipError(f"data.filter_key '{key}': selects no episode of {store.path}")
    return mask
