"""Scripted expert for Door: grasp the lever handle from the front, turn it down to free the latch, then pull
the door open along its arc around the hinge."""

from __future__ import annotations

import numpy as np

from manip.sim.experts.base import CLOSE, OPEN, Phase, WaypointExpert, rot_y, rot_z

# Gripper pitched forward to point at the door (-y); the fingers (along the hand's x axis) close vertically
# across the lever.
FACING_DOOR = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [-1.0, 0.0, 0.0]])


class DoorExpert(WaypointExpert):
    def plan(self, env):
        raw = env.raw
        latch_id = raw.object_body_ids["latch"]
        hinge_joint = raw.sim.model.joint_name2id(raw.door.joints[0])
        axis = self.sim.body_pos(latch_id)  # the lever turns about the door's normal through this point
        tip = self.sim.site_pos(raw.door.important_sites["handle"])
        grip = axis + (tip - axis) * (0.75 + self.rng.uniform(-0.05, 0.05))
        standoff = 0.10 + self.rng.uniform(0.0, 0.04)
        # turn the lever tip up (the wrist has room that way) far enough that the latch clears the frame
        # (the hand turns past the lever's stop; the lever lags in the fingers)
        turn = 1.65 + self.rng.uniform(0.0, 0.1)
        swing = 0.38
        hinge = np.array(raw.sim.data.xanchor[hinge_joint])
        state: dict[str, float] = {"turn": 0.0}

        def lever_point(angle):
            return axis + rot_y(angle) @ (grip - axis)

        def turning(_env):
            state["turn"] = min(turn, state["turn"] + 0.06)  # turn gradually, the hand follows the arc
            return lever_point(state["turn"])

        def door_angle():
            return float(raw.sim.data.qpos[raw.hinge_qpos_addr])

        def pulling(_env):
            goal = min(door_angle() + 0.1, swing)
            return hinge + rot_z(goal) @ (lever_point(turn) - hinge)

        def pull_orientation(_env):
            return rot_z(min(door_angle() + 0.1, swing)) @ rot_y(turn) @ FACING_DOOR

        return [
            Phase(
                "pitch", lambda _e: grip + np.array([0.0, standoff + 0.05, 0.05]), OPEN,
                orientation=lambda _e: FACING_DOOR, tol=0.03, min_steps=12, max_steps=40,
            ),
            Phase("approach", lambda _e: grip + np.array([0.0, standoff, 0.0]), OPEN, orientation=lambda _e: FACING_DOOR, tol=0.012),
            Phase("reach", lambda _e: grip, OPEN, orientation=lambda _e: FACING_DOOR, tol=0.008, speed=0.5, stall_ends=True),
            Phase("grasp", lambda _e: grip, CLOSE, orientation=lambda _e: FACING_DOOR, min_steps=8, max_steps=8, tol=1.0),
            Phase(
                "turn", turning, CLOSE, orientation=lambda _e: rot_y(state["turn"]) @ FACING_DOOR,
                tol=0.01, min_steps=10, max_steps=60,
                done=lambda _e: abs(float(raw.sim.data.qpos[raw.handle_qpos_addr])) > 1.35,
            ),
            Phase("pull", pulling, CLOSE, orientation=pull_orientation, speed=0.6, max_steps=400),
        ]  # fmt: skip
