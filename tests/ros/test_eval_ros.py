"""``manip eval --ros``: episodes through real processes (sim_robot → policy_node → ``manip serve`` on loopback
ROS 2), the scripted expert driving sim_robot over pose targets, and recording demonstrations on the robot path
(the expert commands joint trajectories, recorder_node writes the store)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.cli import manip, read_json

CONTRACT_KEYS = {
    "task", "episodes", "successes", "success_rate", "ci95", "seeds", "per_episode", "latency_ms", "git_commit",
    "checkpoint_id", "ros",
}  # fmt: skip
ROS_KEYS = {"command_rate_hz", "holds", "stop_trajectories", "commands", "lockstep_timeouts"}


@pytest.fixture(scope="module")
def gripper_checkpoint(tmp_path_factory):
    """A real (untrained, tiny) flow policy reading ``robot0_gripper_qpos`` (fed from /joint_states) and acting
    in robosuite's 7-D OSC_POSE delta space."""
    from manip.core.specs import FeatureSpec, Spec
    from manip.data.normalizer import Normalizer
    from manip.policies.checkpoint import set_action_semantics
    from manip.policies.config import POLICY_TYPES, parse_policy_config
    from manip.real.client.sources import ROBOSUITE_OSC_ACTION
    from manip.sim.env import ACTION_SPEC

    obs_spec = Spec((FeatureSpec("robot0_gripper_qpos", (2,)),))
    rng = np.random.default_rng(0)
    data = {
        "robot0_gripper_qpos": rng.normal(0.0, 0.02, size=(64, 2)).astype(np.float32),
        "action": rng.uniform(-0.2, 0.2, size=(64, 7)).astype(np.float32),
    }
    normalizer = Normalizer.fit([data], dict.fromkeys(data, "minmax"))
    config = parse_policy_config(
        {
            "obs_keys": obs_spec.names,
            "n_obs_steps": 2,
            "horizon": 8,
            "n_action_steps": 4,
            "backbone": {"name": "unet1d", "down_dims": [16, 32], "time_embed_dim": 16},
            "head": {"name": "flow", "default_steps": 4},
        }
    )
    policy = POLICY_TYPES.get(config.type).cls(config, obs_spec, ACTION_SPEC, normalizer)
    set_action_semantics(policy, 20.0, ROBOSUITE_OSC_ACTION)  # as training records it
    path = tmp_path_factory.mktemp("ckpt") / "gripper"
    policy.save_pretrained(path)
    return path


def test_policy_node_gets_the_map_file_and_the_matching_older_parameters():
    from manip.core.errors import ManipError
    from manip.sim.ros_eval import observation_map_file, policy_observation_params, ros_package

    map_file = observation_map_file(ros_package(), "Lift")
    params = policy_observation_params(map_file, ["agentview_image", "robot0_gripper_qpos"])
    assert params["observation_map_file"] == str(map_file)
    assert params["camera_keys"] == ["agentview_image"]
    assert params["camera_topics"] == ["/agentview/color/image_raw"]
    assert params["joint_state_key"] == "robot0_gripper_qpos"
    assert params["joint_names"] == ["gripper0_right_finger_joint1", "gripper0_right_finger_joint2"]
    with pytest.raises(ManipError, match="no entry for the policy's observation"):
        policy_observation_params(map_file, ["robot0_mystery"])


@pytest.mark.ros
@pytest.mark.slow
def test_eval_ros_on_a_tiny_checkpoint_writes_results_with_the_ros_block(
    ros_env, gripper_checkpoint, tmp_path
):
    from manip.real.client.sources import checkpoint_id

    out = tmp_path / "eval"
    result = manip(
        "eval", "--checkpoint", gripper_checkpoint, "--task", "Lift", "--episodes", "2", "--horizon", "10",
        "--seed", "5", "--ros", "--executor", "async", "--out", out, env={"MUJOCO_GL": "egl"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + "".join(
        p.read_text()[-1500:] for p in (out / "ros_logs").glob("*.log")
    )
    results = read_json(out / "results.json")
    assert set(results) >= CONTRACT_KEYS
    assert results["seeds"] == [5, 6] and results["episodes"] == 2 and results["errors"] == 0
    assert [e["steps"] for e in results["per_episode"]] == [10, 10]  # an untrained policy does not lift
    assert results["checkpoint_id"] == checkpoint_id(gripper_checkpoint)
    ros = results["ros"]
    assert set(ros) >= ROS_KEYS and ros["actor"] == "policy_node" and ros["executor_mode"] == "async"
    assert ros["clock"] == "sim (lockstep)"  # the default: sim_robot is /clock, the node ticks on it
    assert "executor_mode: async" in (out / "ros_logs" / "policy_node.params.yaml").read_text()
    # counted at the robot: the policy node's targets arrived in every episode
    assert all(e["commands"] >= 1 for e in results["per_episode"])
    assert ros["commands"] == sum(e["commands"] for e in results["per_episode"])
    assert ros["command_rate_hz"] > 0 and ros["actuating_ticks"] > 0
    assert results["latency_ms"]["p50"] > 0 and ros["latency_ms"]["p99"] >= ros["latency_ms"]["p50"]
    assert "policy latency" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--workers", "2"], "--workers cannot be combined with --ros"),
        (["--delay-ms", "50", "--video", "2"], "--video, --delay-ms cannot be combined with --ros"),
        (["--executor", "fastest"], "--executor 'fastest' is not one of receding, ensemble"),
    ],
)
def test_eval_ros_refuses_options_the_node_does_not_run(gripper_checkpoint, tmp_path, extra, message):
    result = manip(
        "eval", "--checkpoint", gripper_checkpoint, "--task", "Lift", "--episodes", "1", "--ros",
        "--out", tmp_path / "eval", *extra,
    )  # fmt: skip
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "eval" / "results.json").exists()


def test_wall_clock_option_needs_ros(gripper_checkpoint, tmp_path):
    result = manip(
        "eval", "--checkpoint", gripper_checkpoint, "--task", "Lift", "--episodes", "1", "--ros-wall-clock",
        "--out", tmp_path / "eval",
    )  # fmt: skip
    assert (
        result.returncode != 0
        and result.stderr.strip() == "manip eval: --ros-wall-clock only applies with --ros"
    )


@pytest.mark.ros
@pytest.mark.slow
def test_scripted_expert_drives_sim_robot_over_pose_targets_and_lifts(ros_env, tmp_path):
    out = tmp_path / "expert"
    result = manip(
        "eval", "--expert", "--task", "Lift", "--episodes", "1", "--horizon", "150", "--seed", "3", "--ros",
        "--out", out, env={"MUJOCO_GL": "egl"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = read_json(out / "results.json")
    (episode,) = results["per_episode"]
    assert episode["success"] is True and episode["steps"] < 150
    assert results["ros"]["actor"] == "sim_robot scripted expert" and results["checkpoint_id"] is None
    assert results["ros"]["clock"] == "sim (lockstep)" and results["ros"]["lockstep_timeouts"] == 0
    assert episode["commands"] >= episode["steps"]  # every step followed a PoseStamped target


@pytest.mark.ros
@pytest.mark.slow
def test_recording_through_the_robot_path_writes_a_store(ros_env, tmp_path):
    from manip.sim.ros_eval import record_with_expert

    store = tmp_path / "demos.zarr"
    records = record_with_expert("Lift", 2, store, seed=3, horizon=40, image_size=32, quiet=True)
    assert [r["seed"] for r in records] == [3, 4]
    info = manip("data", "info", store, "--json")
    assert info.returncode == 0, info.stderr
    summary = json.loads(info.stdout)
    assert summary["num_episodes"] == 2 and min(summary["episode_lengths"]) > 0
    assert summary["keys"]["action"]["shape"] == [8]  # 7 joint targets + the gripper
    assert summary["keys"]["robot0_joint_pos"]["shape"] == [7]
    assert summary["keys"]["agentview_image"]["shape"] == [32, 32, 3]
    assert summary["episode_success"] == [r["success"] for r in records]
