"""What a checkpoint's actions mean, checked against the node's command interface, and the arithmetic that turns
them into targets (numpy only; no rclpy).

A checkpoint records ``control_rate`` and ``action`` = {"space": ee_delta | ee_absolute | joint_position |
joint_delta, "frame", "position_scale", "rotation_scale", "rotation": "axis_angle", "gripper"} (docs/PROTOCOL.md,
metadata). ``cartesian`` commands take ee_delta (target = current pose ⊕ delta·scale, as robosuite's OSC_POSE
does) or ee_absolute; ``joint_trajectory`` takes joint_position or joint_delta (target = current + delta).
"""

from __future__ import annotations

import numpy as np

SPACES = ("ee_delta", "ee_absolute", "joint_position", "joint_delta")
ACCEPTS = {"cartesian": ("ee_delta", "ee_absolute"), "joint_trajectory": ("joint_position", "joint_delta")}
ASSUMED = {"cartesian": "ee_absolute", "joint_trajectory": "joint_position"}
"""The space assumed, with ``allow_action_mismatch: true``, for a checkpoint that does not say what its actions
mean (written before checkpoints recorded it)."""
LIMIT_MARGIN = 0.1
"""Default limits: the checkpoint's action range widened by this fraction of its span on each side."""


def action_space(interface: str, action: dict) -> tuple[str, str]:
    """``(space, problem)``: the space the node will execute and ``''``, or the space and why it does not fit."""
    space = (action or {}).get("space")
    if not space:
        return ASSUMED[interface], (
            "the checkpoint does not record what its actions mean (trained before checkpoints recorded it; "
            "retrain or fine-tune it with init_from to record them), or set allow_action_mismatch: true to "
            f"command them as {ASSUMED[interface]} targets"
        )
    if space not in ACCEPTS[interface]:
        return space, (
            f"the checkpoint's actions are '{space}' but command_interface '{interface}' takes "
            f"{' or '.join(ACCEPTS[interface])} (choose the matching command_interface, or set "
            "allow_action_mismatch: true to command them anyway)"
        )
    return space, ""


def rate_problem(node_rate: float, checkpoint_rate: float) -> str:
    """'' when ``node_rate`` is 0 (take the checkpoint's) or equal to it; otherwise one line."""
    if node_rate <= 0 or abs(node_rate - checkpoint_rate) < 1e-6:
        return ""
    return (
        f"control_rate_hz {node_rate:g} differs from the checkpoint's {checkpoint_rate:g} Hz (set control_rate_hz: 0 "
        "to take the checkpoint's rate, or allow_rate_mismatch: true to run at another rate anyway)"
    )


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a ⊗ b`` of quaternions ``(x, y, z, w)`` (rotation ``b`` first, then ``a``)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def axis_angle_to_quaternion(rotvec) -> np.ndarray:
    """Rotation vector (axis · angle) → quaternion ``(x, y, z, w)``."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-12:
        return np.array([0.0, 0.0, 0.0, 1.0])
    return np.concatenate([rotvec / angle * np.sin(angle / 2), [np.cos(angle / 2)]])


def delta_target(
    position, quaternion, delta, position_scale: float, rotation_scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Absolute target ``(position, quaternion x, y, z, w)`` of an OSC_POSE-style delta from the current pose.

    ``delta`` (6): position and axis-angle rotation in [-1, 1] (clipped, as robosuite's controller clips its
    input); target position = position + delta[:3]·position_scale; target orientation = the rotation
    delta[3:6]·rotation_scale pre-multiplied on the current orientation (robosuite's ``set_goal_orientation``).
    """
    delta = np.clip(np.asarray(delta, dtype=np.float64)[:6], -1.0, 1.0)
    target_position = np.asarray(position, dtype=np.float64) + delta[:3] * position_scale
    current = np.asarray(quaternion, dtype=np.float64)
    current = current / np.linalg.norm(current)
    target = quat_multiply(axis_angle_to_quaternion(delta[3:] * rotation_scale), current)
    return target_position, target / np.linalg.norm(target)


def default_limits(stats: dict, action_dim: int) -> tuple[list[float], list[float]] | None:
    """Per-dimension ``(low, high)`` from the checkpoint's action statistics (``min``, ``max``), widened by
    :data:`LIMIT_MARGIN` of the span on each side; None when the statistics are missing or malformed."""
    try:
        low = np.asarray(stats["min"], dtype=np.float64).reshape(-1)
        high = np.asarray(stats["max"], dtype=np.float64).reshape(-1)
    except (KeyError, TypeError, ValueError):
        return None
    if low.shape != (action_dim,) or high.shape != (action_dim,) or not np.isfinite([low, high]).all():
        return None
    margin = LIMIT_MARGIN * (high - low)
    return (low - margin).tolist(), (high + margin).tolist()
