"""Meta-World v3 tasks: names, difficulty groups and their :class:`MetaWorldTaskSpec` entries for the task registry.

Task names are Meta-World's env names (``pick-place-v3``). Actions are 4-D: a position delta of the hand
(3 values in [-1, 1], 1 cm per unit) and the gripper (-1 open, +1 closed). The difficulty groups are the ones of
the 3-D policy papers (DP3, FlowPolicy, MP1) over the 34 tasks FlowPolicy and MP1 report (:data:`GROUPS`).

This module imports neither metaworld nor mujoco (the registry stays light).
"""

from __future__ import annotations

from dataclasses import dataclass

from manip.sim.tasks import TASKS, TaskSpec

SUITE = "metaworld"
ACTION_DIM = 4
GRIPPER_DIM = 3
CONTROL_RATE_HZ = 80
"""Meta-World's control rate: 5 MuJoCo steps of 2.5 ms per action."""
HORIZON = 200
"""Steps per episode, as DP3/FlowPolicy/MP1 evaluate (Meta-World's own limit is 500)."""
CAMERA = "corner2"

GROUPS: dict[str, tuple[str, ...]] = {
    "easy": (
        "button-press-v3", "button-press-wall-v3", "dial-turn-v3", "door-close-v3", "door-open-v3",
        "door-unlock-v3", "drawer-close-v3", "faucet-close-v3", "faucet-open-v3", "handle-press-v3",
        "handle-pull-v3", "lever-pull-v3", "peg-unplug-side-v3", "plate-slide-v3", "plate-slide-back-v3",
        "plate-slide-back-side-v3", "plate-slide-side-v3", "reach-v3", "reach-wall-v3", "window-close-v3",
        "window-open-v3",
    ),
    "medium": ("coffee-pull-v3", "hammer-v3", "peg-insert-side-v3", "soccer-v3"),
    "hard": ("assembly-v3", "hand-insert-v3", "pick-place-v3", "push-v3"),
    "very_hard": ("shelf-place-v3", "disassemble-v3", "stick-pull-v3", "stick-push-v3", "pick-place-wall-v3"),
}  # fmt: skip
"""The 34 benchmark tasks by difficulty (21 easy, 4 medium, 4 hard, 5 very hard)."""

OTHER_TASKS = (
    "basketball-v3", "bin-picking-v3", "box-close-v3", "button-press-topdown-v3", "button-press-topdown-wall-v3",
    "coffee-button-v3", "coffee-push-v3", "door-lock-v3", "drawer-open-v3", "handle-press-side-v3",
    "handle-pull-side-v3", "pick-out-of-hole-v3", "push-back-v3", "push-wall-v3", "sweep-v3", "sweep-into-v3",
)  # fmt: skip
"""The other 16 Meta-World v3 tasks (registered too, outside the benchmark table)."""

BENCHMARK_TASKS = tuple(name for names in GROUPS.values() for name in names)


def difficulty_of(task: str) -> str | None:
    """The difficulty group of a benchmark task, or None for a task outside the 34."""
    return next((group for group, names in GROUPS.items() if task in names), None)


@dataclass(frozen=True)
class MetaWorldTaskSpec(TaskSpec):
    """A Meta-World task: 4-D actions (hand position delta + gripper), one Sawyer arm, ``corner2`` camera."""

    suite: str = SUITE
    difficulty: str | None = None

    @property
    def action_dim(self) -> int:
        return ACTION_DIM

    @property
    def gripper_dims(self) -> tuple[int, ...]:
        return (GRIPPER_DIM,)


def _spec(name: str) -> MetaWorldTaskSpec:
    return MetaWorldTaskSpec(
        name=name,
        env_name=name,
        horizon=HORIZON,
        instruction=name.removesuffix("-v3").replace("-", " "),
        control_rate=CONTROL_RATE_HZ,
        obs_modes=("lowdim", "image", "points"),
        cameras=(CAMERA,),
        object_obs_key="object",
        robots=("Sawyer",),
        difficulty=difficulty_of(name),
    )


METAWORLD_TASKS: dict[str, MetaWorldTaskSpec] = {
    name: _spec(name) for name in (*BENCHMARK_TASKS, *OTHER_TASKS)
}


def is_metaworld(task) -> bool:
    """Whether ``task`` (a name or a spec) is a Meta-World task."""
    return getattr(task, "suite", None) == SUITE or task in METAWORLD_TASKS


TASKS.update(METAWORLD_TASKS)
