"""Executor actions → ROS command messages (JointTrajectory, or PoseStamped + gripper Float64).

Action layouts (the policy's action spec must match the chosen ``command_interface``):
- ``joint_trajectory``: ``n_joints`` joint values (targets, or deltas added to the current positions),
  optionally one more element for the gripper.
- ``cartesian``: position (3) + axis-angle rotation (3), optionally one more for the gripper (the datasets'
  7-D layout); absolute targets or OSC deltas, turned into an absolute target by :mod:`real.semantics`.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped
from std_msgs.msg import Float32MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint


def layout_problem(interface: str, action_dim: int, n_joints: int) -> str:
    """'' when ``action_dim`` fits ``interface``; otherwise one line saying what would fit."""
    allowed = (n_joints, n_joints + 1) if interface == "joint_trajectory" else (6, 7)
    if action_dim in allowed:
        return ""
    what = f"{n_joints} joints" if interface == "joint_trajectory" else "position + axis-angle"
    return (
        f"the policy's actions have {action_dim} dimensions; command_interface '{interface}' with {what} "
        f"needs {allowed[0]} (or {allowed[1]} with a gripper)"
    )


def split_action(action: np.ndarray, interface: str, n_joints: int) -> tuple[np.ndarray, float | None]:
    """``(arm part, gripper value or None)``."""
    arm_dim = n_joints if interface == "joint_trajectory" else 6
    gripper = float(action[arm_dim]) if action.shape[0] > arm_dim else None
    return np.asarray(action[:arm_dim], dtype=np.float64), gripper


def joint_trajectory(joint_names: list[str], positions: np.ndarray, dt: float) -> JointTrajectory:
    """A one-point trajectory reaching ``positions`` one control period from now (stamp 0: start at once)."""
    msg = JointTrajectory()
    msg.joint_names = list(joint_names)
    point = JointTrajectoryPoint()
    point.positions = [float(p) for p in positions]
    point.time_from_start = _duration(dt)
    msg.points = [point]
    return msg


def stop_trajectory(joint_names: list[str]) -> JointTrajectory:
    """An empty trajectory: a ros2_control JointTrajectoryController stops and holds its current position."""
    msg = JointTrajectory()
    msg.joint_names = list(joint_names)
    return msg


def pose_stamped(position, quaternion, frame_id: str, stamp) -> PoseStamped:
    """A pose target: ``position`` (x, y, z) and ``quaternion`` (x, y, z, w) in ``frame_id``."""
    msg = PoseStamped()
    msg.header.frame_id = frame_id
    msg.header.stamp = stamp
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in position[:3])
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = (float(v) for v in quaternion)
    return msg


def chunk_array(chunk: np.ndarray) -> Float32MultiArray:
    """A chunk ``(horizon, action_dim)`` as a Float32MultiArray with labelled dimensions (for plotting)."""
    chunk = np.asarray(chunk, dtype=np.float32)
    msg = Float32MultiArray()
    msg.layout.dim = [
        MultiArrayDimension(label="horizon", size=chunk.shape[0], stride=chunk.size),
        MultiArrayDimension(label="action", size=chunk.shape[1], stride=chunk.shape[1]),
    ]
    msg.data = chunk.ravel().tolist()
    return msg


def _duration(seconds: float) -> Duration:
    whole = int(seconds)
    return Duration(sec=whole, nanosec=round((seconds - whole) * 1e9))
