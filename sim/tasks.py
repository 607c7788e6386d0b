"""The task registry: robosuite 1.5.2 tasks with Panda arms, their horizons, cameras and instructions.

A task with ``n`` robots takes ``7 * n``-D actions: one OSC_POSE-delta + gripper block per robot, robot0 first.
"""

from __future__ import annotations

from dataclasses import dataclass

from manip.core.errors import ManipError

OBS_MODES = ("lowdim", "image", "points")
ROBOSUITE_OBS_MODES = ("lowdim", "image")
CAMERAS = ("agentview", "robot0_eye_in_hand")
CONTROL_RATE_HZ = 20
ARM_DIM = 7
"""Action dimensions per robot: 3 position and 3 rotation deltas (OSC_POSE) and the gripper."""
GRIPPER_DIM = 6
"""Index of the gripper command in the 7-D OSC_POSE-delta + gripper action."""


@dataclass(frozen=True)
class TaskSpec:
    """One task: robosuite env name, episode horizon (steps at ``control_rate`` Hz) and a language instruction.

    ``robots`` are robosuite robot names (one per arm), placed as ``env_configuration`` says (e.g. ``"opposed"``).
    """

    name: str
    env_name: str
    horizon: int
    instruction: str
    control_rate: int = CONTROL_RATE_HZ
    obs_modes: tuple[str, ...] = ROBOSUITE_OBS_MODES
    cameras: tuple[str, ...] = CAMERAS
    object_obs_key: str = "object-state"
    robots: tuple[str, ...] = ("Panda",)
    env_configuration: str = "default"

    @property
    def action_dim(self) -> int:
        """Size of one action: an OSC_POSE-delta + gripper block per robot."""
        return ARM_DIM * len(self.robots)

    @property
    def gripper_dims(self) -> tuple[int, ...]:
        """Indices of the gripper commands in an action (one per robot)."""
        return tuple(ARM_DIM * i + GRIPPER_DIM for i in range(len(self.robots)))


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        # robomimic's horizons (proficient-human style) for Lift / Can / Square.
        TaskSpec("Lift", "Lift", 400, "lift the cube"),
        TaskSpec("PickPlaceCan", "PickPlaceCan", 400, "put the can in its bin"),
        TaskSpec("NutAssemblySquare", "NutAssemblySquare", 400, "put the square nut on its peg"),
        TaskSpec("Stack", "Stack", 400, "stack the red cube on the green cube"),
        TaskSpec("Door", "Door", 400, "open the door"),
        # robomimic's horizons and cameras for its proficient-human ToolHang and Transport data
        TaskSpec(
            "ToolHang",
            "ToolHang",
            700,
            "insert the hook frame into the stand and hang the wrench on the hook",
            cameras=("sideview", "robot0_eye_in_hand"),
        ),
        TaskSpec(
            "TwoArmTransport",
            "TwoArmTransport",
            700,
            "lift the lid, hand the hammer over into the target bin and put the red cube in the trash bin",
            cameras=("shouldercamera0", "shouldercamera1", "robot0_eye_in_hand", "robot1_eye_in_hand"),
            robots=("Panda", "Panda"),
            env_configuration="opposed",
        ),
    )
}


def controller_for(source, task: TaskSpec, delay=None, **executor_options):
    """The per-tick :class:`manip.real.client.loop.ChunkedController` for ``source`` in ``task``.

    A hold (no fresh chunk, non-finite action) sends zero motion but keeps the last gripper commands (every
    robot's), so a held robot does not drop what it carries (the executor's default hold zeroes every
    dimension). ``delay``: a :class:`manip.real.client.latency.InjectedDelay`; ``executor_options``:
    :class:`manip.real.client.executor.ExecutorConfig` fields (e.g. ``mode``).
    """
    from manip.real.client.loop import ChunkedController, executor_config_for
    from manip.real.client.safety import SafetyConfig

    config = executor_config_for(
        source.metadata, safety=SafetyConfig(hold_keep=list(task.gripper_dims)), **executor_options
    )
    return ChunkedController(source, config, delay, instruction=task.instruction)


def robosuite_task_names() -> list[str]:
    """The robosuite tasks' names, in registration order (every task that is not one of Meta-World's)."""
    from manip.sim.metaworld.tasks import METAWORLD_TASKS

    return [name for name in TASKS if name not in METAWORLD_TASKS]


def get_task(name: str) -> TaskSpec:
    """Return the task named ``name`` or raise a one-line error listing the known tasks."""
    try:
        return TASKS[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, list(TASKS), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ManipError(
            f"unknown task '{name}': {hint}tasks are robosuite's ({', '.join(robosuite_task_names())}) or Meta-World's "
            "v3 env names (e.g. pick-place-v3)"
        ) from None


def check_obs_mode(obs_mode: str, task: TaskSpec | None = None) -> str:
    """Return ``obs_mode`` if it is known (and ``task`` offers it), else raise a one-line error."""
    if obs_mode not in OBS_MODES:
        raise ManipError(f"unknown observation mode '{obs_mode}': pass one of {', '.join(OBS_MODES)}")
    if task is not None and obs_mode not in task.obs_modes:
        raise ManipError(
            f"task '{task.name}' has no '{obs_mode}' observations: pass one of {', '.join(task.obs_modes)}"
        )
    return obs_mode


def _register_metaworld() -> None:
    """Meta-World's tasks (``pick-place-v3``, ...) add themselves to :data:`TASKS` when their module loads (it
    needs :class:`TaskSpec`, so it is loaded here, after it)."""
    import manip.sim.metaworld.tasks  # noqa: F401


_register_metaworld()
