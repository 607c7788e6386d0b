"""ToolHang and TwoArmTransport: specs in both observation modes, 14-D two-arm actions, robot1 proprioception,
and holds that keep every robot's gripper."""

from __future__ import annotations

import numpy as np
import pytest

from manip.core.errors import ManipError
from manip.core.specs import FeatureSpec, Spec
from manip.real.client.sources import SourceMetadata, SourceUnavailable
from manip.sim.env import make_env
from manip.sim.tasks import controller_for, get_task

PROPRIO = {"eef_pos": (3,), "eef_quat": (4,), "gripper_qpos": (2,)}


@pytest.fixture(scope="module")
def transport_env():
    env = make_env("TwoArmTransport")
    yield env
    env.close()


def _proprio(robots: int) -> dict[str, tuple[int, ...]]:
    return {f"robot{i}_{key}": shape for i in range(robots) for key, shape in PROPRIO.items()}


def test_two_arm_specs_and_14d_step(transport_env):
    obs = transport_env.reset(seed=0)
    spec = transport_env.obs_spec
    assert {name: spec[name].shape for name in spec.names if name != "object"} == _proprio(2)
    spec.check(obs)
    assert transport_env.action_spec["action"].shape == (14,)
    before = obs["robot1_eef_pos"].copy(), obs["robot0_eef_pos"].copy()
    action = np.zeros(14)
    action[7 + 2] = 1.0  # robot1 moves up (z is shared by the world and both turned bases)
    for _ in range(5):
        obs, _reward, terminated, truncated, info = transport_env.step(action)
    assert obs["robot1_eef_pos"][2] > before[0][2] + 0.02  # robot1's block moved robot1 ...
    assert np.abs(obs["robot0_eef_pos"] - before[1]).max() < 0.01  # ... and robot0 stayed
    assert not terminated and not truncated and info["steps"] == 5


def test_two_arm_rejects_one_arm_action(transport_env):
    transport_env.reset(seed=0)
    with pytest.raises(ManipError, match=r"expected \(14,\) for TwoArmTransport"):
        transport_env.step(np.zeros(7))


def test_task_specs_follow_robomimic():
    hang, transport = get_task("ToolHang"), get_task("TwoArmTransport")
    assert hang.horizon == transport.horizon == 700
    assert (hang.action_dim, hang.gripper_dims) == (7, (6,))
    assert (transport.action_dim, transport.gripper_dims) == (14, (6, 13))
    assert transport.robots == ("Panda", "Panda") and transport.env_configuration == "opposed"


def test_tool_hang_lowdim_spec():
    env = make_env("ToolHang")
    obs = env.reset(seed=0)
    assert env.obs_spec.names == [*_proprio(1), "object"]
    assert env.action_spec["action"].shape == (7,)
    env.obs_spec.check(obs)
    assert not any(key.startswith("robot1_") for key in obs)
    env.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "task, cameras",
    [
        ("ToolHang", ("sideview", "robot0_eye_in_hand")),
        (
            "TwoArmTransport",
            ("shouldercamera0", "shouldercamera1", "robot0_eye_in_hand", "robot1_eye_in_hand"),
        ),
    ],
)
def test_image_mode_cameras(task, cameras):
    env = make_env(task, obs_mode="image", image_size=32)
    obs = env.reset(seed=0)
    images = [f.name for f in env.obs_spec.of_kind("rgb")]
    assert images == [f"{camera}_image" for camera in cameras]
    for key in images:
        assert obs[key].shape == (32, 32, 3) and obs[key].dtype == np.uint8
        assert obs[key].std() > 0  # a rendered scene, not a blank frame
    assert set(_proprio(2 if task == "TwoArmTransport" else 1)) <= set(obs)
    env.close()


class TwoArmChunkThenGone:
    """Serves one chunk that closes both grippers, then behaves like a lost server."""

    def __init__(self):
        self.metadata = SourceMetadata(
            policy_type="test",
            obs_spec=Spec((FeatureSpec("robot0_eef_pos", (3,)),)),
            action_spec=Spec((FeatureSpec("action", (14,)),)),
            horizon=2,
            n_obs_steps=1,
            n_action_steps=2,
        )
        self.calls = 0

    def request(self, obs, t_obs, prefix=None, instruction=None):
        self.calls += 1
        if self.calls > 1:
            raise SourceUnavailable("server gone")
        chunk = np.full((2, 14), 0.5, dtype=np.float32)
        chunk[:, [6, 13]] = 1.0
        return chunk


def test_hold_keeps_both_grippers():
    controller = controller_for(TwoArmChunkThenGone(), get_task("TwoArmTransport"))
    obs = {"robot0_eef_pos": np.zeros(3, dtype=np.float32)}
    held = [tick for tick in (controller.act(obs, i / 20) for i in range(6)) if tick.held]
    assert held, "expected the chunk to run out and the controller to hold"
    for tick in held:
        assert tick.action[6] == tick.action[13] == 1.0  # both robots keep grasping
        assert np.all(np.delete(tick.action, [6, 13]) == 0.0)  # no motion
