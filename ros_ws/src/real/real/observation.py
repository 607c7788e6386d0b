"""Latest camera frames + joint state → the observation for one control tick (numpy only; no rclpy).

The node hands every decoded message to :class:`ObservationAssembler` with its time; at each tick
:meth:`ObservationAssembler.assemble` either returns the observation (each key shaped as the policy's spec says)
or a one-line fault saying why there is none (a topic never heard from, a frame older than the tolerance, a
wrong encoding, joint names that do not match, NaN). The node keeps the history (:class:`manip.real.client.loop.ObsHistory`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manip.core.specs import FeatureSpec, Spec
from manip.real.cameras.encodings import resize_nearest


@dataclass
class Sample:
    """The newest value from one topic: the array (or the reason it was refused) and its time in seconds."""

    value: np.ndarray | None
    stamp: float
    error: str = ""


class ObservationAssembler:
    """Keeps the newest sample per input and builds tick observations that match the policy's needs."""

    def __init__(
        self,
        camera_topics: dict[str, str],
        joint_state_topic: str,
        joint_names: list[str],
        joint_state_key: str,
        max_frame_age_s: float,
        max_state_age_s: float,
    ):
        self.camera_topics = dict(camera_topics)  # obs key → topic
        self.joint_state_topic = joint_state_topic
        self.joint_names = list(joint_names)
        self.joint_state_key = joint_state_key
        self.max_frame_age_s = float(max_frame_age_s)
        self.max_state_age_s = float(max_state_age_s)
        self.samples: dict[str, Sample] = {}
        self.needs: dict[str, FeatureSpec] = {}

    def set_needs(self, obs_spec: Spec) -> list[str]:
        """Adopt the policy's observation spec; returns one line per key no input feeds (empty when all fed)."""
        self.needs = {f.name: f for f in obs_spec.features if f.kind != "text"}
        fed = set(self.camera_topics) | {self.joint_state_key}
        return [
            f"the policy needs observation '{key}' but no topic feeds it (camera_keys / joint_state_key)"
            for key in self.needs
            if key not in fed
        ]

    # -- inputs -----------------------------------------------------------------------------------------------
    def put_frame(self, key: str, image: np.ndarray | None, stamp: float, error: str = "") -> None:
        """Store the newest frame for observation ``key`` (or the reason the last frame was refused)."""
        self.samples[key] = Sample(image, float(stamp), error)

    def put_joint_state(self, names: list[str], positions, stamp: float) -> None:
        """Store the newest joint positions, reordered to ``joint_names`` (a mismatch is kept as an error)."""
        names = list(names)
        missing = [n for n in self.joint_names if n not in names]
        if missing:
            error = f"{self.joint_state_topic}: joint(s) {missing} missing; the message has {names}"
            self.samples[self.joint_state_key] = Sample(None, float(stamp), error)
            return
        if len(positions) != len(names):
            error = f"{self.joint_state_topic}: {len(names)} names but {len(positions)} positions"
            self.samples[self.joint_state_key] = Sample(None, float(stamp), error)
            return
        index = {n: i for i, n in enumerate(names)}
        values = np.array([positions[index[n]] for n in self.joint_names], dtype=np.float64)
        self.samples[self.joint_state_key] = Sample(values, float(stamp))

    @property
    def joint_positions(self) -> np.ndarray | None:
        """The newest joint positions in ``joint_names`` order (None until one valid message)."""
        sample = self.samples.get(self.joint_state_key)
        return None if sample is None else sample.value

    # -- per tick ---------------------------------------------------------------------------------------------
    def _topic(self, key: str) -> str:
        return self.camera_topics.get(key, self.joint_state_topic)

    def fresh(self, key: str, t_now: float) -> tuple[np.ndarray | None, str]:
        """The newest value for ``key`` if it is usable at ``t_now``; else None and the fault (one line)."""
        sample = self.samples.get(key)
        topic = self._topic(key)
        if sample is None:
            return None, f"no message on {topic} yet"
        if sample.error:
            return None, sample.error if sample.error.startswith(topic) else f"{topic}: {sample.error}"
        limit = self.max_state_age_s if key == self.joint_state_key else self.max_frame_age_s
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
            value, fault = self._shaped(key, value, need, self._topic(key))
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
