"""Scripted expert for NutAssemblySquare: grasp the nut by its handle, carry it over the square peg with its
faces lined up with the peg's, slide it down the peg and let go."""

from __future__ import annotations

import numpy as np

from manip.sim.experts.base import CLOSE, OPEN, Phase, WaypointExpert, up, wrap_angle, yaw_of


class NutAssemblySquareExpert(WaypointExpert):
    #: heading of the gripper relative to the handle when grasping (fingers close across the handle)
    handle_heading = np.pi / 2

    def plan(self, env):
        raw = env.raw
        nut = raw.nuts[0]
        nut_id, handle_site = raw.obj_body_id[nut.name], nut.important_sites["handle"]
        peg = self.sim.body_pos(raw.peg1_body_id)
        table_z = float(raw.table_offset[2])
        hover = 0.07 + self.rng.uniform(0.0, 0.03)
        carry_z = peg[2] + 0.16 + self.rng.uniform(0.0, 0.03)
        grip_offset = np.array([*self.jitter(0.003, 2), -0.002])
        drop_nut_z = table_z + 0.02

        def nut_yaw():
            return yaw_of(self.sim.body_mat(nut_id))

        def handle():
            return self.sim.site_pos(handle_site)

        def handle_grip(_env):
            return handle() + grip_offset

        def handle_yaw(_env):
            return self.grasp_yaw(nut_yaw() + self.handle_heading, np.pi)

        def peg_yaw_choice(_env):
            # A square nut fits the square peg every quarter turn. Of the fitting headings, take the smallest
            # turn that keeps the handle (where the hand is) from pointing away from the robot: with the handle
            # beyond the peg the hand would have to reach past the peg, at the edge of the Panda's workspace.
            gripper = yaw_of(self.sim.eef_mat())
            nut_now = nut_yaw()
            turn = wrap_angle(-nut_now, np.pi / 2)
            options = [turn + k * np.pi / 2 for k in (-1, 0, 1)]
            return gripper + min(options, key=lambda t: (np.cos(nut_now + t) > 0.3, abs(t)))

        peg_yaw = self.once(peg_yaw_choice)

        def nut_over_peg(nut_z):
            def target(_env):
                eef = self.sim.eef_pos()
                nut_pos = self.sim.body_pos(nut_id)
                goal = np.array([peg[0], peg[1], nut_z if nut_z is not None else nut_pos[2]])
                aim = eef + goal - nut_pos
                if nut_z is None:
                    aim[2] = carry_z
                return aim

            return target

        return [
            Phase("above", lambda _e: handle() + up(hover), OPEN, yaw=handle_yaw, tol=0.012),
            Phase(
                "align", lambda _e: handle_grip(_e) + up(0.03), OPEN, yaw=handle_yaw, tol=0.004, max_steps=40
            ),
            Phase("descend", handle_grip, OPEN, yaw=handle_yaw, tol=0.007, speed=0.6, stall_ends=True),
            Phase("grasp", handle_grip, CLOSE, min_steps=10, max_steps=10, tol=1.0),
            Phase(
                "lift",
                lambda _e: np.array([*self.sim.eef_pos()[:2], carry_z]),
                CLOSE,
                tol=0.02,
                verify=lambda _e: self.sim.body_pos(nut_id)[2] > table_z + 0.12,
                retry_from="above",
            ),
            Phase("carry", nut_over_peg(None), CLOSE, yaw=peg_yaw, tol=0.006, min_steps=5, max_steps=150),
            Phase(
                "lower",
                nut_over_peg(drop_nut_z),
                CLOSE,
                yaw=peg_yaw,
                speed=0.5,
                max_steps=80,
                done=lambda _e: self.sim.body_pos(nut_id)[2] < table_z + 0.04,
            ),
            Phase("release", lambda _e: self.sim.eef_pos(), OPEN, min_steps=8, max_steps=8, tol=1.0),
            Phase("retreat", lambda _e: np.array([*peg[:2], carry_z]), OPEN, max_steps=400),
        ]
