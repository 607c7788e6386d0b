"""The inference server's messages: builders for each one and the check of an ``infer`` request.

Every message is a msgpack map with a ``"type"`` (see docs/PROTOCOL.md). Light: numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from manip.core.errors import ManipError
from manip.real.client.protocol import PROTOCOL_VERSION, ProtocolError
from manip.real.client.sources import SourceMetadata

REQUEST_KEYS = {
    "infer": ({"type", "id", "obs"}, {"t_obs", "instruction", "prefix", "steps"}),
    "ping": ({"type", "id"}, set()),
    "metadata": ({"type", "id"}, set()),
}
"""Per request type: (required keys, optional keys); any other key is refused."""
REQUEST_TYPES = tuple(REQUEST_KEYS)


@dataclass
class InferRequest:
    """A checked ``infer`` request: ``obs`` ``{key: (n_obs_steps, ...)}`` with the spec's dtypes."""

    id: Any
    obs: dict[str, np.ndarray]
    t_obs: float | None
    instruction: str | None
    prefix: np.ndarray | None
    steps: int | None

    def batch_key(self) -> tuple:
        """Requests with equal keys can share one forward pass."""
        prefix_len = None if self.prefix is None else len(self.prefix)
        return (prefix_len, self.instruction is not None, self.steps)


def metadata_message(meta: SourceMetadata, **server: Any) -> dict:
    """The first frame on every connection: protocol version, the policy's metadata, the server's limits."""
    return {"type": "metadata", "protocol": PROTOCOL_VERSION, **meta.to_json(), "server": dict(server)}


def error_message(request_id: Any, code: str, text: str) -> dict:
    """An error reply; ``code`` is one of bad_frame, bad_request, overloaded, internal (docs/PROTOCOL.md)."""
    return {"type": "error", "id": request_id, "code": code, "error": text}


def chunk_message(request_id: Any, t_obs: float | None, chunk: Any, timings: Mapping[str, float]) -> dict:
    """A reply to ``infer``: the chunk ``(horizon, action_dim)`` float32 and the server's per-stage timings.

    ``chunk`` is a float32 ndarray or its pre-encoded ``manip.real.client.protocol.encode_array`` ExtType.
    """
    return {
        "type": "chunk",
        "id": request_id,
        "t_obs": t_obs,
        "chunk": chunk,
        "timings": dict(timings),
    }


def check_keys(message: Mapping[str, Any], kind: str) -> None:
    """Raise :class:`ManipError` naming them unless ``message`` has exactly the keys a ``kind`` request allows."""
    required, optional = REQUEST_KEYS[kind]
    unknown = sorted(map(str, set(message) - required - optional))
    if unknown:
        allowed = ", ".join(sorted(required | optional))
        raise ManipError(f"unknown key(s) {', '.join(unknown)} for type '{kind}' (allowed: {allowed})")
    missing = sorted(required - set(message))
    if missing:
        raise ManipError(f"missing key(s) {', '.join(missing)} for type '{kind}'")


def parse_infer(message: Mapping[str, Any], meta: SourceMetadata) -> InferRequest:
    """Check an ``infer`` message against the policy's metadata; a problem raises :class:`ManipError` naming it."""
    check_keys(message, "infer")
    obs = message["obs"]
    if not isinstance(obs, dict):
        raise ManipError(f"'obs' must be a map of arrays, got {type(obs).__name__}")
    not_arrays = sorted(k for k, v in obs.items() if not isinstance(v, np.ndarray))
    if not_arrays:
        raise ManipError(f"observation key(s) {', '.join(map(str, not_arrays))} are not ndarrays")
    meta.obs_spec.check(obs, leading=1, where="obs", allow_extra=False)
    checked = {}
    for feature in meta.obs_spec.features:
        value = obs[feature.name]
        if value.shape[0] != meta.n_obs_steps:
            raise ManipError(
                f"obs: '{feature.name}' has {value.shape[0]} time steps, the policy needs n_obs_steps={meta.n_obs_steps}"
            )
        checked[feature.name] = value.astype(feature.dtype, copy=False)
    return InferRequest(
        id=message["id"],
        obs=checked,
        t_obs=_optional_time(message, "t_obs"),
        instruction=_parse_instruction(message.get("instruction"), meta),
        prefix=_parse_prefix(message.get("prefix"), meta),
        steps=_optional_steps(message),
    )


def _optional_time(message: Mapping, key: str) -> float | None:
    """A finite number of seconds (msgpack int or float; None when absent or nil)."""
    value = message.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ManipError(f"'{key}' must be a number, got {type(value).__name__}")
    seconds = float(value)  # msgpack integers are at most 64 bits: always in float's range
    if not np.isfinite(seconds):
        raise ManipError(f"'{key}' must be a finite number of seconds, got {value!r}")
    return seconds


def _parse_instruction(value: Any, meta: SourceMetadata) -> str | None:
    """The language instruction: required when the policy takes one (``takes_instruction``), refused otherwise."""
    if value is not None and not isinstance(value, str):
        raise ManipError(f"'instruction' must be a string, got {type(value).__name__}")
    if value is None and meta.takes_instruction:
        raise ManipError(
            f"the {meta.policy_type} policy needs an 'instruction' (metadata takes_instruction is true)"
        )
    if value is not None and not meta.takes_instruction:
        raise ManipError(
            f"the {meta.policy_type} policy takes no 'instruction' (metadata takes_instruction is false): "
            "leave the key out"
        )
    return value


def _optional_steps(message: Mapping) -> int | None:
    steps = message.get("steps")
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 1000:
        raise ManipError(f"'steps' must be an integer in 1..1000, got {steps!r}")
    return steps


def _parse_prefix(prefix: Any, meta: SourceMetadata) -> np.ndarray | None:
    if prefix is None:
        return None
    if not isinstance(prefix, np.ndarray):
        raise ManipError(f"'prefix' must be an ndarray, got {type(prefix).__name__}")
    action_dim = meta.action_dim
    if prefix.ndim != 2 or prefix.shape[1] != action_dim or not 0 < prefix.shape[0] < meta.horizon:
        raise ManipError(
            f"'prefix' has shape {list(prefix.shape)}, expected [P, {action_dim}] with 0 < P < horizon={meta.horizon}"
        )
    if prefix.dtype.kind != "f" or not np.isfinite(prefix).all():
        raise ManipError("'prefix' must be finite floats")
    return prefix.astype(np.float32)


def request_type(message: Mapping[str, Any]) -> str:
    """The ``type`` of a client message; a missing or unknown type raises :class:`ProtocolError`."""
    kind = message.get("type")
    if kind not in REQUEST_TYPES:
        raise ProtocolError(f"unknown message type {kind!r} (expected one of {', '.join(REQUEST_TYPES)})")
    return kind
