"""The task registry: robosuite 1.5.2 tasks with the Panda arm, their horizons, cameras and instructions."""

from __future__ import annotations

from dataclasses import dataclass

from manip.core.errors import ManipError

OBS_MODES = ("lowdim", "image")
CAMERAS = ("agentview", "robot0_eye_in_hand")
CONTROL_RATE_HZ = 20
GRIPPER_DIM = 6
"""Index of the gripper command in the 7-D OSC_POSE-delta + gripper action."""


@dataclass(frozen=True)
class TaskSpec:
    """One task: robosuite env name, episode horizon (steps at ``control_rate`` Hz) and a language instruction."""

    name: str
    env_name: str
    horizon: int
    instruction: str
    control_rate: int = CONTROL_RATE_HZ
    obs_modes: tuple[str, ...] = OBS_MODES
    cameras: tuple[str, ...] = CAMERAS
    object_obs_key: str = "object-state"


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        # robomimic's horizons (proficient-human style) for Lift / Can / Square.
        TaskSpec("Lift", "Lift", 400, "lift the cube"),
        TaskSpec("PickPlaceCan", "PickPlaceCan", 400, "put the can in its bin"),
        TaskSpec("NutAssemblySquare", "NutAssemblySquare", 400, "put the square nut on its peg"),
        TaskSpec("Stack", "Stack", 400, "stack the red cube on the green cube"),
        TaskSpec("Door", "Door", 400, "open the door"),
    )
}


def controller_for(source, task: TaskSpec, delay=None, **executor_options):
    """The per-tick :class:`manip.real.client.loop.ChunkedController` for ``source`` in ``task``.

    A hold (no fresh chunk, non-finite action) sends zero motion but keeps the last gripper command, so a held
    robot does not drop what it carries (the executor's default hold zeroes every dimension). ``delay``: a
    :class:`manip.real.client.latency.InjectedDelay`; ``executor_options``: :class:`manip.real.client.executor.ExecutorConfig` fields
    (e.g. ``mode``).
    """
    from manip.real.client.loop import ChunkedController, executor_config_for
    from manip.real.client.safety import SafetyConfig

    config = executor_config_for(
        source.metadata, safety=SafetyConfig(hold_keep=[GRIPPER_DIM]), **executor_options
    )
    return ChunkedController(source, config, delay, instruction=task.instruction)


def get_task(name: str) -> TaskSpec:
    """Return the task named ``name`` or raise a one-line error listing the known tasks."""
    try:
        return TASKS[name]
    except KeyError:
        raise ManipError(f"unknown task '{name}': pass one of {', '.join(TASKS)}") from None


def check_obs_mode(obs_mode: str) -> str:
    """Return ``obs_mode`` if it is known, else raise a one-line error."""
    if obs_mode not in OBS_MODES:
        raise ManipError(f"unknown observation mode '{obs_mode}': pass one of {', '.join(OBS_MODES)}")
    return obs_mode
