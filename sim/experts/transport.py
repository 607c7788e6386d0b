"""Scripted expert for TwoArmTransport (two Pandas facing each other across two tables).

robot0 lifts the lid off the start bin and sets it down beside the bin, grasps the hammer by the light half of
its handle, lifts it straight up, turns the head to point across the gap and holds it out over the middle.
Meanwhile robot1 moves the red cube from the target bin into the trash bin, then takes the hammer by the half
next to the head (where its weight is); once robot1's fingers hold it, robot0 lets go, lifts its open hand off
and backs away, and robot1 lowers the hammer into the target bin. Hand turns are chosen to keep each wrist's
last joint off its stops, and hands go from bin to bin through points half a metre out from their arm's base
(the bins are nearer, and an arm whose hand passes close in front of its base folds its elbow to the stop and
twists its wrist away). Each arm runs its own waypoint script; the hand-over phases wait on the other arm.
"""

from __future__ import annotations

import numpy as np

from manip.sim.experts.base import CLOSE, OPEN, Phase, WaypointExpert, up, wrap_angle, yaw_of

HANDOVER_Z = 1.15  # height of the handle during the hand-over (about shoulder height: the longest reach)
HANDOVER_GRIP = 0.055  # each hand holds the handle this far from its centre (metres)
TAKE_SLACK = 0.02  # most robot1's grasp moves towards the head to keep clear of robot0's hand (metres)
OFFER_SLACK = 0.03  # most the hand-over pose moves to make up for a grasp off the planned spot (metres)
CLEAR = 0.25  # height above the tables from which a hand goes straight down into a bin (walls are 15 cm)
HELD_OPENING = 0.015  # closed fingers further apart than this hold something (about 0 when shut on nothing)
NEAR_BASE_SHIFT = 0.03  # most the grasp on the light half moves towards the centre (metres), see grasp_point
WRIST_LIMIT = 2.6  # most angle planned for the hand's last joint (the Panda's stops at +-2.90 rad)
# least distance in the floor plane from an arm's base at which its hand travels between bins (the bins' centres
# are about 0.41 m away): a hand that passes nearer at about shoulder height folds the elbow to its stop, and
# the wrist then swings off to one side and ends at its own stops
TRAVEL_REACH = 0.5
TRASH_DROP_OUT = (
    0.05  # the trash is dropped this far past the bin's centre, away from robot1's base (m, along y)
)


def over(point: np.ndarray, z: float) -> np.ndarray:
    """``point`` moved to height ``z``."""
    return np.array([point[0], point[1], z])


def wrist_angle(arm: WaypointExpert) -> float:
    """Angle of the arm's last joint, which turns a hand that points down (turning the hand's heading by
    ``+a`` turns this joint by about ``-a``)."""
    robot = arm.sim.raw.robots[arm.robot]
    return float(arm.sim.data.qpos[robot._ref_joint_pos_indexes[-1]])


def turns(first: float, period: float) -> np.ndarray:
    """The turns equal to ``first`` modulo ``period``, within a turn and a half either way."""
    base = wrap_angle(first, period)
    steps = np.arange(-3, 4)
    candidates = base + steps * period
    return candidates[np.abs(candidates) <= 1.5 * np.pi]


def base_of(arm: WaypointExpert) -> np.ndarray:
    """Position of the arm's base."""
    return arm.sim.body_pos(arm.sim.body_id(arm.sim.raw.robots[arm.robot].robot_model.root_body))


def outward(arm: WaypointExpert, point: np.ndarray, z: float, reach: float = TRAVEL_REACH) -> np.ndarray:
    """``point`` at height ``z``, pushed away from the arm's base to at least ``reach`` in the floor plane (a
    waypoint for travel between bins)."""
    base = base_of(arm)
    flat = np.array([point[0] - base[0], point[1] - base[1]])
    norm = float(np.linalg.norm(flat))
    flat = (
        np.array([reach, 0.0]) if norm < 1e-9 else flat * max(1.0, reach / norm)
    )  # right over the base: along x
    return np.array([base[0] + flat[0], base[1] + flat[1], z])


def swing(arm: WaypointExpert, point: np.ndarray) -> float:
    """How far the arm's base joint turns (about) when the hand moves from where it is to ``point``: a hand that
    points down keeps its heading only if the last joint turns back by as much."""
    base = base_of(arm)
    now, then = arm.sim.eef_pos() - base, np.asarray(point) - base
    return wrap_angle(float(np.arctan2(then[1], then[0]) - np.arctan2(now[1], now[0])))


def wrist_safe_turns(
    arm: WaypointExpert,
    first: float,
    period: float,
    at: np.ndarray,
    then: float | None = None,
    then_at: np.ndarray | None = None,
):
    """The smallest hand turn(s) to the heading ``first`` (modulo ``period``) with the hand at ``at`` -- then, if
    given, on by ``then`` (modulo a full turn) with the hand at ``then_at`` -- that keep the last joint inside
    :data:`WRIST_LIMIT` (the smallest in all if none does). Turns are relative to the hand's heading now; returns
    ``(turn, second_turn)``."""
    wrist = wrist_angle(arm) + swing(arm, at)
    later = wrist_angle(arm) + swing(arm, then_at if then_at is not None else at)
    seconds = turns(then, 2 * np.pi) if then is not None else np.zeros(1)
    options = [(a, b) for a in turns(first, period) for b in seconds]
    safe = [o for o in options if max(abs(wrist - o[0]), abs(later - o[0] - o[1])) <= WRIST_LIMIT]
    best = min(safe or options, key=lambda o: abs(o[0]) + abs(o[1]))
    return float(best[0]), float(best[1])


class Turning:
    """A yaw target that turns the hand by ``turn(env)`` radians (read at its first step) from its heading then,
    at most ``rate`` radians a step, so a large turn goes the chosen way round (the wrist's joint has stops)."""

    def __init__(self, arm: WaypointExpert, turn, rate: float = 0.08):
        self.arm, self.turn, self.rate = arm, turn, rate
        self.value: float | None = None
        self.goal = 0.0

    def __call__(self, env) -> float:
        arm = self.arm
        if self.value is None:
            drift = wrap_angle(yaw_of(arm.sim.eef_mat()) - arm.yaw_target)
            self.value, self.goal = arm.yaw_target, arm.yaw_target + drift + self.turn(env)
        self.value += float(np.clip(self.goal - self.value, -self.rate, self.rate))
        return self.value

    def settled(self, tol: float = 0.1) -> bool:
        """Whether the target reached its goal and the hand's heading is within ``tol`` radians of it."""
        return self.value == self.goal and abs(wrap_angle(yaw_of(self.arm.sim.eef_mat()) - self.goal)) < tol


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

    def _holds_hammer(self, arm: WaypointExpert, env) -> bool:
        """Whether ``arm``'s robot has the hammer between both finger pads (and the fingers did not shut past it)."""
        raw = env.raw
        gripper = raw.robots[arm.robot].gripper
        return (
            bool(raw._check_grasp(gripper, raw.transport.payload)) and arm.sim.finger_opening() > HELD_OPENING
        )

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

        def head_turn() -> float:
            """The turn that points the hammer's head (the handle's +axis end) across the gap at robot1."""
            return np.pi / 2 - handle_heading()

        def grasp_point(_env):
            # robot0 takes the light half of the handle, so robot1 gets the half next to the head, where the weight
            # is; where that half points at robot0's base, nearer the centre (a hand that points down cannot reach
            # low down close to its base: the wrist's bend joint is at its stop)
            towards_base = base_of(arm)[:2] - centre()[:2]
            facing = max(0.0, -float(np.dot(axis()[:2], towards_base)) / np.linalg.norm(towards_base))
            return centre() - (HANDOVER_GRIP - NEAR_BASE_SHIFT * facing) * axis() + up(grip_dz)

        def grasp_turn(_env) -> float:
            # the grasp heading (fingers across the handle) chosen so the later turn to offer stays in the wrist's range
            across = wrap_angle(handle_heading() + np.pi / 2 - yaw_of(arm.sim.eef_mat()))
            return wrist_safe_turns(arm, across, np.pi, grasp_point(_env), head_turn(), offer(_env))[0]

        def offer_turn(_env) -> float:
            return wrist_safe_turns(arm, head_turn(), 2 * np.pi, offer(_env))[0]

        hammer_yaw = Turning(arm, grasp_turn)
        offer_yaw = Turning(arm, offer_turn)
        # straight up from where the hand closed: a target that follows the hand drifts towards the base
        lift_point = arm.once(lambda _env: over(arm.sim.eef_pos(), carry_z))
        clear = arm.once(lambda _env: arm.sim.eef_pos() + up(0.08))

        def offer(_env):
            # the handle centre over the gap at HANDOVER_Z: robot0's hand sits where it holds the handle (about
            # HANDOVER_GRIP towards itself; a grasp a little off is made up, so robot1 need not reach further)
            held = arm.sim.eef_pos() - centre()
            x = np.clip(held[0], -OFFER_SLACK, OFFER_SLACK)
            y = np.clip(held[1], -HANDOVER_GRIP - OFFER_SLACK, -HANDOVER_GRIP + OFFER_SLACK)
            return np.array([x, y, HANDOVER_Z])

        other = self.arms[1]
        return [
            Phase("lid_above", lambda _env: lid_handle() + up(0.08), OPEN, yaw=lid_yaw, tol=0.015),
            Phase(
                "lid_descend", lambda _env: lid_handle() + up(-0.005), OPEN, yaw=lid_yaw, tol=0.006, speed=0.6
            ),
            Phase(
                "lid_grasp",
                lambda _env: lid_handle() + up(-0.005),
                CLOSE,
                min_steps=10,
                max_steps=10,
                tol=1.0,
            ),
            Phase("lid_lift", lambda _env: outward(arm, lid_handle(), carry_z), CLOSE, tol=0.04),
            Phase("lid_carry", lambda _env: outward(arm, lid_drop, carry_z), CLOSE, tol=0.03),
            Phase("lid_lower", lambda _env: lid_drop, CLOSE, tol=0.02, speed=0.7, stall_ends=True),
            Phase("lid_release", lambda _env: arm.sim.eef_pos(), OPEN, min_steps=6, max_steps=6, tol=1.0),
            Phase("lid_retreat", lambda _env: outward(arm, lid_drop, carry_z), OPEN, tol=0.03),
            Phase(
                "over_bin",
                lambda env: outward(arm, grasp_point(env), table_z + CLEAR),
                OPEN,
                yaw=hammer_yaw,
                tol=0.04,
            ),
            Phase(
                "above", lambda env: over(grasp_point(env), table_z + CLEAR), OPEN, yaw=hammer_yaw, tol=0.012
            ),
            Phase("descend", grasp_point, OPEN, yaw=hammer_yaw, tol=0.007, speed=0.6, stall_ends=True),
            Phase("grasp", grasp_point, CLOSE, min_steps=10, max_steps=10, tol=1.0),
            Phase(
                "lift",
                lift_point,
                CLOSE,
                tol=0.03,
                verify=lambda env: centre()[2] > table_z + 0.12 and self._holds_hammer(arm, env),
                retry_from="above",
            ),
            Phase(
                "offer",
                offer,
                CLOSE,
                yaw=offer_yaw,
                max_steps=200,
                done=lambda env: (
                    np.linalg.norm(offer(env) - arm.sim.eef_pos()) < 0.01 and offer_yaw.settled()
                ),
            ),
            Phase(
                "hold",
                offer,
                CLOSE,
                yaw=offer_yaw,
                tol=1.0,
                max_steps=300,
                # let go only once robot1's fingers hold the handle
                done=lambda env: other.phase == "wait_release" and self._holds_hammer(other, env),
            ),
            Phase("give", offer, OPEN, min_steps=8, max_steps=8, tol=1.0),
            # straight up first: open fingers backing along the handle would drag the hammer out of robot1's hand
            Phase("clear", clear, OPEN, tol=0.02, max_steps=40),
            Phase("back", lambda _env: np.array([0.0, -0.3, HANDOVER_Z + 0.05]), OPEN, max_steps=400),
        ]

    # -- robot1: trash, take the hammer, place it ------------------------------------------------------
    def _plan_robot1(self, arm: _Arm, env):
        raw = env.raw
        transport = raw.transport
        _body, axis, centre = self._hammer(arm, env)
        table_z = float(raw.table_offsets[1, 2])
        trash_id = transport.trash_body_id
        # over the trash bin's half towards the gap, a little further from robot1's base
        trash_drop = np.array([*transport.trash_bin_pos[:2], table_z + 0.2]) + np.array(
            [*arm.jitter(0.03, 2), 0.0]
        )
        trash_drop[1] += TRASH_DROP_OUT * np.sign(trash_drop[1] - base_of(arm)[1])  # away from robot1's base
        target = np.array(transport.target_bin_pos)
        place = np.array([target[0], target[1], table_z + 0.1])
        carry_z = table_z + 0.3

        def trash():
            return arm.sim.body_pos(trash_id)

        trash_yaw = arm.once(lambda _env: arm.grasp_yaw(yaw_of(arm.sim.body_mat(trash_id)), np.pi / 2))
        # up and out from where the hand closed (straight up, the hand drifts towards the base and folds the elbow)
        trash_lift = arm.once(lambda _env: outward(arm, arm.sim.eef_pos(), carry_z))
        other = self.arms[0]

        def take_turn(_env) -> float:
            across = float(np.arctan2(*axis()[1::-1])) + np.pi / 2
            return wrist_safe_turns(
                arm, wrap_angle(across - yaw_of(arm.sim.eef_mat())), np.pi, take_point(_env)
            )[0]

        take_yaw = Turning(arm, take_turn)

        def take_point(_env):
            # HANDOVER_GRIP past the centre, or further towards the head (at most TAKE_SLACK) where robot0 holds the
            # handle nearer the centre: the two hands need about 2 * HANDOVER_GRIP between them
            robot0_at = float(np.dot(other.sim.eef_pos() - centre(), axis()))
            along = np.clip(robot0_at + 2 * HANDOVER_GRIP, HANDOVER_GRIP, HANDOVER_GRIP + TAKE_SLACK)
            return centre() + along * axis() + up(-0.005)

        # holding on, the hand stays where it closed: chasing the handle as robot0 lets go would pull it along
        still = arm.once(lambda _env: arm.sim.eef_pos())

        def hammer_offered(_env) -> bool:
            return other.phase == "hold"

        return [
            Phase("trash_above", lambda _env: over(trash(), table_z + CLEAR), OPEN, yaw=trash_yaw, tol=0.012),
            Phase(
                "trash_descend",
                lambda _env: trash() + up(-0.005),
                OPEN,
                yaw=trash_yaw,
                tol=0.006,
                speed=0.6,
                stall_ends=True,
            ),
            Phase(
                "trash_grasp", lambda _env: trash() + up(-0.005), CLOSE, min_steps=10, max_steps=10, tol=1.0
            ),
            Phase(
                "trash_lift",
                trash_lift,
                CLOSE,
                tol=0.03,
                speed=0.6,
                verify=lambda _env: trash()[2] > table_z + 0.1,
                retry_from="trash_above",
            ),
            Phase("trash_carry", lambda _env: outward(arm, trash_drop, carry_z), CLOSE, tol=0.03),
            Phase("trash_lower", lambda _env: trash_drop, CLOSE, tol=0.02, stall_ends=True),
            Phase("trash_release", lambda _env: trash_drop, OPEN, min_steps=8, max_steps=8, tol=1.0),
            # out towards the gap before swinging across to wait (the straight way draws the hand towards the base)
            Phase("trash_leave", lambda _env: outward(arm, trash_drop, carry_z, reach=0.6), OPEN, tol=0.05),
            Phase(
                "wait",
                lambda _env: np.array([0.0, 0.15, HANDOVER_Z + 0.08]),
                OPEN,
                tol=1.0,
                max_steps=500,
                done=hammer_offered,
            ),
            Phase("take_above", lambda env: take_point(env) + up(0.06), OPEN, yaw=take_yaw, tol=0.01),
            Phase("take_descend", take_point, OPEN, yaw=take_yaw, tol=0.006, speed=0.5, stall_ends=True),
            Phase(
                "take",
                take_point,
                CLOSE,
                min_steps=12,
                max_steps=12,
                tol=1.0,
                verify=lambda env: self._holds_hammer(arm, env),
                retry_from="take_above",
            ),
            Phase(
                "wait_release",
                still,
                CLOSE,
                tol=1.0,
                max_steps=150,
                done=lambda _env: other.phase == "back",
            ),
            # back towards robot1's base first: the hand-over pose is near the edge of its reach
            Phase("pull", lambda _env: np.array([0.0, 0.3, HANDOVER_Z]), CLOSE, tol=0.04),
            Phase("carry", lambda _env: np.array([*place[:2], carry_z]), CLOSE, tol=0.03),
            Phase("lower", lambda _env: place, CLOSE, tol=0.015, speed=0.6, stall_ends=True),
            Phase("release", lambda _env: arm.sim.eef_pos(), OPEN, min_steps=8, max_steps=8, tol=1.0),
            Phase("retreat", lambda _env: place + up(0.15), OPEN, max_steps=400),
        ]
