"""Scripted expert for ToolHang: stand the hook frame up in the stand's post, then hang the wrench on its hook.

The frame lies flat on the table. The hand grasps its grip from above (fingers across the bar), lifts it and
turns it upright with the hook end away from the robot (the hand then points to the robot's right), lowers the
frame's tip into the post (between its four walls), checks it went down centred (else lifts it out and tries
again), lets go once the fingers are wide open and backs straight out. Then it grasps the wrench's grip from
above, leaning towards the ring, and turns the wrench so the large ring's plane tilts down towards the bar's
free end (handle up towards the frame's corner). It carries the ring over the hook, waits there until it is
still, lowers it round the hook and lets go: the wrench drops onto the bar with the bar through its ring. Every
carry target is servoed on the held object's own site (frame tip, ring centre), not on the hand.

The hook end points away from the robot because the hand carries the ring over it in the direction it points:
with the hook end towards the robot the hand would have to point forward right in front of the robot's base,
out of the Panda's reach; this way it reaches over the stand and points back.
"""

from __future__ import annotations

import numpy as np

from manip.sim.experts.base import CLOSE, OPEN, Phase, WaypointExpert, rot_z, up

#: the frame stood up: its bar (local z) vertical and its hook end (local -x) away from the robot (+x); the hand
#: that grasped it from above while it lay flat then points to the robot's right (-y). The wrench's ring is then
#: carried over the hook end towards the robot (-x), with the hand (which grasped the wrench from above) pointing
#: that way.
FRAME_UPRIGHT = np.diag([-1.0, -1.0, 1.0])
#: preferred direction of the hand's x axis (the fingers' axis) while it holds the upright frame, and while it
#: carries the wrench: of the two grasps across a bar, the one whose wrist roll stays clear of the joint limits
FRAME_FINGERS = np.array([-1.0, 0.0, 0.0])
TOOL_FINGERS = np.array([0.0, 1.0, 0.0])
#: The ring (19.4 mm clear inside) cannot slide level over the hook end (bar 7.5 mm plus hook 12 mm = 19.5 mm).
#: Tilted HOOK_TILT, with its top rim towards the corner, it is lowered over the hook instead: carried
#: HOOK_CLEAR above the bar's centre line until its centre rests RING_DROP_AT (within RING_DROP_WINDOW along the
#: bar, half of it sideways) past the bar's end, then lowered to RING_DROP_TO above the bar and let go. (A 2-D
#: clearance check of this geometry: with the centre up to 6.5 mm past the bar's end, the tilted ring clears the
#: hook at every height from 2 mm above the bar up.)
HOOK_TILT = np.radians(60.0)
HOOK_CLEAR = 0.016
RING_DROP_AT = 0.005
RING_DROP_WINDOW = 0.002
RING_DROP_TO = 0.009
#: lean of the hand towards the wrench's ring when it grasps the grip (radians): while the ring is carried over
#: the hook, the hand then points forward and down by this much instead of straight ahead, which keeps the wrist
#: (Panda joint 6) off its limit
TOOL_GRASP_LEAN = np.radians(30.0)


def _heading(vector: np.ndarray) -> float:
    return float(np.arctan2(vector[1], vector[0]))


class ToolHangExpert(WaypointExpert):
    speed_range = (0.8, 1.0)

    def grasp_roll(self, body: int, bar_axis: int, goal, fingers: np.ndarray) -> float:
        """Hand heading for a grasp from above across the local ``bar_axis`` of a flat-lying ``body``: of the two
        headings, the one whose fingers' axis points most along ``fingers`` once the body is turned to ``goal()``."""
        first = self.grasp_yaw(_heading(self.sim.body_mat(body)[:, bar_axis]) + np.pi / 2, np.pi)
        held = self.sim.body_mat(body).T

        def along(yaw: float) -> float:
            return float((goal() @ held @ rot_z(yaw) @ self.down)[:, 0] @ fingers)

        return max((first, first + np.pi), key=along)

    def settled(self, point, steps: int = 4, distance: float = 0.0006) -> bool:
        """``point()`` (a spot on a held object) moved less than ``distance`` over the last ``steps`` calls."""
        track = self.tracks.setdefault(point, [])
        track.append(point())
        del track[: -steps - 1]
        return len(track) > steps and float(np.linalg.norm(track[-1] - track[0])) < distance

    def leaning_grasp(self, body: int, goal, fingers: np.ndarray):
        """Hand orientation target for grasping a flat-lying ``body`` from above with the fingers along its local y
        axis (across the grip's local x), leaning
        ``TOOL_GRASP_LEAN`` towards its local -x; of the two finger directions (chosen at the first step), the one
        whose fingers' axis points most along ``fingers`` once the body is turned to ``goal()``."""

        def grasp(sign: float) -> np.ndarray:
            held = self.sim.body_mat(body)
            z_axis = -np.cos(TOOL_GRASP_LEAN) * held[:, 2] - np.sin(TOOL_GRASP_LEAN) * held[:, 0]
            x_axis = sign * held[:, 1]
            return np.column_stack([x_axis, np.cross(z_axis, x_axis), z_axis])

        def along(sign: float) -> float:
            return float((goal() @ self.sim.body_mat(body).T @ grasp(sign))[:, 0] @ fingers)

        sign = self.once(lambda _e: max((1.0, -1.0), key=along))
        return lambda env: grasp(sign(env))

    def plan(self, env):
        sim = self.sim
        self.tracks: dict = {}
        frame_id, tool_id = sim.body_id("frame_root"), sim.body_id("tool_root")
        table_z = float(env.raw.table_offset[2])
        carry_z = table_z + 0.35

        def frame_grip():
            return sim.geom_pos("frame_grip_frame")

        def frame_tip():
            return sim.site_pos("frame_tip_site")

        def mount():
            # the post's opening: between its four walls (robosuite's stand_mount_site sits off the post), at its top
            walls = np.mean([sim.geom_pos(f"stand_wall{i}") for i in range(4)], axis=0)
            return np.array([walls[0], walls[1], sim.site_pos("stand_mount_site")[2]])

        frame_yaw = self.once(lambda _e: self.grasp_roll(frame_id, 2, lambda: FRAME_UPRIGHT, FRAME_FINGERS))
        upright = self.keep_held(lambda: sim.body_mat(frame_id), lambda: FRAME_UPRIGHT)

        def tip_over(height: float):
            return self.move_held(frame_tip, lambda: mount() + up(height))

        def aligned(sideways: float, height: float) -> bool:
            """The frame's tip is within ``sideways`` of the post's axis, ``height`` above its top (2 mm)."""
            offset = frame_tip() - mount()
            return bool(np.linalg.norm(offset[:2]) < sideways and abs(offset[2] - height) < 0.002)

        def frame_in_post() -> bool:
            """The frame's tip went down the post, centred (12.5 cm below its top; it drops the rest once let go)."""
            offset = frame_tip() - mount()
            return bool(np.linalg.norm(offset[:2]) < 0.004 and offset[2] < -0.125)

        def tool_grip():
            return sim.geom_pos("tool_grip_g0")

        def ring():
            return sim.site_pos("tool_hole1_center")

        def bar():
            """The hook bar: its free end (with the hook) and the unit vector from there to the corner."""
            end = sim.site_pos("frame_hang_site")
            along = sim.site_pos("frame_intersection_site") - end
            return end, along / np.linalg.norm(along)

        def tool_goal() -> np.ndarray:
            # the ring's top (tool x, the handle's direction) leans HOOK_TILT from vertical towards the bar's
            # corner, its axis (tool z) in the vertical plane through the bar: the ring's top rim then passes
            # over the hook while its bottom rim is still short of the bar's end
            _end, along = bar()
            level = np.array([along[0], along[1], 0.0]) / np.linalg.norm(along[:2])
            x_axis = np.cos(HOOK_TILT) * up(1.0) + np.sin(HOOK_TILT) * level
            z_axis = -np.cos(HOOK_TILT) * level + np.sin(HOOK_TILT) * up(1.0)
            return np.column_stack([x_axis, np.cross(z_axis, x_axis), z_axis])

        tool_grasp = self.leaning_grasp(tool_id, tool_goal, TOOL_FINGERS)
        hang_pose = self.keep_held(lambda: sim.body_mat(tool_id), tool_goal)

        def on_bar(distance: float, height: float):
            def goal():
                end, along = bar()
                return end + distance * along + up(height)

            return self.move_held(ring, goal)

        def ring_along() -> float:
            """How far the ring's centre is along the hook bar from its free end (metres)."""
            end, along = bar()
            return float((ring() - end) @ along)

        def ring_height() -> float:
            """Height of the ring's centre above the bar's centre line (metres)."""
            end, _along = bar()
            return float(ring()[2] - end[2])

        def ring_settled_at(distance: float) -> bool:
            """The ring's centre has come to rest within RING_DROP_WINDOW of ``distance`` along the bar and within
            half of it of the vertical plane through the bar (``settled`` is sampled only once it is near)."""
            end, along = bar()
            sideways = abs(float((ring() - end) @ np.cross(along, up(1.0))))
            near = abs(ring_along() - distance) < RING_DROP_WINDOW and sideways < RING_DROP_WINDOW / 2
            return near and self.settled(ring)

        def wide_open(_env) -> bool:
            """The fingers opened wide (before the hand backs off, so they do not drag what they let go)."""
            return sim.finger_opening() > 0.07

        let_go_at = self.once(lambda _e: sim.eef_pos())
        released_tool = self.hold_orientation()
        stand_clear = np.array([-0.15, -0.2, carry_z])
        released = self.hold_orientation()
        back_from = self.once(lambda _e: sim.eef_pos())  # where the hand lets go of the frame

        def back_off(_env):
            # straight back out along the hand's pointing direction (the hand points at the frame)
            return back_from(_env) - 0.08 * sim.eef_mat()[:, 2]

        return [
            # -- the frame -------------------------------------------------------------------------------
            Phase("frame_above", lambda _e: frame_grip() + up(0.1), OPEN, yaw=frame_yaw, tol=0.012),
            Phase(
                "frame_descend",
                lambda _e: frame_grip() + up(-0.003),
                OPEN,
                yaw=frame_yaw,
                tol=0.006,
                speed=0.6,
                stall_ends=True,
            ),
            Phase(
                "frame_grasp",
                lambda _e: frame_grip() + up(-0.003),
                CLOSE,
                min_steps=10,
                max_steps=10,
                tol=1.0,
            ),
            Phase(
                "frame_lift",
                lambda _e: np.array([*sim.eef_pos()[:2], carry_z]),
                CLOSE,
                tol=0.03,
                verify=lambda _e: frame_grip()[2] > table_z + 0.1,
                retry_from="frame_above",
            ),
            Phase(
                "frame_upright",
                lambda _e: np.array([-0.1, -0.15, carry_z]),
                CLOSE,
                orientation=upright,
                tol=0.02,
                min_steps=25,
                max_steps=80,
            ),
            Phase(
                "frame_over_post",
                tip_over(0.02),
                CLOSE,
                orientation=upright,
                max_steps=150,
                done=lambda _e: aligned(0.0015, 0.02) and self.settled(frame_tip),
            ),
            Phase(
                "frame_insert",
                tip_over(-0.14),
                CLOSE,
                orientation=upright,
                tol=0.01,
                speed=0.4,
                stall_ends=True,
                max_steps=120,
                integral_limit=0.05,  # a tip caught on a wall is lifted and retried, not pushed sideways
                verify=lambda _e: frame_in_post(),
                retry_from="frame_over_post",
            ),
            Phase(
                "frame_release",
                lambda _e: sim.eef_pos(),
                OPEN,
                orientation=released,
                min_steps=8,
                max_steps=25,
                done=wide_open,
            ),
            Phase("frame_back", back_off, OPEN, orientation=released, tol=0.01, max_steps=40),
            Phase("frame_clear", lambda _e: stand_clear, OPEN, tol=0.03),
            # -- the wrench ------------------------------------------------------------------------------
            Phase("tool_above", lambda _e: tool_grip() + up(0.1), OPEN, orientation=tool_grasp, tol=0.012),
            Phase(
                "tool_descend",
                lambda _e: tool_grip() + up(0.004),
                OPEN,
                orientation=tool_grasp,
                tol=0.006,
                speed=0.6,
                stall_ends=True,
            ),
            Phase(
                "tool_grasp",
                lambda _e: tool_grip() + up(0.004),
                CLOSE,
                orientation=tool_grasp,
                min_steps=10,
                max_steps=10,
                tol=1.0,
            ),
            Phase(
                "tool_lift",
                lambda _e: np.array([*sim.eef_pos()[:2], carry_z]),
                CLOSE,
                tol=0.03,
                verify=lambda _e: tool_grip()[2] > table_z + 0.1,
                retry_from="tool_above",
            ),
            Phase(
                "tool_turn",
                lambda _e: np.array([0.1, -0.05, carry_z]),
                CLOSE,
                orientation=hang_pose,
                tol=0.03,
                min_steps=25,
                max_steps=80,
            ),
            Phase(
                "ring_before_hook",
                on_bar(-0.05, HOOK_CLEAR),
                CLOSE,
                orientation=hang_pose,
                tol=0.005,
                max_steps=100,
            ),
            Phase(
                "ring_at_hook",
                on_bar(-0.012, HOOK_CLEAR),
                CLOSE,
                orientation=hang_pose,
                tol=0.002,
                speed=0.15,
                max_steps=80,
                keep_integral=True,
            ),
            Phase(
                "ring_over_hook",
                on_bar(RING_DROP_AT, HOOK_CLEAR),
                CLOSE,
                orientation=hang_pose,
                speed=0.05,
                max_steps=80,
                keep_integral=True,
                integral_limit=0.03,
                done=lambda _e: ring_settled_at(RING_DROP_AT),
            ),
            Phase(
                "ring_lower",
                on_bar(RING_DROP_AT, RING_DROP_TO),
                CLOSE,
                orientation=hang_pose,
                speed=0.08,
                max_steps=60,
                keep_integral=True,
                integral_limit=0.03,
                done=lambda _e: ring_height() < RING_DROP_TO + 0.0015,
            ),
            Phase(
                "tool_release",
                lambda _e: let_go_at(_e),
                OPEN,
                orientation=released_tool,
                min_steps=8,
                max_steps=25,
                done=wide_open,
            ),
            Phase(
                "tool_back",
                lambda _e: let_go_at(_e) - 0.06 * sim.eef_mat()[:, 2],
                OPEN,
                orientation=released_tool,
                tol=0.01,
                max_steps=30,
            ),
            Phase("retreat", lambda _e: np.array([-0.35, -0.05, carry_z]), OPEN, max_steps=400),
        ]
