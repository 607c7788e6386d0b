"""Exact-resume training state as ``state.safetensors`` (tensors) + ``state.json`` (everything else). No pickle.

Holds the model, the EMA model, the optimizer (tensors flattened per parameter), the LR scheduler, the step,
and the torch / numpy / Python RNG states.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from manip.core.errors import ManipError

TENSORS = "state.safetensors"
META = "state.json"


def _optimizer_split(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for idx, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optim/{idx}/{name}"] = value
            else:
                scalars[f"{idx}/{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _optimizer_join(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, idx, name = key.split("/", 2)
            state.setdefault(int(idx), {})[name] = value
    for key, value in meta["scalars"].items():
        idx, name = key.split("/", 1)
        state.setdefault(int(idx), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_train_state(path: Path, *, model, ema, optimizer, scheduler, step: int, extra: dict) -> None:
    """Write the full training state under directory ``path`` (atomically replaced file by file)."""
    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema/{k}": v for k, v in ema.model.state_dict().items()})
    optim_tensors, optim_meta = _optimizer_split(optimizer.state_dict())
    tensors.update(optim_tensors)
    tensors["rng/torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng/cuda"] = torch.cuda.get_rng_state()
    np_state = np.random.get_state()
    tensors["rng/numpy"] = torch.from_numpy(np_state[1].astype(np.int64))
    py_state = random.getstate()
    meta = {
        "step": step,
        "optimizer": optim_meta,
        "scheduler": scheduler.state_dict(),
        "ema_updates": None if ema is None else ema.updates,
        "rng": {
            "numpy": [np_state[0], *map(float, np_state[2:])],
            "python": [py_state[0], list(py_state[1]), py_state[2]],
        },
        "extra": extra,
    }
    tmp = path / (TENSORS + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp))
    tmp.replace(path / TENSORS)
    (path / (META + ".tmp")).write_text(json.dumps(meta))
    (path / (META + ".tmp")).replace(path / META)


def load_train_state(path: Path, *, model, ema, optimizer, scheduler) -> tuple[int, dict]:
    """Restore everything :func:`save_train_state` wrote; returns ``(step, extra)``."""
    if not (path / TENSORS).is_file() or not (path / META).is_file():
        raise ManipError(f"{path}: no training state to resume from")
    tensors = load_file(str(path / TENSORS))
    meta = json.loads((path / META).read_text())
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    if ema is not None:
        ema_state = {k[4:]: v for k, v in tensors.items() if k.startswith("ema/")}
        if not ema_state:
            raise ManipError(f"{path}: the saved run had no EMA; resume with the same trainer.ema setting")
        ema.model.load_state_dict(ema_state)
        ema.updates = int(meta["ema_updates"])
    optimizer.load_state_dict(_optimizer_join(tensors, meta["optimizer"]))
    scheduler.load_state_dict(meta["scheduler"])
    torch.set_rng_state(tensors["rng/torch"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
    kind, pos, has_gauss, cached = meta["rng"]["numpy"]
    np.random.set_state(
        (kind, tensors["rng/numpy"].numpy().astype(np.uint32), int(pos), int(has_gauss), cached)
    )
    version, internal, gauss = meta["rng"]["python"]
    random.setstate((version, tuple(internal), gauss))
    return int(meta["step"]), meta["extra"]
