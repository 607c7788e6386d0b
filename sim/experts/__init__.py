"""Scripted experts, one per task: ``make_expert(task)`` returns an object with ``reset(env, seed)`` and
``act(env, obs) -> action`` (7-D per robot of the task) (see :mod:`manip.sim.experts.base`)."""

from __future__ import annotations

from manip.core.errors import ManipError
from manip.core.registry import Registry
from manip.sim.tasks import get_task

EXPERTS = Registry(
    "scripted expert",
    {
        "Lift": "manip.sim.experts.lift:LiftExpert",
        "PickPlaceCan": "manip.sim.experts.pick_place:PickPlaceCanExpert",
        "NutAssemblySquare": "manip.sim.experts.nut_assembly:NutAssemblySquareExpert",
        "Stack": "manip.sim.experts.stack:StackExpert",
        "Door": "manip.sim.experts.door:DoorExpert",
        "ToolHang": "manip.sim.experts.tool_hang:ToolHangExpert",
        "TwoArmTransport": "manip.sim.experts.transport:TwoArmTransportExpert",
    },
)


def _register_metaworld() -> None:
    """Every Meta-World task's expert: its own scripted policy (:class:`manip.sim.experts.metaworld.MetaWorldExpert`)."""
    from functools import partial

    from manip.sim.experts.metaworld import MetaWorldExpert
    from manip.sim.metaworld.tasks import METAWORLD_TASKS

    for name in METAWORLD_TASKS:
        EXPERTS.register(name)(partial(MetaWorldExpert, name))


_register_metaworld()


def make_expert(task: str):
    """The scripted expert for ``task`` (a one-line error for an unknown task or one without an expert)."""
    get_task(task)
    if task not in EXPERTS:
        raise ManipError(f"task '{task}' has no scripted expert (experts: {', '.join(EXPERTS.names())})")
    return EXPERTS.load(task)()


def rollout(env, expert, seed: int, on_step=None, extra_steps: int = 0) -> tuple[bool, int]:
    """Run one expert episode from ``env.reset(seed=seed)``; returns ``(success, steps)``.

    ``on_step(obs, action)`` sees each observation with the action taken from it. The episode ends at success
    (after ``extra_steps`` more steps) or at the horizon.
    """
    obs = env.reset(seed=seed)
    expert.reset(env, seed)
    success, after = False, 0
    while True:
        action = expert.act(env, obs)
        if on_step is not None:
            on_step(obs, action)
        obs, _reward, terminated, truncated, _info = env.step(action)
        success = success or terminated
        after += success
        if (success and after > extra_steps) or truncated:
            return success, env.steps
