"""Latest sensor messages → the observation for one control tick (numpy only; no rclpy).

The node hands every decoded message to :class:`ObservationAssembler` with its time: frames per observation key,
joint states, poses and arrays per topic (one message may feed several keys, e.g. ``/joint_states`` feeds the
arm joints and the gripper fingers). At each tick :meth:`ObservationAssembler.assemble` either returns the
observation (each key shaped as the policy's spec says) or a one-line fault saying why there is none (a topic
never heard from, a message older than its limit, a wrong encoding, joint names that do not match, NaN). The
node keeps the history (:class:`manip.real.client.loop.ObsHistory`).

Which topic and field feeds which key is an observation map (:mod:`real.observation_map`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manip.core.specs import FeatureSpec, Spec
from manip.real.cameras.encodings import resize_nearest
from real.observation_map import ObservationSource


@dataclass
class Sample:
    """The newest value from one topic: the array (or the reason it was refused) and its time in seconds."""

    value: np.ndarray | None
    stamp: float
    error: str = ""
    frame_id: str = ""


class ObservationAssembler:
    """Keeps the newest sample per observation key and builds tick observations that match the policy's needs.

    ``max_frame_age_s`` / ``max_state_age_s``: how old an image / any other input may be (a map entry's own
    ``max_age_s`` wins).
    """

    def __init__(self, sources: dict[str, ObservationSource], max_frame_age_s: float, max_state_age_s: float):
        self.sources = dict(sources)
        self.max_frame_age_s = float(max_frame_age_s)
        self.max_state_age_s = float(max_state_age_s)
        self.samples: dict[str, Sample] = {}
        self.joint_states: dict[str, tuple[dict[str, float], float]] = {}  # topic → ({name: position}, stamp)
        self.poses: dict[str, Sample] = {}  # topic → the full pose (x, y, z, qx, qy, qz, qw)
        self.needs: dict[str, FeatureSpec] = {}
        self._by_topic: dict[str, list[ObservationSource]] = {}
        for source in self.sources.values():
            self._by_topic.setdefault(source.topic, []).append(source)

    def topics(self) -> dict[str, list[ObservationSource]]:
        """``{topic: [sources it feeds]}``: one subscription per topic."""
        return {topic: list(sources) for topic, sources in self._by_topic.items()}

    def set_needs(self, obs_spec: Spec) -> list[str]:
        """Adopt the policy's observation spec; returns one line per key no input can feed (empty when all fed)."""
        self.needs = {f.name: f for f in obs_spec.features if f.kind != "text"}
        problems = []
        for key, need in self.needs.items():
            source = self.sources.get(key)
            if source is None:
                problems.append(
                    f"the policy needs observation '{key}' but no topic feeds it "
                    "(add it to observation_map_file, or camera_keys / joint_state_key)"
                )
            elif source.is_frame != (need.kind in ("rgb", "depth")):
                problems.append(f"'{key}' is {need.kind} for the policy but type '{source.type}' in the map")
        return problems

    def limit(self, key: str) -> float:
        """How old the input for ``key`` may be (seconds)."""
        source = self.sources[key]
        if source.max_age_s is not None:
            return source.max_age_s
        return self.max_frame_age_s if source.is_frame else self.max_state_age_s

    # -- inputs -----------------------------------------------------------------------------------------------
    def put_frame(self, key: str, image: np.ndarray | None, stamp: float, error: str = "") -> None:
        """Store the newest frame for observation ``key`` (or the reason the last frame was refused)."""
        self.samples[key] = Sample(image, float(stamp), error)

    def put_joint_state(self, topic: str, names, fields: dict[str, list], stamp: float) -> None:
        """Store a JointState: every key the topic feeds gets its joints' ``field`` values, in map order."""
        names = list(names)
        index = {n: i for i, n in enumerate(names)}
        positions = fields.get("position") or []
        if len(positions) == len(names):
            self.joint_states[topic] = ({n: float(positions[i]) for n, i in index.items()}, float(stamp))
        for source in self._by_topic.get(topic, []):
            values = list(fields.get(source.field) or [])
            missing = [n for n in source.joints if n not in index]
            if missing:
                error = f"{topic}: joint(s) {missing} missing; the message has {names}"
            elif len(values) != len(names):
                error = f"{topic}: {len(names)} names but {len(values)} {source.field} values"
            else:
                error = ""
            value = None if error else np.array([values[index[n]] for n in source.joints], np.float64)
            self.samples[source.key] = Sample(value, float(stamp), error)

    def put_pose(self, topic: str, position, orientation, frame_id: str, stamp: float) -> None:
        """Store a pose (position x, y, z; orientation quaternion x, y, z, w) for every key ``topic`` feeds."""
        pose = np.array([*position, *orientation], np.float64)
        self.poses[topic] = Sample(pose, float(stamp), "", frame_id)
        parts = {"position": pose[:3], "orientation": pose[3:], "pose": pose}
        for source in self._by_topic.get(topic, []):
            self.samples[source.key] = Sample(parts[source.field].copy(), float(stamp), "", frame_id)

    def put_array(self, topic: str, data, stamp: float) -> None:
        """Store a Float64MultiArray's data for every key ``topic`` feeds."""
        for source in self._by_topic.get(topic, []):
            self.samples[source.key] = Sample(np.asarray(data, np.float64), float(stamp))

    # -- the robot's current state (for delta actions) --------------------------------------------------------
    def current_pose(self, t_now: float) -> tuple[Sample | None, str]:
        """The newest end-effector pose (from the map's one ``pose`` topic) if fresh; else None and the fault."""
        topics = sorted({s.topic for s in self.sources.values() if s.type == "pose"})
        if len(topics) != 1:
            return None, f"delta actions need exactly one pose topic in the observation map, found {topics}"
        sample = self.poses.get(topics[0])
        if sample is None:
            return None, f"no message on {topics[0]} yet"
        age = t_now - sample.stamp
        if age > self.max_state_age_s:
            return (
                None,
                f"stale {topics[0]}: newest message is {age:.2f} s old (> {self.max_state_age_s:.2f} s)",
            )
        return sample, ""

    def current_joints(self, names: list[str], t_now: float) -> tuple[np.ndarray | None, str]:
        """The newest positions of ``names`` from any joint-state topic that has them all, if fresh."""
        for topic, (positions, stamp) in self.joint_states.items():
            if all(n in positions for n in names):
                age = t_now - stamp
                if age > self.max_state_age_s:
                    return (
                        None,
                        f"stale {topic}: newest message is {age:.2f} s old (> {self.max_state_age_s:.2f} s)",
                    )
                return np.array([positions[n] for n in names]), ""
        return None, f"no joint state with joints {names} yet"

    # -- per tick ---------------------------------------------------------------------------------------------
    def fresh(self, key: str, t_now: float) -> tuple[np.ndarray | None, str]:
        """The newest value for ``key`` if it is usable at ``t_now``; else None and the fault (one line)."""
        sample = self.samples.get(key)
        topic = self.sources[key].topic
        if sample is None:
            return None, f"no message on {topic} yet"
        if sample.error:
            return None, sample.error if sample.error.startswith(topic) else f"{topic}: {sample.error}"
        limit = self.limit(key)
        age = t_now - sample.stamp
        if age > limit:
            return None, f"stale {topic}: newest message is {age:.2f} s old (> {limit:.2f} s)"
        return sample.value, ""

    def assemble(self, t_now: float) -> tuple[dict[str, np.ndarray] | None, str]:
        """The observation for the tick at ``t_now`` and ``""``, or ``None`` and the fault (one line)."""
        obs = {}
        for key, need in self.needs.items():
            value, fault = self.fresh(key, t_now)
            if fault:
                return None, fault
            value, fault = self._shaped(key, value, need, self.sources[key].topic)
            if fault:
                return None, fault
            obs[key] = value
        return obs, ""

    def _shaped(self, key: str, value: np.ndarray, need: FeatureSpec, topic: str):
        if need.kind in ("rgb", "depth"):
            if len(need.shape) != 3 or value.ndim != 3 or value.shape[2] != need.shape[2]:
                return None, f"{topic}: frame shape {value.shape} cannot become '{key}' {need.shape}"
            value = resize_nearest(value, need.shape[0], need.shape[1])
            return value.astype(need.dtype, copy=False), ""
        value = np.asarray(value, dtype=need.dtype)
        if value.shape != need.shape:
            return None, f"{topic}: '{key}' has shape {value.shape}, the policy needs {need.shape}"
        if not np.isfinite(value).all():
            return None, f"{topic}: '{key}' contains NaN or inf"
        return value, ""
