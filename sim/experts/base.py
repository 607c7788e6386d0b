"""Waypoint experts: phases with targets read from the simulator, tracked through the OSC_POSE delta actions.

An expert is a list of :class:`Phase` objects. Each phase has a target position (a function of the env, so it
follows moving objects), an optional gripper yaw target, a gripper command and a completion rule. The expert
turns the error to the target into a clipped, rate-limited 7-D action, exactly what a human operator sends, so
the motion is smooth (no teleporting). Targets are in the world frame; the action is expressed in the robot's
base frame, as robosuite's OSC_POSE expects, so an expert also drives a robot whose base is turned (the ``robot``
index picks which robot of a multi-robot task the expert drives). Each episode draws its own speed and small waypoint offsets from a
generator seeded by the episode seed, so demonstrations vary across seeds but replay exactly for one seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

OPEN, CLOSE = -1.0, 1.0
POS_SCALE = 0.05  # metres per unit of action (robosuite's OSC_POSE output_max)
ROT_SCALE = 0.5  # radians per unit of action

Target = Callable[["object"], np.ndarray]


@dataclass
class Phase:
    """One segment of a demonstration.

    ``target(env)`` is where the end-effector goes; ``yaw(env)`` (radians, world frame) where the gripper turns,
    ``None`` keeps the current orientation target. The phase ends once the position error is below ``tol`` and
    at least ``min_steps`` steps passed, or after ``max_steps``. ``speed`` scales the episode's top speed.
    """

    name: str
    target: Target
    gripper: float
    yaw: Callable[[object], float] | None = None
    tol: float = 0.01
    min_steps: int = 0
    max_steps: int = 120
    speed: float = 1.0
    done: Callable[[object], bool] | None = None
    stall_ends: bool = False  # also end once the hand stops moving (blocked by contact) near the target
    orientation: Callable[[object], np.ndarray] | None = None  # full 3x3 target (overrides ``yaw``)
    verify: Callable[[object], bool] | None = (
        None  # checked when the phase ends (e.g. "the object is lifted")
    )
    retry_from: str = (
        ""  # on a failed ``verify``, go back to the phase of this name (like a person regrasping)
    )
    keep_integral: bool = False  # start with the previous phase's integral term (keeps the load compensation)
    integral_limit: float | None = None  # most action the integral term may add here (None: the expert's)


def wrap_angle(angle: float, period: float = 2 * np.pi) -> float:
    """Wrap ``angle`` into [-period/2, period/2)."""
    return float((angle + period / 2) % period - period / 2)


def rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def yaw_of(matrix: np.ndarray) -> float:
    """Heading of a frame's x axis in the world xy plane."""
    return float(np.arctan2(matrix[1, 0], matrix[0, 0]))


def axis_angle(matrix: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle) of a rotation matrix."""
    cos = np.clip((np.trace(matrix) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-6:
        return np.zeros(3)
    axis = np.array([matrix[2, 1] - matrix[1, 2], matrix[0, 2] - matrix[2, 0], matrix[1, 0] - matrix[0, 1]])
    norm = np.linalg.norm(axis)
    if norm < 1e-9:  # angle close to pi: take the axis from the symmetric part
        diag = np.sqrt(np.clip((np.diag(matrix) + 1.0) / 2.0, 0.0, None))
        return diag * angle
    return axis / norm * angle


class Sim:
    """Read-only views of the robosuite sim an expert needs (poses of bodies, sites and robot ``robot``'s hand)."""

    def __init__(self, env, robot: int = 0):
        self.raw = env.raw
        self.robot = robot

    @property
    def data(self):
        return self.raw.sim.data

    def body_pos(self, body_id: int) -> np.ndarray:
        return np.array(self.data.body_xpos[body_id])

    def body_mat(self, body_id: int) -> np.ndarray:
        return np.array(self.data.body_xmat[body_id]).reshape(3, 3)

    def site_pos(self, name: str) -> np.ndarray:
        return np.array(self.data.site_xpos[self.raw.sim.model.site_name2id(name)])

    def body_id(self, name: str) -> int:
        return self.raw.sim.model.body_name2id(name)

    def geom_pos(self, name: str) -> np.ndarray:
        return np.array(self.data.geom_xpos[self.raw.sim.model.geom_name2id(name)])

    def geom_mat(self, name: str) -> np.ndarray:
        return np.array(self.data.geom_xmat[self.raw.sim.model.geom_name2id(name)]).reshape(3, 3)

    def eef_site(self) -> int:
        robot = self.raw.robots[self.robot]
        return robot.eef_site_id[robot.arms[0]]

    def finger_opening(self) -> float:
        """Distance between the two fingers' joint positions (about 0 when shut on nothing, 0.08 wide open)."""
        robot = self.raw.robots[self.robot]
        qpos = [self.data.qpos[i] for i in robot._ref_gripper_joint_pos_indexes[robot.arms[0]]]
        return float(abs(qpos[0] - qpos[1]))

    def base_mat(self) -> np.ndarray:
        """Orientation of the robot's base (the frame its OSC_POSE deltas are given in)."""
        return self.body_mat(self.body_id(self.raw.robots[self.robot].robot_model.root_body))

    def eef_pos(self) -> np.ndarray:
        return np.array(self.data.site_xpos[self.eef_site()])

    def eef_mat(self) -> np.ndarray:
        return np.array(self.data.site_xmat[self.eef_site()]).reshape(3, 3)


class WaypointExpert:
    """Runs a task's phases; subclasses implement :meth:`plan` (the phases for the current episode)."""

    #: speed range (fraction of full action) drawn per episode
    speed_range: tuple[float, float] = (0.7, 1.0)
    gain: float = 20.0  # action per metre of error, before clipping to the speed
    rot_gain: float = 2.0  # action per radian of orientation error
    integral_gain: float = 3.0  # action per metre-step of accumulated error (removes the sag under load)
    integral_limit: float = 0.3  # most action the integral term may add

    max_retries: int = 2
    robot: int = 0  # which robot of the task this expert drives

    def __init__(self):
        self.rng = np.random.default_rng(0)
        self.retries = 0
        self.phases: list[Phase] = []
        self.index = 0
        self.phase_steps = 0
        self.speed = 1.0
        self.down = np.eye(3)
        self.yaw_target = 0.0
        self.last_pos_action = np.zeros(3)
        self.integral = np.zeros(3)
        self.eef_history: list[np.ndarray] = []

    # -- API -------------------------------------------------------------------------------------------
    def reset(self, env, seed: int | None = None) -> None:
        """Plan a new episode for the env's current state; ``seed`` draws this episode's speed and offsets."""
        self.rng = np.random.default_rng(seed)
        self.sim = Sim(env, self.robot)
        self.base = self.sim.base_mat()
        eef = self.sim.eef_mat()
        self.yaw_target = yaw_of(eef)
        self.down = rot_z(-self.yaw_target) @ eef  # the gripper's pointing-down orientation, heading zero
        self.speed = float(self.rng.uniform(*self.speed_range))
        self.phases = self.plan(env)
        self.retries = 0
        self.index = 0
        self.phase_steps = 0
        self.last_pos_action = np.zeros(3)
        self.integral = np.zeros(3)
        self.eef_history: list[np.ndarray] = []

    def act(self, env, obs=None) -> np.ndarray:
        """The next 7-D action (OSC_POSE delta + gripper)."""
        self.eef_history.append(self.sim.eef_pos())
        phase = self._current_phase(env)
        eef = self.sim.eef_pos()
        error = phase.target(env) - eef
        limit = self.speed * phase.speed
        if np.linalg.norm(error) < 0.03:  # integrate only near the target, so travel does not wind it up
            most = self.integral_limit if phase.integral_limit is None else phase.integral_limit
            self.integral = np.clip(self.integral + error * self.integral_gain, -most, most)
        pos = np.clip(error * self.gain + self.integral, -limit, limit)
        # rate limit: a hand does not jump from rest to full speed
        pos = self.last_pos_action + np.clip(pos - self.last_pos_action, -0.15, 0.15)
        self.last_pos_action = pos
        if phase.yaw is not None:
            self.yaw_target = phase.yaw(env)
        goal = phase.orientation(env) if phase.orientation is not None else rot_z(self.yaw_target) @ self.down
        rot = np.clip(axis_angle(goal @ self.sim.eef_mat().T) * self.rot_gain, -0.5, 0.5)
        self.phase_steps += 1
        world_to_base = self.base.T
        return np.concatenate([world_to_base @ pos, world_to_base @ rot, [phase.gripper]]).astype(np.float32)

    def resume_at(self, name: str) -> str:
        """Run the plan from phase ``name`` on instead of from its first phase (a correction takes over there),
        or from the latest phase before it that checks the state the later ones rely on (``verify``, e.g. "the
        object is in the hand"): a failed check sends the plan back as usual. An unknown name keeps the current
        phase. Returns the phase the plan now runs."""
        names = [phase.name for phase in self.phases]
        if name in names:
            index = names.index(name)
            checked = [i for i in range(index + 1) if self.phases[i].verify is not None]
            self._enter(checked[-1] if checked else index)
        return self.phase

    @property
    def phase(self) -> str:
        """Name of the phase being run."""
        return self.phases[self.index].name

    @property
    def finished(self) -> bool:
        return self.index >= len(self.phases) - 1 and self.phase_steps >= self.phases[-1].max_steps

    # -- helpers for subclasses ------------------------------------------------------------------------
    def plan(self, env) -> list[Phase]:
        raise NotImplementedError

    def jitter(self, scale: float, size: int = 3) -> np.ndarray:
        """A small seeded offset (uniform in ±scale) for a waypoint."""
        return self.rng.uniform(-scale, scale, size)

    def grasp_yaw(self, object_yaw: float, symmetry: float) -> float:
        """The gripper heading closest to the current one that lines up with an object of the given symmetry."""
        return self.yaw_target + wrap_angle(object_yaw - self.yaw_target, symmetry)

    def aligned_yaw(self, held_body: int, goal_yaw: float, symmetry: float) -> float:
        """Gripper heading that turns a held body to ``goal_yaw`` (modulo its ``symmetry``), nearest the current one."""
        gripper = yaw_of(self.sim.eef_mat())
        held = yaw_of(self.sim.body_mat(held_body))
        return gripper + wrap_angle(goal_yaw - held, symmetry)

    def once(self, compute: Callable[[object], float]) -> Callable[[object], float]:
        """Wrap a yaw target so it is computed at the first step of its phase and then held fixed."""
        memory: dict[str, float] = {}

        def fixed(env) -> float:
            if "value" not in memory:
                memory["value"] = compute(env)
            return memory["value"]

        return fixed

    def move_held(self, point: Callable[[], np.ndarray], goal: Callable[[], np.ndarray]) -> Target:
        """Hand target that brings ``point()`` (a spot on a held object) to ``goal()``: the hand moves by the
        remaining offset, so a grasp that is off-centre or slips a little is corrected as it goes."""
        return lambda _env: self.sim.eef_pos() + goal() - point()

    def keep_held(self, held: Callable[[], np.ndarray], goal: Callable[[], np.ndarray]):
        """Hand orientation that turns a held object (orientation ``held()``) to ``goal()``, keeping the grasp."""
        return lambda _env: goal() @ held().T @ self.sim.eef_mat()

    def hold_orientation(self):
        """Hand orientation target that keeps the orientation the hand has at the first step of its phase."""
        memory: dict[str, np.ndarray] = {}

        def fixed(_env) -> np.ndarray:
            if "value" not in memory:
                memory["value"] = self.sim.eef_mat()
            return memory["value"]

        return fixed

    def _stalled(self, window: int = 6, distance: float = 0.0015) -> bool:
        history = self.eef_history
        return len(history) > window and np.linalg.norm(history[-1] - history[-1 - window]) < distance

    def _next_index(self, env, phase: Phase) -> int:
        if phase.verify is None or self.retries >= self.max_retries or phase.verify(env):
            return self.index + 1
        self.retries += 1
        return next(i for i, p in enumerate(self.phases) if p.name == phase.retry_from)

    def _enter(self, index: int) -> None:
        """Start phase ``index``: its step count, integral term (unless it keeps it) and stall history anew."""
        self.index = index
        self.phase_steps = 0
        if not self.phases[index].keep_integral:
            self.integral = np.zeros(3)
        self.eef_history = []

    def _current_phase(self, env) -> Phase:
        while self.index < len(self.phases) - 1:
            phase = self.phases[self.index]
            reached = np.linalg.norm(phase.target(env) - self.sim.eef_pos()) < phase.tol
            ended = phase.done(env) if phase.done is not None else reached
            ended = ended or (phase.stall_ends and self._stalled())
            if (ended and self.phase_steps >= phase.min_steps) or self.phase_steps >= phase.max_steps:
                self._enter(self._next_index(env, phase))
                continue
            break
        return self.phases[self.index]


def up(height: float) -> np.ndarray:
    """A vertical offset of ``height`` metres."""
    return np.array([0.0, 0.0, height])
