"""The scripted expert as a :class:`manip.real.client.sources.ChunkSource`: a 1-step chunk per control tick."""

from __future__ import annotations

import numpy as np

from manip.real.client.sources import SourceMetadata
from manip.sim.env import ManipEnv
from manip.sim.experts import make_expert


class ExpertSource:
    """Answers each request with the expert's next action as a ``(1, action_dim)`` chunk (it reads the sim state)."""

    def __init__(self, env: ManipEnv):
        self.env = env
        self.expert = make_expert(env.task.name)
        self.metadata = SourceMetadata(
            policy_type="scripted-expert",
            obs_spec=env.obs_spec,
            action_spec=env.action_spec,
            horizon=1,
            n_obs_steps=1,
            n_action_steps=1,
            control_rate=float(env.control_rate),
            checkpoint_id=f"expert:{env.task.name}",
        )

    def start_episode(self, seed: int) -> None:
        """Plan the episode that ``env.reset(seed=seed)`` just started."""
        self.expert.reset(self.env, seed)

    def request(self, obs, t_obs, prefix=None, instruction=None) -> np.ndarray:
        return self.expert.act(self.env)[None]
