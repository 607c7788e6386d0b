"""Meta-World's own scripted policies (``metaworld.policies``) as manip experts: ``reset(env, seed)``,
``act(env, obs) -> action`` (4-D). The policy reads Meta-World's 39-D state of the env it drives; demonstrations
differ across seeds through the initial state the seed draws."""

from __future__ import annotations

import warnings

import numpy as np

from manip.core.errors import ManipError, require


class MetaWorldExpert:
    """The scripted policy Meta-World ships for one task (``task``: its env name, e.g. ``pick-place-v3``)."""

    def __init__(self, task: str):
        from manip.sim.metaworld.env import goal_observable_class

        goal_observable_class(task)  # picks the GL backend before mujoco loads; checks the name
        policies = require("metaworld.policies", "metaworld")
        if task not in policies.ENV_POLICY_MAP:
            raise ManipError(f"Meta-World has no scripted policy for '{task}'")
        self.task = task
        self.policy = policies.ENV_POLICY_MAP[task]()

    def reset(self, env, seed: int | None = None) -> None:
        """Nothing to plan: the policy is a function of the current state."""

    def act(self, env, obs=None) -> np.ndarray:
        """The next 4-D action for the env's current state, clipped to [-1, 1]."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "constant(s) may be too high": the env clips, and so do we
            action = self.policy.get_action(env.raw_obs)
        return np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
