"""Scripted expert for TwoArmTransport (two Pandas facing each other across two tables).

robot0 lifts the lid off the start bin and sets it down beside the bin, grasps the hammer by the half of its
handle that will face it, turns the handle to point across the gap and holds it out over the middle. Meanwhile
robot1 moves the red cube from the target bin into the trash bin, then takes the hammer by the other half of
the handle; once robot1 holds it, robot0 lets go and backs off, and robot1 lowers the hammer into the target
bin. Each arm runs its own waypoint script; the hand-over phases wait on the other arm.
"""

from __future__ import annotations

import numpy as np

from manip.sim.experts.base import CLOSE, OPEN, Phase, WaypointExpert, up, wrap_angle, yaw_of

HANDOVER_Z = 1.25  # height of the hammer's handle during the hand-over
HANDOVER_GRIP = 0.055  # each hand holds the handle this far from its centre (metres)
CLEAR = 0.25  # height above the tables from which a hand goes straight down into a bin (walls are 15 cm)


def over(point: np.ndarray, z: float) -> np.ndarray:
    """``point`` moved to height ``z``."""
    return np.array([point[0], point[1], z])


class _Arm(WaypointExpert):
    """One arm's waypoint script: the phases come from the pair's planner."""

    def __init__(self, robot: int, planner):
        super().__init__()
        self.robot = robot
        self.planner = planner

    def plan(self, env):
        return self.planner(self, env)


class TwoArmTransportExpert:
    """Two waypoint scripts, one per robot; ``act`` concatenates their 7-D actions (robot0 first)."""

    def __init__(self):
        self.arms = (_Arm(0, self._plan_robot0), _Arm(1, self._plan_robot1))
        self.turn = 0.0
        self.robot1_end = 1.0

    def reset(self, env, seed: int | None = None) -> None:
        seeds = np.random.SeedSequence(seed).spawn(2) if seed is not None else (None, None)
        for arm, arm_seed in zip(self.arms, seeds, strict=True):
            arm.reset(env, None if arm_seed is None else int(arm_seed.generate_state(1)[0]))

    def act(self, env, obs=None) -> np.ndarray:
        return np.concatenate([arm.act(env, obs) for arm in self.arms])

    # -- shared geometry -------------------------------------------------------------------------------
    def _hammer(self, arm: WaypointExpert, env):
        raw = env.raw
        body = raw.transport.payload_body_id

        def axis() -> np.ndarray:
            """Unit vector along the handle (the payload's local z)."""
            return arm.sim.body_mat(body)[:, 2]

        def centre() -> np.ndarray:
            return arm.sim.body_pos(body)

        return body, axis, centre

    # -- robot0: lid, hammer, hold out -----------------------------------------------------------------
    def _plan_robot0(self, arm: _Arm, env):
        raw = env.raw
        transport = raw.transport
        _body, axis, centre = self._hammer(arm, env)
        table_z = float(raw.table_offsets[0, 2])
        lid_drop = np.array([-0.2 + arm.rng.uniform(-0.02, 0.02), raw.table_offsets[0, 1], table_z + 0.07])
        carry_z = table_z + 0.25
        grip_dz = -0.005

        def lid_handle():
            return np.array(transport.lid_handle_pos)

        def lid_yaw(_env):
            # the fingers (the hand's x axis) close across the handle's 2 cm thickness (the lid's x axis)
            return arm.grasp_yaw(yaw_of(arm.sim.geom_mat("transport_start_bin_lid_handle")), np.pi)

        lid_yaw = arm.once(lid_yaw)

        def handle_heading() -> float:
            u = axis()
            return float(np.arctan2(u[1], u[0]))

        def plan_turn() -> tuple[float, float]:
            """The hand turn that lines the handle up with +-y, and which end (+-1 along the axis) faces robot1."""
            heading = handle_heading()
            turn = wrap_angle(np.pi / 2 - heading, np.pi)
            facing = np.cos(heading + turn - np.pi / 2)  # +1: the handle's +axis end points to +y (robot1)
            return turn, float(np.sign(facing) or 1.0)

        def grasp_point(_env):
            _turn, facing = plan_turn()
            return centre() - facing * HANDOVER_GRIP * axis() + up(grip_dz)

        def hammer_yaw(_env):
            return arm.grasp_yaw(handle_heading() + np.pi / 2, np.pi)

        hammer_yaw = arm.once(hammer_yaw)

        def offer_yaw_choice(_env):
            turn, facing = plan_turn()
            self.robot1_end = facing
            return yaw_of(arm.sim.eef_mat()) + turn

        offer_yaw = arm.once(offer_yaw_choice)

        def offer(_env):
            # the handle centre over the gap at HANDOVER_Z; robot0's hand sits HANDOVER_GRIP towards itself
            return np.array([0.0, -HANDOVER_GRIP, HANDOVER_Z])

        other = self.arms[1]
        return [
            Phase("lid_above", lambda _e: lid_handle() + up(0.08), OPEN, yaw=lid_yaw, tol=0.015),
            Phase(
                "lid_descend", lambda _e: lid_handle() + up(-0.005), OPEN, yaw=lid_yaw, tol=0.006, speed=0.6
            ),
            Phase(
                "lid_grasp", lambda _e: lid_handle() + up(-0.005), CLOSE, min_steps=10, max_steps=10, tol=1.0
            ),
            Phase("lid_lift", lambda _e: np.array([*lid_handle()[:2], carry_z]), CLOSE, tol=0.04),
            Phase("lid_carry", lambda _e: np.array([*lid_drop[:2], table_z + 0.25]), CLOSE, tol=0.03),
            Phase("lid_lower", lambda _e: lid_drop, CLOSE, tol=0.02, speed=0.7, stall_ends=True),
            Phase("lid_release", lambda _e: arm.sim.eef_pos(), OPEN, min_steps=6, max_steps=6, tol=1.0),
            Phase("lid_retreat", lambda _e: lid_drop + up(0.12), OPEN, tol=0.03),
            Phase(
                "above", lambda _e: over(grasp_point(_e), table_z + CLEAR), OPEN, yaw=hammer_yaw, tol=0.012
            ),
            Phase("descend", grasp_point, OPEN, yaw=hammer_yaw, tol=0.007, speed=0.6, stall_ends=True),
            Phase("grasp", grasp_point, CLOSE, min_steps=10, max_steps=10, tol=1.0),
            Phase(
                "lift",
                lambda _e: np.array([*arm.sim.eef_pos()[:2], carry_z]),
                CLOSE,
                tol=0.03,
                verify=lambda _e: centre()[2] > table_z + 0.12,
                retry_from="above",
            ),
            Phase("offer", offer, CLOSE, yaw=offer_yaw, tol=0.01, max_steps=200),
            Phase(
                "hold",
                offer,
                CLOSE,
                yaw=offer_yaw,
                tol=1.0,
                max_steps=300,
                done=lambda _e: other.phase == "wait_release",
            ),
            Phase("give", offer, OPEN, min_steps=8, max_steps=8, tol=1.0),
            Phase("back", lambda _e: np.array([0.0, -0.3, HANDOVER_Z + 0.05]), OPEN, max_steps=400),
        ]

    # -- robot1: trash, take the hammer, place it ------------------------------------------------------
    def _plan_robot1(self, arm: _Arm, env):
        raw = env.raw
        transport = raw.transport
        _body, axis, centre = self._hammer(arm, env)
        table_z = float(raw.table_offsets[1, 2])
        trash_id = transport.trash_body_id
        trash_drop = np.array([*transport.trash_bin_pos[:2], table_z + 0.2]) + np.array(
            [*arm.jitter(0.03, 2), 0.0]
        )
        target = np.array(transport.target_bin_pos)
        place = np.array([target[0], target[1], table_z + 0.1])
        carry_z = table_z + 0.3

        def trash():
            return arm.sim.body_pos(trash_id)

        trash_yaw = arm.once(lambda _e: arm.grasp_yaw(yaw_of(arm.sim.body_mat(trash_id)), np.pi / 2))
        take_yaw = arm.once(lambda _e: arm.grasp_yaw(float(np.arctan2(*axis()[1::-1])) + np.pi / 2, np.pi))

        def take_point(_env):
            return centre() + self.robot1_end * HANDOVER_GRIP * axis() + up(-0.005)

        other = self.arms[0]

        def hammer_offered(_env) -> bool:
            return other.phase == "hold"

        return [
            Phase("trash_above", lambda _e: over(trash(), table_z + CLEAR), OPEN, yaw=trash_yaw, tol=0.012),
            Phase(
                "trash_descend",
                lambda _e: trash() + up(-0.005),
                OPEN,
                yaw=trash_yaw,
                tol=0.006,
                speed=0.6,
                stall_ends=True,
            ),
            Phase("trash_grasp", lambda _e: trash() + up(-0.005), CLOSE, min_steps=10, max_steps=10, tol=1.0),
            Phase(
                "trash_lift",
                lambda _e: np.array([*trash()[:2], carry_z]),
                CLOSE,
                tol=0.03,
                verify=lambda _e: trash()[2] > table_z + 0.1,
                retry_from="trash_above",
            ),
            Phase("trash_carry", lambda _e: trash_drop, CLOSE, tol=0.02),
            Phase("trash_release", lambda _e: trash_drop, OPEN, min_steps=8, max_steps=8, tol=1.0),
            Phase(
                "wait",
                lambda _e: np.array([0.0, 0.15, HANDOVER_Z + 0.08]),
                OPEN,
                tol=1.0,
                max_steps=500,
                done=hammer_offered,
            ),
            Phase("take_above", lambda _e: take_point(_e) + up(0.06), OPEN, yaw=take_yaw, tol=0.01),
            Phase("take_descend", take_point, OPEN, yaw=take_yaw, tol=0.006, speed=0.5, stall_ends=True),
            Phase("take", take_point, CLOSE, min_steps=12, max_steps=12, tol=1.0),
            Phase(
                "wait_release",
                take_point,
                CLOSE,
                tol=1.0,
                max_steps=30,
                done=lambda _e: other.phase == "back",
            ),
            # back towards robot1's base first: the hand-over pose is near the edge of its reach
            Phase("pull", lambda _e: np.array([0.0, 0.3, HANDOVER_Z]), CLOSE, tol=0.04),
            Phase("carry", lambda _e: np.array([*place[:2], carry_z]), CLOSE, tol=0.03),
            Phase("lower", lambda _e: place, CLOSE, tol=0.015, speed=0.6, stall_ends=True),
            Phase("release", lambda _e: arm.sim.eef_pos(), OPEN, min_steps=8, max_steps=8, tol=1.0),
            Phase("retreat", lambda _e: place + up(0.15), OPEN, max_steps=400),
        ]
