"""Scripted expert for Stack: grasp the red cube, carry it over the green cube, lower it on top, let go."""

from __future__ import annotations

import numpy as np

from manip.sim.experts.base import CLOSE, OPEN, Phase, WaypointExpert, up, yaw_of


class StackExpert(WaypointExpert):
    def plan(self, env):
        raw = env.raw
        top_id, base_id = raw.cubeA_body_id, raw.cubeB_body_id
        hover = 0.08 + self.rng.uniform(0.0, 0.04)
        carry = 0.10 + self.rng.uniform(0.0, 0.04)
        grasp_offset = np.array([*self.jitter(0.003, 2), -0.003])
        place_offset = np.array([*self.jitter(0.004, 2), 0.0])
        # cube half-sizes: 0.02 (red, held) and 0.025 (green); set the red one down 5 mm above the green top
        place_height = 0.025 + 0.02 + 0.005

        def top():
            return self.sim.body_pos(top_id)

        def base():
            return self.sim.body_pos(base_id)

        def grasp_yaw_choice(_env):
            # of the two headings that line up with the red cube's faces, take the one whose fingers (the hand's
            # x axis) open across the line to the green cube, so a finger never lands on it
            first = self.grasp_yaw(yaw_of(self.sim.body_mat(top_id)), np.pi / 2)
            towards = base() - top()
            bearing = np.arctan2(towards[1], towards[0])
            return min(
                (first, first + np.pi / 2, first - np.pi / 2),
                key=lambda y: (abs(np.cos(y - bearing)) > 0.5, abs(y - self.yaw_target)),
            )

        grasp_yaw = self.once(grasp_yaw_choice)

        # turn the held cube so its faces line up with the green one
        place_yaw = self.once(
            lambda _env: self.aligned_yaw(top_id, yaw_of(self.sim.body_mat(base_id)), np.pi / 2)
        )

        def over_base(height):
            return lambda _e: base() + place_offset + [0, 0, height]

        return [
            Phase("above", lambda _e: top() + up(hover), OPEN, yaw=grasp_yaw, tol=0.015),
            Phase(
                "descend",
                lambda _e: top() + grasp_offset,
                OPEN,
                yaw=grasp_yaw,
                tol=0.008,
                speed=0.6,
                stall_ends=True,
            ),
            Phase("grasp", lambda _e: top() + grasp_offset, CLOSE, min_steps=10, max_steps=10, tol=1.0),
            Phase(
                "lift",
                lambda _e: np.array([*top()[:2], base()[2] + carry]),
                CLOSE,
                tol=0.015,
                verify=lambda _e: top()[2] > base()[2] + 0.05,
                retry_from="above",
            ),
            Phase("carry", over_base(carry), CLOSE, yaw=place_yaw, tol=0.01),
            Phase("lower", over_base(place_height), CLOSE, yaw=place_yaw, tol=0.006, speed=0.5),
            Phase("release", over_base(place_height), OPEN, min_steps=8, max_steps=8, tol=1.0),
            Phase("retreat", over_base(carry + 0.05), OPEN, max_steps=400),
        ]
