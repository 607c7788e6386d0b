"""A held robot in sim keeps its gripper closed: holds zero the motion but not the gripper command."""

from __future__ import annotations

import numpy as np

from manip.core.specs import FeatureSpec, Spec
from manip.real.client.sources import SourceMetadata, SourceUnavailable
from manip.sim.tasks import GRIPPER_DIM, controller_for, get_task


class OneChunkThenGone:
    """Serves one closing-gripper chunk, then behaves like a lost server."""

    def __init__(self):
        self.metadata = SourceMetadata(
            policy_type="test",
            obs_spec=Spec((FeatureSpec("robot0_eef_pos", (3,)),)),
            action_spec=Spec((FeatureSpec("action", (7,)),)),
            horizon=4,
            n_obs_steps=1,
            n_action_steps=4,
        )
        self.calls = 0

    def request(self, obs, t_obs, prefix=None, instruction=None):
        self.calls += 1
        if self.calls > 1:
            raise SourceUnavailable("server gone")
        chunk = np.zeros((4, 7), dtype=np.float32)
        chunk[:, 0] = 0.5
        chunk[:, GRIPPER_DIM] = 1.0
        return chunk


def test_hold_keeps_gripper_and_stops_motion():
    controller = controller_for(OneChunkThenGone(), get_task("Lift"))
    obs = {"robot0_eef_pos": np.zeros(3, dtype=np.float32)}
    dt = 1 / 20
    actions = [controller.act(obs, i * dt) for i in range(8)]
    executed = [a for a in actions if not a.held]
    held = [a for a in actions if a.held]
    assert executed and held, "expected the chunk to run out and the controller to hold"
    assert executed[0].action[0] == 0.5 and executed[0].action[GRIPPER_DIM] == 1.0
    for tick in held:
        assert tick.action[GRIPPER_DIM] == 1.0  # still grasping
        assert np.all(tick.action[:GRIPPER_DIM] == 0.0)  # no motion
