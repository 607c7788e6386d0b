"""Scripted expert for Lift: reach above the cube, descend, grasp lined up with its faces, lift."""

from __future__ import annotations

import numpy as np

from manip.sim.experts.base import CLOSE, OPEN, Phase, WaypointExpert, up, yaw_of


class LiftExpert(WaypointExpert):
    def plan(self, env):
        cube_id = env.raw.cube_body_id
        hover = 0.08 + self.rng.uniform(0.0, 0.04)
        grasp_offset = np.array([*self.jitter(0.004, 2), -0.003])
        lift = 0.16 + self.rng.uniform(0.0, 0.06)

        def cube():
            return self.sim.body_pos(cube_id)

        def yaw(_env):
            return self.grasp_yaw(yaw_of(self.sim.body_mat(cube_id)), np.pi / 2)

        start = {}

        def lifted_target(_env):
            start.setdefault("xy", cube()[:2].copy())
            return np.array([*start["xy"], cube()[2] + lift])

        return [
            Phase("above", lambda _e: cube() + up(hover), OPEN, yaw=yaw, tol=0.015),
            Phase("descend", lambda _e: cube() + grasp_offset, OPEN, yaw=yaw, tol=0.008, speed=0.6),
            Phase("grasp", lambda _e: cube() + grasp_offset, CLOSE, min_steps=10, max_steps=10, tol=1.0),
            Phase("lift", lifted_target, CLOSE, tol=0.01, max_steps=80),
            Phase("hold", lifted_target, CLOSE, max_steps=400),
        ]
