"""Scripted expert for PickPlaceCan: grasp the can from above, carry it high, lower it into its bin, let go."""

from __future__ import annotations

import numpy as np

from manip.sim.experts.base import CLOSE, OPEN, Phase, WaypointExpert, up


class PickPlaceCanExpert(WaypointExpert):
    def plan(self, env):
        raw = env.raw
        can_id = raw.obj_body_id["Can"]
        # aim at the near half of the can's bin quarter: the far corner is at the edge of the Panda's reach
        bin_xy = np.array(raw.target_bin_placements[raw.object_to_id["can"]][:2])
        bin_xy = bin_xy + np.array([self.rng.uniform(-0.05, -0.02), self.rng.uniform(-0.04, 0.0)])
        bin_z = float(raw.bin2_pos[2])
        hover = 0.08 + self.rng.uniform(0.0, 0.04)
        carry_z = bin_z + 0.22 + self.rng.uniform(0.0, 0.05)
        grasp_offset = np.array([*self.jitter(0.003, 2), 0.005])

        def can():
            return self.sim.body_pos(can_id)

        start_z = float(can()[2])

        return [
            Phase("above", lambda _e: can() + up(hover), OPEN, tol=0.015),
            Phase("descend", lambda _e: can() + grasp_offset, OPEN, tol=0.008, speed=0.6),
            Phase("grasp", lambda _e: can() + grasp_offset, CLOSE, min_steps=10, max_steps=10, tol=1.0),
            Phase(
                "lift",
                lambda _e: np.array([*can()[:2], carry_z]),
                CLOSE,
                tol=0.02,
                verify=lambda _e: can()[2] > start_z + 0.08,
                retry_from="above",
            ),
            Phase("carry", lambda _e: np.array([*bin_xy, carry_z]), CLOSE, tol=0.02),
            Phase("lower", lambda _e: np.array([*bin_xy, bin_z + 0.16]), CLOSE, tol=0.015, speed=0.6),
            Phase(
                "release",
                lambda _e: np.array([*bin_xy, bin_z + 0.16]),
                OPEN,
                min_steps=8,
                max_steps=8,
                tol=1.0,
            ),
            Phase("retreat", lambda _e: np.array([*bin_xy, carry_z]), OPEN, max_steps=400),
        ]
