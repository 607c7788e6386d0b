"""Checkpoint directories: ``model.safetensors`` (weights) + ``config.json`` (everything else). No pickle.

``config.json`` holds the policy type, its full config (architecture, horizons), the observation and action
specs, the normalizer statistics, the versions that wrote it and, for a trained policy, what its actions mean
(``control_rate`` in Hz and ``action``: space, frame, scales, gripper; see :func:`set_action_semantics`). ``load_policy`` rebuilds the policy from it
and loads the weights strictly, so a round trip predicts exactly what the saved policy did.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from manip.core.errors import ManipError
from manip.core.specs import Spec

FORMAT = "manip-policy"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        manip = version("manip")
    except PackageNotFoundError:
        manip = "unknown"
    return {"manip": manip, "torch": torch.__version__, "python": platform.python_version()}


def set_action_semantics(policy, control_rate: float | None, action: dict | None) -> None:
    """Attach what ``policy``'s actions mean: the control rate they were recorded at (Hz) and the action dict
    (space, frame, scales, gripper; docs/PROTOCOL.md). :func:`save_pretrained` writes them into ``config.json``
    (``control_rate``, ``action``), :func:`load_policy` restores them and serving sends them in its metadata."""
    policy.control_rate = float(control_rate) if control_rate else None
    policy.action_semantics = dict(action or {})


def _semantics_json(policy) -> dict:
    """``config.json``'s ``control_rate`` and ``action`` keys, for a policy that has them."""
    out = {}
    if getattr(policy, "control_rate", None):
        out["control_rate"] = float(policy.control_rate)
    if getattr(policy, "action_semantics", None):
        out["action"] = dict(policy.action_semantics)
    return out


def policy_metadata(policy) -> dict:
    """The JSON description of ``policy`` that :func:`load_policy` rebuilds it from."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "policy_type": policy.config.type,
        "policy": policy.config.model_dump(mode="json"),
        "obs_spec": policy.obs_spec.to_json(),
        "action_spec": policy.action_spec.to_json(),
        "normalizer": policy.normalizer.to_json(),
        "horizons": {
            "n_obs_steps": policy.n_obs_steps,
            "horizon": policy.horizon,
            "n_action_steps": policy.n_action_steps,
        },
        "versions": _versions(),
        **_semantics_json(policy),
    }


def save_pretrained(policy, path: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``policy`` (or ``state_dict`` in its architecture, e.g. EMA weights) as a checkpoint directory."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = policy.state_dict() if state_dict is None else state_dict
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path / WEIGHTS))
    (path / CONFIG).write_text(json.dumps(policy_metadata(policy), indent=2) + "\n")
    return path


def read_metadata(path: str | Path) -> dict:
    """Read and sanity-check a checkpoint's ``config.json`` (one-line errors)."""
    path = Path(path)
    config_path = path / CONFIG
    if not path.is_dir():
        raise ManipError(f"{path}: no such checkpoint directory")
    if not config_path.is_file() or not (path / WEIGHTS).is_file():
        raise ManipError(f"{path}: not a checkpoint (needs {CONFIG} and {WEIGHTS})")
    try:
        meta = json.loads(config_path.read_text())
    except json.JSONDecodeError as exc:
        raise ManipError(f"{config_path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ManipError(f"{config_path}: not a manip policy config (format should be '{FORMAT}')")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ManipError(f"{config_path}: format_version {meta['format_version']} is newer than this manip")
    return meta


def build_policy(meta: dict, where: str = "checkpoint"):
    """Build an (untrained) policy from checkpoint metadata."""
    from manip.data.normalizer import Normalizer
    from manip.policies.config import POLICY_TYPES, parse_policy_config

    config = parse_policy_config(meta["policy"], where=f"{where}: policy")
    entry = POLICY_TYPES.get(config.type)
    policy = entry.cls(
        config,
        Spec.from_json(meta["obs_spec"]),
        Spec.from_json(meta["action_spec"]),
        Normalizer.from_json(meta["normalizer"]),
    )
    set_action_semantics(policy, meta.get("control_rate"), meta.get("action"))
    return policy


def load_policy(path: str | Path, device: str | torch.device = "cpu", meta: dict | None = None):
    """Load a checkpoint directory into a policy in eval mode on ``device`` (``meta``: its already read config)."""
    path = Path(path)
    meta = read_metadata(path) if meta is None else meta
    policy = build_policy(meta, where=str(path))
    state = load_file(str(path / WEIGHTS))
    try:
        missing, unexpected = policy.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise ManipError(f"{path / WEIGHTS}: weights do not match the config ({detail})") from None
    if missing or unexpected:
        raise ManipError(
            f"{path / WEIGHTS}: weights do not match the config"
            + (f"; missing {', '.join(missing[:3])}" if missing else "")
            + (f"; unexpected {', '.join(unexpected[:3])}" if unexpected else "")
        )
    return policy.to(device).eval()


def _first_difference(a, b, where: str) -> str | None:
    """The dotted path of the first value that differs between two JSON-like trees, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{where}.{key}")
            if found:
                return found
        return None
    return None if a == b else f"{where} ({a!r} here, {b!r} in the checkpoint)"


def _split_training_target(policy: dict, where: str) -> tuple[dict, dict]:
    """``policy`` without its head's training-target settings, and those settings (defaults filled in).

    A head config names them in ``FINETUNE_MAY_CHANGE``: settings that change what the network is trained to output
    or how it is sampled, never the shapes or meaning of its inputs, so a fine-tune may switch them.
    """
    from manip.policies.heads.base import HEADS

    head = dict(policy.get("head") or {})
    name = head.pop("name", None)
    if name is None:
        return policy, {}
    parsed = HEADS.parse_params(name, head, where=f"{where}: policy.head")
    may_change = getattr(type(parsed), "FINETUNE_MAY_CHANGE", frozenset())
    settings = parsed.model_dump(mode="json")
    kept = {key: value for key, value in settings.items() if key not in may_change}
    target = {key: value for key, value in settings.items() if key in may_change}
    return dict(policy, head={"name": name, **kept}), target


def load_for_finetuning(path: str | Path, like) -> torch.nn.Module:
    """Load checkpoint ``path`` as the starting point of a run whose freshly built policy is ``like``.

    The policy config and the observation/action specs must match exactly (else a one-line error naming the first
    difference), except the head's training-target settings (``FINETUNE_MAY_CHANGE`` of its config, e.g. the flow
    head's ``prediction``): a fine-tune may switch those, and each switch is printed. The checkpoint's normalizer is
    kept: its weights were learned in that normalized space.
    """
    from manip.policies.config import parse_policy_config

    path = Path(path)
    meta = read_metadata(path)
    wanted = policy_metadata(like)
    saved = dict(
        meta, policy=parse_policy_config(meta["policy"], where=f"{path}: policy").model_dump(mode="json")
    )
    wanted["policy"], wanted_target = _split_training_target(wanted["policy"], "this run")
    saved["policy"], saved_target = _split_training_target(saved["policy"], str(path))
    for key in ("policy", "obs_spec", "action_spec"):
        found = _first_difference(wanted[key], saved.get(key), key)
        if found:
            raise ManipError(f"init_from {path}: the checkpoint does not match this run's {found}")
    for key, value in wanted_target.items():
        if saved_target.get(key) != value:
            print(
                f"init_from: policy.head.{key} changes from {saved_target.get(key)!r} to {value!r}",
                flush=True,
            )
    return load_policy(path, meta=meta).train()
