"""The observation map: which topic and field feeds each observation key (one YAML file, read by policy_node
and recorder_node, so what was recorded is what is served). Plain Python; PyYAML (shipped with ROS 2) is
imported only to read a file.

    robot0_eef_pos:      {topic: /eef_pose, type: pose, field: position}
    robot0_gripper_qpos: {topic: /joint_states, type: joint_state, field: position,
                          joints: [robot0_gripper_finger_joint1, robot0_gripper_finger_joint2]}
    agentview_image:     {topic: /agentview/color/image_raw, type: image}

``type``: ``image`` (rgb8 Image, or CompressedImage with ``compressed: true``), ``depth`` (Image ``encoding``
16UC1 or 32FC1), ``joint_state`` (``field`` position|velocity|effort of ``joints``, in that order), ``pose``
(PoseStamped ``field`` position (x, y, z) | orientation (x, y, z, w) | pose (all 7)) or ``array``
(Float64MultiArray data). Any entry may set ``max_age_s`` (default: the node's limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TYPES = ("image", "depth", "joint_state", "pose", "array")
FIELDS = {
    "joint_state": ("position", "velocity", "effort"),
    "pose": ("position", "orientation", "pose"),
}
DEPTH_ENCODINGS = ("16UC1", "32FC1")
KEYS = ("topic", "type", "field", "joints", "compressed", "encoding", "max_age_s")


class MapError(ValueError):
    """An observation map the nodes cannot use (one line naming the file, the key and the fix)."""


@dataclass(frozen=True)
class ObservationSource:
    """Where one observation key comes from."""

    key: str
    topic: str
    type: str
    field: str = ""
    joints: tuple[str, ...] = ()
    compressed: bool = False
    encoding: str = ""
    """Expected Image encoding: rgb8 for ``image``; 16UC1 (mm) or 32FC1 (m) for ``depth``."""
    max_age_s: float | None = None

    @property
    def is_frame(self) -> bool:
        return self.type in ("image", "depth")


def parse_entry(key: str, raw, where: str) -> ObservationSource:
    """One map entry → :class:`ObservationSource` (``where`` names the file in errors)."""
    if not isinstance(raw, dict):
        raise MapError(f"{where}: '{key}' must be a mapping like {{topic: /t, type: pose, field: position}}")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise MapError(
            f"{where}: '{key}' has unknown setting(s) {', '.join(unknown)} (allowed: {', '.join(KEYS)})"
        )
    topic, kind = raw.get("topic"), raw.get("type")
    if not isinstance(topic, str) or not topic:
        raise MapError(f"{where}: '{key}' needs a topic")
    if kind not in TYPES:
        raise MapError(f"{where}: '{key}' has type {kind!r}; use one of {', '.join(TYPES)}")
    field = raw.get("field", "position" if kind in FIELDS else "")
    if kind in FIELDS and field not in FIELDS[kind]:
        raise MapError(f"{where}: '{key}' ({kind}) has field {field!r}; use one of {', '.join(FIELDS[kind])}")
    joints = raw.get("joints", [])
    if kind == "joint_state" and (
        not isinstance(joints, list) or not joints or not all(isinstance(j, str) for j in joints)
    ):
        raise MapError(f"{where}: '{key}' (joint_state) needs joints: [names, in observation order]")
    encoding = raw.get("encoding", {"image": "rgb8", "depth": "16UC1"}.get(kind, ""))
    if kind == "depth" and encoding not in DEPTH_ENCODINGS:
        raise MapError(f"{where}: '{key}' (depth) has encoding {encoding!r}; use 16UC1 or 32FC1")
    max_age = raw.get("max_age_s")
    if max_age is not None and (
        isinstance(max_age, bool) or not isinstance(max_age, int | float) or max_age <= 0
    ):
        raise MapError(f"{where}: '{key}' has max_age_s {max_age!r}; it must be a number of seconds > 0")
    return ObservationSource(
        key=key,
        topic=topic,
        type=kind,
        field=field if kind in FIELDS else "",
        joints=tuple(joints) if kind == "joint_state" else (),
        compressed=bool(raw.get("compressed", False)),
        encoding=encoding,
        max_age_s=None if max_age is None else float(max_age),
    )


def parse_map(raw, where: str = "observation map") -> dict[str, ObservationSource]:
    """A parsed map document ``{key: entry}`` → ``{key: ObservationSource}``; one topic keeps one type."""
    if not isinstance(raw, dict) or not raw:
        raise MapError(f"{where}: expected a mapping of observation key -> {{topic, type, ...}}")
    sources = {str(key): parse_entry(str(key), entry, where) for key, entry in raw.items()}
    types: dict[str, ObservationSource] = {}
    for source in sources.values():
        first = types.setdefault(source.topic, source)
        if (first.type, first.compressed, first.encoding) != (
            source.type,
            source.compressed,
            source.encoding,
        ):
            raise MapError(
                f"{where}: topic {source.topic} is '{first.type}' for '{first.key}' but '{source.type}' for "
                f"'{source.key}' (or differs in compressed/encoding); one topic carries one message type"
            )
    return sources


def read_observation_map(path: str | Path) -> dict[str, ObservationSource]:
    """Read the YAML map file at ``path`` (one-line :class:`MapError` on any problem)."""
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise MapError(f"observation_map_file {path}: {' '.join(str(exc).split())}") from None
    return parse_map(raw, f"observation_map_file {path}")


def sources_from_params(
    camera_keys, camera_topics, joint_state_topic: str, joint_names, joint_state_key: str, compressed=False
) -> dict[str, ObservationSource]:
    """The map the older parameters describe: one camera per key, joint positions as one low-dim key."""
    sources = {
        key: ObservationSource(key, topic, "image", compressed=compressed, encoding="rgb8")
        for key, topic in zip(camera_keys, camera_topics, strict=True)
    }
    sources[joint_state_key] = ObservationSource(
        joint_state_key, joint_state_topic, "joint_state", field="position", joints=tuple(joint_names)
    )
    return sources
